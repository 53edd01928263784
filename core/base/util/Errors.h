#pragma once
#include <stdexcept>
#include <string>

namespace graftlab {

// An error the user can cause through a file (dataset, checkpoint, run directory).
// `path` names the file; what() is a complete sentence that already contains it.
class FileError : public std::runtime_error {
public:
    FileError(std::string path, const std::string& message)
        : std::runtime_error(path + ": " + message), path_(std::move(path)) {}
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// An error in a recipe field that is only detectable at run time (e.g. a dataset that does not fit the model).
class RecipeError : public std::runtime_error {
public:
    RecipeError(std::string field, const std::string& message)
        : std::runtime_error(field + ": " + message), field_(std::move(field)) {}
    const std::string& field() const { return field_; }

private:
    std::string field_;
};

}  // namespace graftlab
