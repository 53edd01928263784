// graftlab-cli eval and embed.
#include "CliCommon.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "base/util/StopSignals.h"
#include "util/Log.h"
#include "data/Augment.h"
#include "data/Dataset.h"
#include "eval/EvaluateCheckpoint.h"
#include "train/EncoderExport.h"
#include "train/Device.h"
#include "train/LoadedModel.h"
#include "train/Trainer.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kEvalHelp =
    "Usage: graftlab-cli eval --ckpt FILE [--protocol linear|fewshot|knn|finetune|all] [--pool cls|mean]\n"
    "                         [--max-train N] [--finetune-steps N] [--finetune-lr LR] [--seed S] [--threads N]\n"
    "                         [--no-cache]\n"
    "\n"
    "Evaluates the checkpoint's encoder on its recipe's dataset and reports top-1 accuracy on the test split:\n"
    "  linear    BatchNorm without affine + Linear on frozen features; lr from {0.1, 0.03, 0.01} chosen on a\n"
    "            held-out tenth of the training split\n"
    "  fewshot   logistic regression on a class-balanced, seeded 1% of the training labels\n"
    "  knn       cosine k-NN, k = 20, votes weighted exp(sim / 0.07)\n"
    "  finetune  whole encoder + linear head, layer-wise lr decay 0.75, N steps (default 300), base lr 1e-2\n"
    "Prints a table and merges the results into eval.json beside the checkpoint. Frozen features are\n"
    "cached beside the checkpoint (--no-cache recomputes them). --threads N: intra-op threads (default 0 = every\n"
    "core, whatever the run trained with). Fine-tuning saves its state beside the checkpoint a tenth of its steps at\n"
    "a time (at most 500), and at once on Ctrl-C, kill or a logout: stopped in any way, the same command continues\n"
    "it and gives the uninterrupted result (one state file per fine-tuning: other steps, lr or seed keep their own).\n";

const char* kEmbedHelp =
    "Usage: graftlab-cli embed --ckpt FILE --out FEATS.pt [--split train|test] [--pool cls|mean] [--with-inputs]\n"
    "\n"
    "Writes {'features': (N, D), 'labels': (N)} (and with --with-inputs the normalised input images) in\n"
    "torch's format: feats = torch.load('FEATS.pt').\n";

std::vector<std::string> protocolsFrom(const std::string& arg) {
    if (arg == "all") return kProtocols;
    std::vector<std::string> out;
    std::stringstream ss(arg);
    std::string p;
    while (std::getline(ss, p, ',')) {
        if (std::find(kProtocols.begin(), kProtocols.end(), p) == kProtocols.end())
            throw UsageError("--protocol: unknown protocol \"" + p + "\" (linear, fewshot, knn, finetune or all)");
        out.push_back(p);
    }
    return out;
}

}  // namespace

void printEvalTable(const EvalReport& rep) {
    std::printf("%s (%s, step %lld) on %s: %lld train / %lld test images, %s pooling\n", rep.checkpoint.c_str(), rep.method.c_str(),
                (long long)rep.step, rep.dataset.c_str(), (long long)rep.trainImages, (long long)rep.testImages, rep.pooling.c_str());
    std::printf("  %-10s %8s  %s\n", "protocol", "top-1", "details");
    for (const auto& r : rep.results) {
        std::string d;
        char val[32];
        std::snprintf(val, sizeof val, "%.1f%%", 100.0 * r.details.value("val_top1", 0.0));
        if (r.protocol == "linear") d = "lr " + r.details["lr"].dump() + " (chosen on a held-out tenth of train: " + val + ")";
        else if (r.protocol == "fewshot") d = r.details["labelled"].dump() + " labelled images" + (r.details.contains("note") ? " (" + r.details["note"].get<std::string>() + ")" : "");
        else if (r.protocol == "knn") d = "k " + r.details["k"].dump() + ", T " + r.details["temperature"].dump();
        else d = r.details["steps"].dump() + " steps, layer decay " + r.details["layer_decay"].dump();
        std::printf("  %-10s %7.2f%%  %s\n", r.protocol.c_str(), 100.0 * r.top1, d.c_str());
    }
}

int cmdEval(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "protocol", "pool", "max-train", "finetune-steps", "finetune-lr", "seed", "threads"}, {"no-cache", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kEvalHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("eval needs --ckpt FILE");
    setupLogging(a.has("verbose"));
    EvalRequest req;
    req.checkpoint = checkpointArg(a);
    req.protocols = protocolsFrom(a.get("protocol", "all"));
    req.pooling = a.get("pool", "cls");
    if (req.pooling != "cls" && req.pooling != "mean") throw UsageError("--pool must be cls or mean");
    req.maxTrain = parseInt("max-train", a.get("max-train", "0"));
    req.finetuneSteps = int(parseInt("finetune-steps", a.get("finetune-steps", "300")));
    if (req.maxTrain < 0 || req.finetuneSteps < 1) throw UsageError("--max-train must be >= 0 and --finetune-steps >= 1");
    req.seed = uint64_t(parseInt("seed", a.get("seed", "0")));
    req.useCache = !a.has("no-cache");
    req.threads = parseThreads(a.get("threads", "0"));
    if (req.threads < 0) throw UsageError("--threads must be >= 0 (0 = every core)");
    if (a.has("finetune-lr")) {
        try {
            req.finetuneLr = std::stod(a.get("finetune-lr"));
        } catch (...) {
            req.finetuneLr = -1;
        }
        if (!(req.finetuneLr > 0)) throw UsageError("--finetune-lr must be a positive number");
    }
    // the fine-tuning a stop interrupts continues from here when the command runs again
    if (req.useCache) req.finetuneStatePath = fineTuneStatePathBeside(req);
    // Ctrl-C, kill, a logout (main's route keeps them): the fine-tuning saves its state at once and the command ends
    req.stopRequested = [] { return stopSignalReceived() != 0; };
    EvalReport rep;
    try {
        rep = evaluateCheckpoint(req, [](const std::string& m) { spdlog::info("{}", m); });
    } catch (const EvaluationStopped& e) {
        spdlog::info("{}", e.what());
        return kExitFailure;
    }
    std::string json = writeEvalJson(rep);
    printEvalTable(rep);
    for (const auto& w : rep.warnings) std::printf("warning: %s\n", w.c_str());
    spdlog::info("results merged into {}", json);
    return kExitOk;
}

int cmdEmbed(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "split", "pool"}, {"with-inputs", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kEmbedHelp;
        return kExitOk;
    }
    if (!a.has("ckpt") || !a.has("out")) throw UsageError("embed needs --ckpt FILE and --out FEATS.pt");
    std::string split = a.get("split", "test"), pool = a.get("pool", "cls");
    if (split != "train" && split != "test") throw UsageError("--split must be train or test");
    if (pool != "cls" && pool != "mean") throw UsageError("--pool must be cls or mean");
    setupLogging(a.has("verbose"));
    applyThreadSetting(0);  // every core: the run's own `threads` says how it trained
    LoadedModel m = loadCheckpointModel(checkpointArg(a));
    Dataset d = loadDataset(m.recipe.data, split == "train" ? Split::Train : Split::Test, uint64_t(m.recipe.seed));
    auto feats = extractFeatures(m.objective->encoder(), d, m.meta.mean, m.meta.std, pool);
    std::map<std::string, torch::Tensor> out = {{"features", feats}, {"labels", d.labels}};
    if (a.has("with-inputs")) out["inputs"] = normalizeImages(d.images.to(torch::kFloat32).div(255.0), m.meta.mean, m.meta.std);
    saveForPython(a.get("out"), out);
    spdlog::info("wrote {}: {} {} features of dimension {} ({} pooling)", a.get("out"), feats.size(0), split, feats.size(1), pool);
    return kExitOk;
}

}  // namespace graftlab::cli
