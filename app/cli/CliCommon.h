#pragma once
// What every graftlab-cli command shares: exit codes, the usage error, option parsing.
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace graftlab::cli {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2;

// A mistake in the command line: printed with a pointer to the command's --help, exit status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> options;
    bool has(const std::string& k) const { return options.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = {}) const {
        auto it = options.find(k);
        return it == options.end() || it->second.empty() ? def : it->second.back();
    }
};

// Parses --key value / --key=value / --flag from argv[first..]. `flags` take no value; anything else is an error.
Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valued, const std::set<std::string>& flags);
int64_t parseInt(const std::string& opt, const std::string& v);

// The commands that live in their own files.
int cmdExport(int argc, char** argv);
int cmdReport(int argc, char** argv);

}  // namespace graftlab::cli
