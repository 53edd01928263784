#pragma once
#include "base/recipe/Recipe.h"

#include <cstdint>
#include <string>

namespace graftlab::test {

// A model and dataset small enough to train in well under a second a step on 2 cores.
Recipe tinyRecipe();
// Shrinks a preset's data, widths and batch to tinyRecipe()'s, keeping its depth, method and stages.
void shrinkToTiny(Recipe& r);
// A fresh empty directory under the system temp dir.
std::string tempDir(const std::string& tag);
std::string sourceDir();
// Trains `r` with checkpoints into `dir`, stopping after `step` steps; returns the checkpoint written there.
std::string trainAndStopAt(const Recipe& r, const std::string& dir, int64_t step);

}  // namespace graftlab::test
