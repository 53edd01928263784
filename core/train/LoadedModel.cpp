#include "train/LoadedModel.h"
#include "util/Errors.h"

#include <torch/torch.h>

namespace graftlab {

LoadedModel loadCheckpointModel(const std::string& path, torch::Device device) {
    LoadedModel m;
    m.meta = readCheckpointMeta(path);
    std::vector<RecipeIssue> issues;
    m.recipe = Recipe::fromJson(m.meta.recipe, issues);
    if (issues.empty()) issues = m.recipe.validate();
    if (!issues.empty()) throw FileError(path, "its recipe does not parse: " + issues.front().field + ": " + issues.front().message);
    auto stages = m.recipe.effectiveStages();
    m.method = stages[size_t(std::clamp(m.meta.stage, 0, int(stages.size()) - 1))].method;
    torch::manual_seed(uint64_t(m.recipe.seed));
    m.objective = makeObjective(m.recipe, m.method, m.meta.channels, m.meta.mean, m.meta.std);
    loadModelState(path, *m.objective, true);
    m.objective->to(device);
    return m;
}

}  // namespace graftlab
