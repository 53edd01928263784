#include "base/recipe/Presets.h"

#include <cstdlib>
#include <filesystem>
#include <map>

namespace graftlab {
namespace fs = std::filesystem;

std::vector<std::string> presetDirs() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("GRAFTLAB_RECIPE_DIR"); env && *env) dirs.push_back(env);
    std::error_code ec;
    auto exe = fs::canonical("/proc/self/exe", ec);
    if (!ec) dirs.push_back((exe.parent_path() / GRAFTLAB_INSTALL_RECIPE_DIR).lexically_normal().string());
    dirs.push_back(GRAFTLAB_SOURCE_RECIPE_DIR);
    return dirs;
}

std::string findPreset(const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos) return {};
    const bool hasExt = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
    for (const auto& d : presetDirs()) {
        fs::path p = fs::path(d) / (hasExt ? name : name + ".json");
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    return {};
}

std::vector<std::pair<std::string, std::string>> listPresets() {
    std::map<std::string, std::string> byName;
    for (const auto& d : presetDirs()) {
        std::error_code ec;
        for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->path().extension() != ".json" || !it->is_regular_file(ec)) continue;
            byName.emplace(it->path().stem().string(), it->path().string());  // emplace: the first directory wins
        }
    }
    return {byName.begin(), byName.end()};
}

}  // namespace graftlab
