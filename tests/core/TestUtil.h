#pragma once
#include "recipe/Recipe.h"

#include <string>

namespace graftlab::test {

// A model and dataset small enough to train in well under a second a step on 2 cores.
Recipe tinyRecipe();
// A fresh empty directory under the system temp dir.
std::string tempDir(const std::string& tag);
std::string sourceDir();

}  // namespace graftlab::test
