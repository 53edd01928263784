#include "train/LoadedModel.h"
#include "util/Errors.h"

#include <torch/torch.h>

#include <set>

namespace graftlab {

LoadedModel loadCheckpointModel(const std::string& pathIn, torch::Device device) {
    const std::string path = resolveCheckpoint(pathIn);
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
    if (m.meta.imported.is_object()) {
        // An imported model holds the parts its file had: each of those whole, the others not at all.
        const auto parts = m.meta.imported.value("parts", nlohmann::json::object());
        std::set<std::string> present = {"encoder."};
        if (parts.value("decoder", false)) present.insert("decoder.");
        if (parts.value("cl_heads", false)) present.insert("moco.");
        size_t expected = 0;
        auto count = [&](const std::string& name) {
            for (const auto& p : present)
                if (name.compare(0, p.size(), p) == 0) return ++expected, void();
        };
        for (const auto& p : m.objective->named_parameters(true)) count(p.key());
        for (const auto& b : m.objective->named_buffers(true)) count(b.key());
        int loaded = loadModelState(path, *m.objective, false);
        if (size_t(loaded) != expected)
            throw FileError(path, "an imported model with " + std::to_string(loaded) + " of the " + std::to_string(expected) +
                                      " tensors its parts need (damaged?)");
        if (!parts.value("decoder", false))
            m.objective->mimHeadAbsent = "imported from " + m.meta.imported.value("source", std::string("another project")) +
                                         " without an MAE decoder (" + m.meta.imported.value("layout", std::string()) + ")";
    } else {
        loadModelState(path, *m.objective, true);
    }
    m.objective->to(device);
    return m;
}

}  // namespace graftlab
