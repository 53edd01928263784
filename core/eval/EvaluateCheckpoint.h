#pragma once
// Evaluating one checkpoint (what `graftlab-cli eval`, the GUI's Evaluate and a table call): its encoder, its
// recipe's dataset (train + test split), the protocols of eval/Protocols.h asked for; frozen features are cached
// beside the checkpoint.
#include "eval/Protocols.h"
#include "base/recipe/Recipe.h"
#include "train/Checkpoint.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace graftlab {

struct EvalRequest {
    std::string checkpoint;
    std::vector<std::string> protocols = kProtocols;
    std::string pooling = "cls";   // cls | mean
    // "encoder": the checkpoint's encoder; "pixels": the normalised pixels themselves, flattened (the raw-pixels
    // baseline of a table: the checkpoint only names the data and its normalisation; fine-tuning does not apply).
    std::string features = "encoder";
    int64_t maxTrain = 0;          // 0 = the whole training split; else a seeded random subset of this size
    int finetuneSteps = 300;
    double finetuneLr = 0;         // base lr of fine-tuning (x batch / 256); 0 = FineTuneOptions' default
    // Fine-tuning a randomly initialised encoder (a table's from-scratch baseline): no layer-wise lr decay (it suits
    // pretrained lower blocks, not random ones) and a warm-up of its own, a tenth of the steps (at least 20).
    bool finetuneFromScratch = false;
    uint64_t seed = 0;
    bool useCache = true;
    // Intra-op threads for extraction, the probes and fine-tuning; 0 = every core. Not the recipe's `threads`:
    // that says how the run trained (1 for a run of `table --jobs`), not what its evaluation may use.
    int threads = 0;
    // Where fine-tuning keeps its state, to continue after a stop (FineTuneOptions::statePath; not part of what
    // decides the result). evaluateStored sets it beside its store; empty: nowhere.
    std::string finetuneStatePath;
    // Asked before each protocol and each fine-tuning step (FineTuneOptions::stopRequested): a stop throws
    // EvaluationStopped, a fine-tuning's FineTuneStopped after saving its state. Not part of what decides the result.
    std::function<bool()> stopRequested;
};

// Where `graftlab-cli eval` and the GUI's Evaluate keep the state of the fine-tuning `request` asks for: a hidden
// file beside its checkpoint, .NAME.finetune-HASH.state, one per fine-tuning (steps, lr, pooling, seed, ..., and the
// checkpoint file's size and time), so either continues a fine-tuning the other was stopped in, and a different
// fine-tuning of the same checkpoint keeps its own state instead of overwriting it.
std::string fineTuneStatePathBeside(const EvalRequest& request);

// A fine-tuning's progress line at `step` of `steps`, `seconds` after this process began at step `fromStep` (0, or
// the step a saved state continued from): the rate and ETA count only the steps this process ran.
std::string fineTuneProgressLine(int64_t step, int64_t steps, int64_t fromStep, double seconds, int64_t batch, double loss);

// Throws FileError naming the checkpoint when it is not one, or its dataset cannot be loaded.
EvalReport evaluateCheckpoint(const EvalRequest& request, const std::function<void(const std::string&)>& log = {});

// evaluateCheckpoint, or the result stored in `store` (a JSON file of a table's or sweep's directory) by an
// earlier call with the same request: the same checkpoint file (path, size and modification time), features,
// protocols, pooling, training subset, fine-tuning steps and lr, and seed. Each result is stored as soon as it is
// made, so a table or sweep stopped during its evaluations (hours of fine-tuning at the larger budgets) does only
// the missing ones when the same command runs again. An unreadable store is evaluated anew and rewritten.
// A fine-tuning keeps its state beside the store (FineTuneOptions::statePath, one file per request), so the one
// a stop interrupts continues from its last save instead of starting again.
EvalReport evaluateStored(const EvalRequest& request, const std::string& store,
                          const std::function<void(const std::string&)>& log = {});

}  // namespace graftlab
