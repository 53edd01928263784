#include "CliCommon.h"
#include "base/recipe/Presets.h"
#include "eval/Protocols.h"
#include "train/Checkpoint.h"
#include "base/util/Errors.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace graftlab::cli {
namespace fs = std::filesystem;

int parseThreads(const std::string& v) {
    int64_t n = parseInt("threads", v);
    if (n < 0 || n > maxThreads())
        throw UsageError("--threads must be 0 (all cores) to " + std::to_string(maxThreads()) + " (4x the " + std::to_string(maxThreads() / 4) +
                         " cores here), got " + v);
    return int(n);
}

std::string checkpointArg(const Args& a) { return resolveCheckpoint(a.get("ckpt")); }

Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valued, const std::set<std::string>& flags) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            std::string key = s.substr(2), value;
            auto eq = key.find('=');
            bool inlineValue = eq != std::string::npos;
            if (inlineValue) {
                value = key.substr(eq + 1);
                key = key.substr(0, eq);
            }
            if (flags.count(key)) {
                a.options[key].push_back("1");
            } else if (valued.count(key)) {
                if (!inlineValue) {
                    if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
                    value = argv[++i];
                }
                // no option takes an empty value: an unset shell variable ("--out $DIR") would otherwise become the
                // current directory or a file named "" in messages that name nothing
                if (value.empty()) throw UsageError("--" + key + " is empty: give it a value");
                a.options[key].push_back(value);
            } else {
                throw UsageError("unknown option --" + key);
            }
        } else {
            if (s.empty()) throw UsageError("an empty argument (\"\"): give a path (is a shell variable unset?)");
            a.positional.push_back(s);
        }
    }
    return a;
}

int64_t parseInt(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos != v.size()) throw std::invalid_argument("trailing");
        return x;
    } catch (const std::exception&) {
        throw UsageError("--" + opt + " expects an integer, got \"" + v + "\"");
    }
}

std::vector<std::string> parseProtocols(const std::string& list) {
    std::vector<std::string> out;
    std::stringstream ss(list);
    for (std::string p; std::getline(ss, p, ',');) {
        if (std::find(kProtocols.begin(), kProtocols.end(), p) == kProtocols.end())
            throw UsageError("--protocol: unknown protocol \"" + p + "\" (linear, fewshot, knn, finetune)");
        out.push_back(p);
    }
    if (out.empty()) throw UsageError("--protocol lists no protocol");
    return out;
}

// A recipe argument is a file path, or the name of a preset (e.g. "mae").
std::string resolveRecipe(const std::string& arg) {
    if (fs::exists(arg)) return arg;
    if (std::string preset = findPreset(arg); !preset.empty()) return preset;
    throw FileError(arg, "recipe file not found (give a path, or a preset name such as \"mae\")");
}

Recipe loadRecipeOrExit(const std::string& file, const std::vector<std::string>& sets, bool& ok) {
    std::vector<RecipeIssue> issues;
    Recipe r = loadRecipeFile(file, sets, issues);
    bool malformed = !issues.empty() && issues.front().field.empty();
    if (!malformed) {
        // Fields that failed to parse kept their defaults; report the remaining problems too, once per field.
        for (auto& v : r.validate()) {
            bool seen = std::any_of(issues.begin(), issues.end(), [&](const RecipeIssue& i) { return i.field == v.field; });
            if (!seen) issues.push_back(v);
        }
    }
    ok = issues.empty();
    if (!ok) std::cerr << "error: recipe " << file << " has " << issues.size() << " problem(s):\n" << formatIssues(issues);
    return r;
}

}  // namespace graftlab::cli
