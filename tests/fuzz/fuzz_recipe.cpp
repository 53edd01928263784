// libFuzzer target: the recipe parser and validator on arbitrary text. Must never crash, hang or throw
// anything but the documented errors (issues are returned, not thrown).
#include "base/recipe/Recipe.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<graftlab::RecipeIssue> issues;
    graftlab::Recipe r = graftlab::parseRecipeText(text, "fuzz.json", {}, issues);
    if (issues.empty()) {
        (void)r.validate();
        (void)r.toJson().dump();
        (void)r.effectiveStages();
    }
    return 0;
}
