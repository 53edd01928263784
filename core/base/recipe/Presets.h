#pragma once
// Presets: where the preset recipes are found, for the CLI's `--recipe NAME` and the GUI's File > Presets alike.
// The directories, in order: $GRAFTLAB_RECIPE_DIR, the installed share/graftlab/recipes beside the executable
// (<prefix>/bin/../share/graftlab/recipes), the source tree's resources/recipes (a build run in place).
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

std::vector<std::string> presetDirs();
// The file of preset `name` ("mae" or "mae.json") in the first directory that has it; "" when none does.
std::string findPreset(const std::string& name);
// Every preset as {name, file}, sorted by name; a name in several directories is the first directory's.
std::vector<std::pair<std::string, std::string>> listPresets();

}  // namespace graftlab
