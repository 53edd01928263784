#include "base/run/RunLayout.h"

#include <filesystem>

namespace graftlab {
namespace fs = std::filesystem;

std::string RunLayout::join(const char* name) const { return (fs::path(dir_) / name).string(); }

bool RunLayout::holdsRun() const {
    std::error_code ec;
    return fs::exists(recipe(), ec);
}

std::string RunLayout::evaluationStore(const std::string& dir) { return (fs::path(dir) / "evaluations.json").string(); }
std::string RunLayout::sweepIndex(const std::string& sweepDir) { return (fs::path(sweepDir) / "sweep.json").string(); }

std::string RunLayout::evalJsonBeside(const std::string& checkpoint) {
    return (fs::path(checkpoint).parent_path() / "eval.json").string();
}

}  // namespace graftlab
