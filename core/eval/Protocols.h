#pragma once
// Protocols: the evaluation protocols on features or an encoder (EvaluateCheckpoint.h runs them on a checkpoint).
// Evaluation protocols of the papers' tables, on a pretrained encoder: linear probe (BatchNorm without affine +
// Linear on frozen features, lr chosen on a held-out tenth of the training set), 1 % few-shot (logistic
// regression on a class-balanced 1 % subset), k-NN (cosine, k = 20, T = 0.07 weighted votes) and fine-tuning
// (whole encoder + head, layer-wise lr decay). Every protocol reports top-1 accuracy on the test split.
#include "data/Dataset.h"
#include "model/Vit.h"
#include "base/run/EvalResults.h"  // ProtocolResult, EvalReport

#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace graftlab {

struct Features {
    torch::Tensor train, trainLabels;  // (N, D) float, (N) int64
    torch::Tensor test, testLabels;
    int numClasses = 0;
    std::string pooling;               // "cls" or "mean"
};

// Frozen features of `data` (uint8 images) through `encoder` after its final norm: the class token ("cls") or the
// mean of the patch tokens ("mean"). No gradient, eval mode, batches of `batch`.
torch::Tensor extractFeatures(VisionTransformer encoder, const Dataset& data, const std::vector<float>& mean,
                              const std::vector<float>& std, const std::string& pooling, int batch = 256,
                              const std::function<void(int64_t, int64_t)>& progress = {});


struct LinearProbeOptions {
    std::vector<double> lrs = {0.1, 0.03, 0.01};  // swept; chosen on a held-out tenth of the training features
    int epochs = 30;
    int batch = 256;
    uint64_t seed = 0;
};
ProtocolResult linearProbe(const Features& f, const LinearProbeOptions& o = {});

// Indices of a class-balanced subset of exactly round(fraction * N) labels (each class gets its share, the
// remainder going to the classes with the most images), seeded.
std::vector<int64_t> balancedSubset(const torch::Tensor& labels, int numClasses, double fraction, uint64_t seed);

struct FewShotOptions {
    double fraction = 0.01;
    int steps = 300;
    double weightDecay = 1e-3;
    uint64_t seed = 0;
};
ProtocolResult fewShot(const Features& f, const FewShotOptions& o = {});

struct KnnOptions {
    int k = 20;
    double temperature = 0.07;
};
ProtocolResult knn(const Features& f, const KnnOptions& o = {});

// Layer-wise lr decay as in MAE/BEiT: parameter `name` of an encoder of `depth` blocks gets decay^(depth + 1 - layer),
// layer 0 = patch_embed / cls_token / pos_embed, layer i + 1 = blocks.i, depth + 1 = final norm and head.
double layerDecayScale(const std::string& name, int depth, double decay);

struct FineTuneOptions {
    int steps = 300;
    int batch = 64;
    double baseLr = 1e-2;       // lr = baseLr * batch / 256 (high: the schedules here are short and the models small)
    double layerDecay = 0.75;
    double weightDecay = 0.05;
    double labelSmoothing = 0.1;
    int warmupSteps = 20;
    std::string pooling = "cls";
    uint64_t seed = 0;
    std::function<void(int64_t, int64_t, double)> progress;  // step, steps, loss
    // Where the fine-tuning keeps its state (weights, optimizer, data order, random streams) every
    // fineTuneSaveInterval(steps) steps; empty: nowhere. A fine-tuning that finds a state there made with the same
    // `stateKey` continues from it, so one stopped in any way (killed, Ctrl+C, the machine going down) and run again
    // loses at most an interval and gives the result an uninterrupted one gives. The file is removed when done; one
    // that is damaged or was made for another key is said through `note` and not used.
    std::string statePath;
    std::string stateKey;
    std::function<void(const std::string&)> note;
    // Asked before each step (a Cancel in the GUI, a stop signal to the CLI): when it says stop, the fine-tuning
    // saves its state at once (where statePath says) and throws FineTuneStopped, instead of running its remaining
    // steps (hours at the larger budgets) before anyone can stop it.
    std::function<bool()> stopRequested;
};
// An evaluation stopped on request (a Cancel, a stop signal) before its end; what() says where and what the next
// run of the same evaluation does.
struct EvaluationStopped : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Thrown by fineTune when FineTuneOptions::stopRequested said stop. what() says where it stopped and whether the
// same fine-tuning continues from there (stateSaved: its state holds `step` steps) or starts again.
struct FineTuneStopped : EvaluationStopped {
    FineTuneStopped(int step, int steps, bool stateSaved, const std::string& statePath);
    int step, steps;
    bool stateSaved;
};
// Steps between two saves of a fine-tuning's state: a tenth of the steps, at most 500 (about a minute here).
int fineTuneSaveInterval(int steps);
// Fine-tunes a copy of `encoder` (the argument is not modified) with a linear head on `train`, evaluates on `test`.
ProtocolResult fineTune(VisionTransformer encoder, const Dataset& train, const Dataset& test, const std::vector<float>& mean,
                        const std::vector<float>& std, const FineTuneOptions& o = {});

// The per-parameter-group learning rates fineTune would use (name -> lr at peak), for inspection and tests.
std::vector<std::pair<std::string, double>> fineTuneLearningRates(VisionTransformer encoder, const FineTuneOptions& o);

}  // namespace graftlab
