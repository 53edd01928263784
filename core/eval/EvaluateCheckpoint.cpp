#include "eval/EvaluateCheckpoint.h"
#include "data/Augment.h"
#include "base/export/Safetensors.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/Device.h"
#include "train/LoadedModel.h"
#include "train/Trainer.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <torch/torch.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <fstream>

namespace graftlab {
namespace fs = std::filesystem;

namespace {
// Features cached beside the checkpoint, valid for the checkpoint's size and modification time.
std::string cachePath(const EvalRequest& r, const std::string& split) {
    fs::path p(r.checkpoint);
    return (p.parent_path() / ("." + p.filename().string() + ".features-" + (r.features == "pixels" ? "pixels" : r.pooling) + "-" + split + "-n" +
                               std::to_string(split == "train" ? r.maxTrain : 0) + ".pt"))
        .string();
}

std::string cacheKey(const std::string& ckpt) {
    std::error_code ec;
    auto size = fs::file_size(ckpt, ec);
    auto time = fs::last_write_time(ckpt, ec).time_since_epoch().count();
    return std::to_string(size) + ":" + std::to_string(time);
}

// A checkpoint's path as a key: absolute and normalised, or as given when the working directory cannot be read.
std::string absoluteKeyPath(const std::string& path) {
    std::error_code ec;
    const fs::path a = fs::absolute(path, ec);
    return (ec ? fs::path(path) : a).lexically_normal().string();
}

// Everything a fine-tuning's steps depend on: a saved state is continued only by a request with the same key. The
// checkpoint by its absolute path, so `eval` given a relative one and the GUI continue each other's fine-tunings.
std::string fineTuneStateKey(const EvalRequest& r) {
    return absoluteKeyPath(r.checkpoint) + "|" + cacheKey(r.checkpoint) + "|" +
           std::to_string(r.finetuneSteps) + "|" + std::to_string(r.finetuneLr) + "|" +
           (r.finetuneFromScratch ? "scratch" : "pretrained") + "|" + r.pooling + "|" + std::to_string(r.maxTrain) + "|" +
           std::to_string(r.seed);
}

// 16 hex digits of the 64-bit FNV-1a hash of `text`: a file name for one key.
std::string hashName(const std::string& text) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", (unsigned long long)h);
    return name;
}

torch::Tensor cachedFeatures(const EvalRequest& r, const std::string& split, const std::function<torch::Tensor()>& compute,
                             const std::function<void(const std::string&)>& log) {
    std::string path = cachePath(r, split), key = cacheKey(r.checkpoint);
    if (r.useCache && fs::exists(path)) {
        try {
            std::ifstream in(path, std::ios::binary);
            std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            auto dict = torch::pickle_load(bytes).toGenericDict();
            auto storedKey = dict.at("key").toStringRef();
            if (storedKey == key) {
                if (log) log("features of the " + split + " split from the cache " + path);
                return dict.at("features").toTensor();
            }
        } catch (const std::exception&) {
            // a stale or damaged cache is recomputed
        }
    }
    torch::Tensor f = compute();
    if (r.useCache) {
        try {
            c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
            dict.insert(torch::IValue(std::string("key")), torch::IValue(key));
            dict.insert(torch::IValue(std::string("features")), torch::IValue(f));
            auto bytes = torch::pickle_save(torch::IValue(dict));
            writeFileAtomically(path, std::string_view(bytes.data(), bytes.size()));
        } catch (const std::exception& e) {
            if (log) log(std::string("features not cached: ") + e.what());
        }
    }
    return f;
}
}  // namespace

EvalReport evaluateCheckpoint(const EvalRequest& r, const std::function<void(const std::string&)>& log) {
    static const std::set<std::string> known(kProtocols.begin(), kProtocols.end());
    for (const auto& p : r.protocols)
        if (!known.count(p)) throw std::invalid_argument("unknown protocol \"" + p + "\"; expected linear, fewshot, knn or finetune");
    if (r.pooling != "cls" && r.pooling != "mean") throw std::invalid_argument("pooling must be cls or mean, got \"" + r.pooling + "\"");
    const bool pixels = r.features == "pixels";
    if (!pixels && r.features != "encoder") throw std::invalid_argument("features must be encoder or pixels, got \"" + r.features + "\"");
    if (pixels && std::find(r.protocols.begin(), r.protocols.end(), "finetune") != r.protocols.end())
        throw std::invalid_argument("fine-tuning needs an encoder; raw pixels have none");
    if (r.threads < 0) throw std::invalid_argument("threads must be >= 0 (0 = every core), got " + std::to_string(r.threads));
    applyThreadSetting(r.threads);
    LoadedModel m = loadCheckpointModel(r.checkpoint);
    EvalReport rep;
    rep.checkpoint = r.checkpoint;
    rep.method = pixels ? "raw pixels" : m.method;
    rep.step = pixels ? 0 : m.meta.step;
    rep.pooling = pixels ? "pixels" : r.pooling;
    Dataset train = loadDataset(m.recipe.data, Split::Train, uint64_t(m.recipe.seed));
    Dataset test = loadDataset(m.recipe.data, Split::Test, uint64_t(m.recipe.seed));
    if (train.channels() != m.meta.channels)
        throw FileError(r.checkpoint, "was trained on " + std::to_string(m.meta.channels) + "-channel images; its dataset " + train.name +
                                          " now has " + std::to_string(train.channels()));
    if (train.name != m.meta.dataset && log)
        log("note: the checkpoint was trained on " + m.meta.dataset + ", evaluating on " + train.name);
    if (const int64_t shared = imagesShared(train, test); shared > 0) {
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.1f", 100.0 * double(shared) / double(test.size()));
        rep.warnings.push_back(std::to_string(shared) + " of the " + std::to_string(test.size()) + " test images of " + test.name + " (" + pct +
                               " %) are also in its training split: on those, accuracy measures memory, not the encoder's features");
        if (log) log("warning: " + rep.warnings.back());
    }
    if (r.maxTrain > 0 && r.maxTrain < train.size()) {
        auto gen = at::detail::createCPUGenerator(r.seed + 99);
        auto idx = std::get<0>(torch::randperm(train.size(), gen, torch::kInt64).slice(0, 0, r.maxTrain).sort());
        train.images = train.images.index_select(0, idx);
        train.labels = train.labels.index_select(0, idx);
    }
    rep.dataset = train.name;
    if (train.labels.defined() && train.size() > 0) {
        const int64_t classes = std::get<0>(at::_unique(train.labels)).numel();
        if (classes < 2) {
            rep.warnings.push_back("the training split of " + train.name + " holds " + std::to_string(classes) +
                                   " class: every classifier scores 100 % on it, so these accuracies say nothing about the encoder");
            if (log) log("warning: " + rep.warnings.back());
        }
    }
    rep.trainImages = train.size();
    rep.testImages = test.size();
    auto encoder = m.objective->encoder();
    const auto& mean = m.meta.mean;
    const auto& std = m.meta.std;

    bool frozen = false;
    for (const auto& p : r.protocols) frozen = frozen || p != "finetune";
    Features f;
    if (frozen) {
        auto extract = [&](const Dataset& d, const std::string& split) {
            return cachedFeatures(r, split, [&] {
                if (pixels) return normalizeImages(d.images.to(torch::kFloat32).div(255.0), mean, std).flatten(1).contiguous();
                if (log) log("extracting " + r.pooling + " features of " + std::to_string(d.size()) + " " + split + " images");
                return extractFeatures(encoder, d, mean, std, r.pooling);
            }, log);
        };
        f.train = extract(train, "train");
        f.test = extract(test, "test");
        f.trainLabels = train.labels;
        f.testLabels = test.labels;
        f.numClasses = train.numClasses;
        f.pooling = rep.pooling;
    }
    for (const auto& p : r.protocols) {
        if (r.stopRequested && r.stopRequested())  // the frozen protocols take a minute at most: a stop waits for one
            throw EvaluationStopped("evaluation stopped before its " + p + " protocol");
        auto t0 = std::chrono::steady_clock::now();
        ProtocolResult res;
        if (p == "linear") {
            LinearProbeOptions o;
            o.seed = r.seed;
            res = linearProbe(f, o);
        } else if (p == "fewshot") {
            FewShotOptions o;
            o.seed = r.seed;
            res = fewShot(f, o);
        } else if (p == "knn") {
            res = knn(f);
        } else {
            FineTuneOptions o;
            o.steps = r.finetuneSteps;
            if (r.finetuneLr > 0) o.baseLr = r.finetuneLr;
            if (r.finetuneFromScratch) {
                o.layerDecay = 1.0;
                o.warmupSteps = std::max(20, o.steps / 10);
            }
            o.seed = r.seed;
            o.pooling = r.pooling;
            o.statePath = r.finetuneStatePath;
            o.stateKey = fineTuneStateKey(r);
            if (log) o.note = log;
            o.stopRequested = r.stopRequested;
            const auto started = std::chrono::steady_clock::now();
            int64_t fromStep = -1;  // the step this process began at: the first step reported, less one
            if (log)  // a tenth at a time: thousands of steps take minutes at the larger budgets
                o.progress = [&](int64_t step, int64_t steps, double loss) {
                    if (fromStep < 0) fromStep = step - 1;
                    if (step % std::max<int64_t>(1, steps / 10) != 0 && step != steps) return;
                    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                    log(fineTuneProgressLine(step, steps, fromStep, s, o.batch, loss));
                };
            res = fineTune(encoder, train, test, mean, std, o);
        }
        res.details["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (log) {
            char buf[64];
            std::snprintf(buf, sizeof buf, ": top-1 %.2f%%", 100.0 * res.top1);
            log(p + buf);
        }
        rep.results.push_back(res);
    }
    return rep;
}

namespace {

// Everything that decides an evaluation's result, as one string.
std::string storedEvaluationKey(const EvalRequest& r) {
    std::error_code ec;
    const auto bytes = fs::file_size(r.checkpoint, ec);
    const auto modified = fs::last_write_time(r.checkpoint, ec).time_since_epoch().count();
    nlohmann::json k = {{"checkpoint", absoluteKeyPath(r.checkpoint)},
                        {"bytes", ec ? 0 : bytes},
                        {"modified", ec ? 0 : int64_t(modified)},
                        {"features", r.features},
                        {"protocols", r.protocols},
                        {"pooling", r.pooling},
                        {"max_train", r.maxTrain},
                        {"finetune_steps", r.finetuneSteps},
                        {"finetune_lr", r.finetuneLr},
                        {"seed", r.seed}};
    if (r.finetuneFromScratch) k["finetune_from_scratch"] = true;  // absent otherwise: earlier stores stay valid
    return k.dump();
}

}  // namespace

std::string fineTuneStatePathBeside(const EvalRequest& request) {
    const fs::path c(request.checkpoint);
    return (c.parent_path() / ("." + c.filename().string() + ".finetune-" + hashName(fineTuneStateKey(request)) + ".state")).string();
}

std::string fineTuneProgressLine(int64_t step, int64_t steps, int64_t fromStep, double seconds, int64_t batch, double loss) {
    const double ran = double(std::max<int64_t>(1, step - fromStep));
    char buf[128];
    std::snprintf(buf, sizeof buf, "fine-tuning step %lld/%lld, loss %.4f, %.0f img/s, ETA %.0f s", (long long)step, (long long)steps, loss,
                  ran * double(batch) / std::max(seconds, 1e-9), seconds / ran * double(steps - step));
    return buf;
}

EvalReport evaluateStored(const EvalRequest& request, const std::string& store, const std::function<void(const std::string&)>& log) {
    auto say = [&](const std::string& m) {
        if (log) log(m);
    };
    nlohmann::json all = nlohmann::json::object();
    if (fs::exists(store)) {
        try {
            all = nlohmann::json::parse(readFile(store));
            if (!all.is_object()) throw std::runtime_error("not an object");
        } catch (const std::exception&) {
            say(store + " is unreadable: evaluating again");
            all = nlohmann::json::object();
        }
    }
    const std::string key = storedEvaluationKey(request);
    if (all.contains(key)) {
        try {
            EvalReport rep = EvalReport::fromJson(all[key]);
            say("reusing the evaluation stored in " + store);
            return rep;
        } catch (const std::exception&) {
            say("the evaluation stored in " + store + " is malformed: evaluating again");
        }
    }
    EvalRequest req = request;
    if (std::find(req.protocols.begin(), req.protocols.end(), "finetune") != req.protocols.end()) {
        const fs::path s(store);  // one state file per request
        req.finetuneStatePath = (s.parent_path() / ("." + s.filename().string() + "-finetune-" + hashName(key) + ".state")).string();
    }
    EvalReport rep = evaluateCheckpoint(req, log);
    all[key] = rep.toJson();
    writeFileAtomically(store, all.dump(1) + "\n");
    return rep;
}

}  // namespace graftlab
