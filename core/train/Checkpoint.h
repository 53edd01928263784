#pragma once
// One checkpoint = one file: format tag, recipe, step, data statistics, model tensors by name, optimizer
// state, torch's global RNG state. Written to a temp name, fsynced, renamed.
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <map>
#include <string>
#include <vector>

namespace graftlab {

struct TorchFile;

struct CheckpointMeta {
    std::string path;
    nlohmann::json recipe;
    int64_t step = 0;
    int stage = 0;
    int channels = 1;
    std::string dataset;
    std::vector<float> mean, std;
    // A model imported from another project's file (import/ImportModel.h): source, SHA-256, layout and the parts it
    // holds ({"encoder": true, "decoder": false, "cl_heads": false}); null for a model GraftLab trained.
    nlohmann::json imported;
};

// With `streamToFile` the archive is written straight to a temp file (fsynced, renamed) instead of being built in
// memory first: for large imported models, whose copy in memory would double the peak.
void saveCheckpoint(const std::string& path, const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                    const CheckpointMeta& meta, bool streamToFile = false);

// Reads everything but the tensors. Throws FileError naming the file when it is missing, truncated or not a
// GraftLab checkpoint.
CheckpointMeta readCheckpointMeta(const std::string& path);
// The header of a checkpoint read by import/TorchFile (mapped, its pickle interpreted, nothing run, tensors left in
// the file); false when the file is not laid out as this version writes them (the archive reader then decides).
bool readMetaMapped(const TorchFile& f, CheckpointMeta& m);

// Copies the checkpoint's tensors into `model` by name, checking every shape. With `strict`, a tensor the model
// has and the checkpoint lacks (or the reverse) is an error naming it. Returns the number of tensors loaded.
int loadModelState(const std::string& path, torch::nn::Module& model, bool strict = true);
// The model tensors of a checkpoint by name (for grafting a stage from another run).
std::map<std::string, torch::Tensor> readModelTensors(const std::string& path);
void loadOptimizerState(const std::string& path, torch::optim::Optimizer& optimizer);
void restoreRngState(const std::string& path);

std::string checkpointFileName(int64_t step);
// Checkpoint files of a directory, newest step first.
std::vector<std::pair<int64_t, std::string>> listCheckpoints(const std::string& dir);
// Deletes older checkpoints except those whose step is a multiple of keepEvery (when > 0).
void pruneCheckpoints(const std::string& dir, int64_t newestStep, int keepEvery, const std::vector<int64_t>& alsoKeep = {});
// The newest checkpoint in `dir` whose header reads back; empty when none.
std::string latestGoodCheckpoint(const std::string& dir);
// A checkpoint file as given, or for a directory (a run, an imported model, or a checkpoints/ folder) its newest
// readable checkpoint. Throws FileError naming the directory when it holds none.
std::string resolveCheckpoint(const std::string& fileOrDir);
// FileError naming `path` and the tensor when a stored tensor's shape is not the model's.
void requireSameShape(const std::string& path, const std::string& name, const torch::Tensor& stored, const torch::Tensor& model);

}  // namespace graftlab
