#pragma once
// A checkpoint's model rebuilt for evaluation, probes, exports: its recipe, the objective of the stage it was
// written in, the weights.
#include "methods/Objective.h"
#include "base/recipe/Recipe.h"
#include "train/Checkpoint.h"

#include <memory>
#include <string>

namespace graftlab {

// A checkpoint's model, rebuilt: its recipe, the objective of the stage it was written in, with the weights.
struct LoadedModel {
    Recipe recipe;
    CheckpointMeta meta;
    std::string method;
    std::shared_ptr<Objective> objective;
};
// Throws FileError naming the file (not a checkpoint, truncated, recipe that no longer parses, tensors that do
// not match the architecture).
// `path` may name a directory (a run, an imported model): its newest checkpoint. An imported model (meta.imported) is
// loaded with the parts its file had; without a decoder, objective->mimHeadAbsent says so.
LoadedModel loadCheckpointModel(const std::string& path, torch::Device device = torch::kCPU);

}  // namespace graftlab
