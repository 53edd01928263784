#include "eval/Protocols.h"
#include "data/Augment.h"
#include "train/Schedule.h"
#include "train/Optimizer.h"
#include "base/util/AtomicFile.h"
#include "base/util/ZipCheck.h"

#include <torch/torch.h>

#include <filesystem>
#include <sstream>
#include <algorithm>
#include <map>
#include <numeric>
#include <random>

namespace graftlab {
namespace F = torch::nn::functional;

torch::Tensor extractFeatures(VisionTransformer encoder, const Dataset& data, const std::vector<float>& mean,
                              const std::vector<float>& std, const std::string& pooling, int batch,
                              const std::function<void(int64_t, int64_t)>& progress) {
    torch::NoGradGuard ng;
    bool was = encoder->is_training();
    encoder->eval();
    auto device = encoder->cls_token.device();
    std::vector<torch::Tensor> out;
    const int64_t n = data.size();
    for (int64_t s = 0; s < n; s += batch) {
        auto x = data.images.slice(0, s, std::min(n, s + batch)).to(device).to(torch::kFloat32).div(255.0);
        auto tokens = encoder->forward(normalizeImages(x, mean, std));
        out.push_back((pooling == "mean" ? tokens.slice(1, 1).mean(1) : tokens.select(1, 0)).cpu());
        if (progress) progress(std::min(n, s + batch), n);
    }
    encoder->train(was);
    return torch::cat(out, 0);
}

namespace {

double accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
    return logits.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
}

// BatchNorm without affine at evaluation: standardise with the training features' statistics.
std::pair<torch::Tensor, torch::Tensor> standardiser(const torch::Tensor& train) {
    return {train.mean(0, true), train.var(0, false, true).add(1e-6).sqrt()};
}

// Mini-batch SGD (momentum 0.9, cosine lr) of a linear classifier on standardised features; returns (W, b).
torch::nn::Linear trainLinear(const torch::Tensor& x, const torch::Tensor& y, int classes, double lr, int epochs, int batch,
                              double weightDecay, uint64_t seed) {
    torch::manual_seed(seed);
    torch::nn::Linear head(x.size(1), classes);
    torch::nn::init::normal_(head->weight, 0.0, 0.01);
    torch::nn::init::zeros_(head->bias);
    torch::optim::SGD opt(head->parameters(), torch::optim::SGDOptions(lr).momentum(0.9).weight_decay(weightDecay));
    const int64_t n = x.size(0);
    const int64_t perEpoch = (n + batch - 1) / batch, total = perEpoch * epochs;
    auto gen = at::detail::createCPUGenerator(seed);
    int64_t step = 0;
    for (int e = 0; e < epochs; ++e) {
        auto perm = torch::randperm(n, gen, torch::kInt64);
        for (int64_t s = 0; s < n; s += batch, ++step) {
            auto idx = perm.slice(0, s, std::min(n, s + batch));
            static_cast<torch::optim::SGDOptions&>(opt.param_groups()[0].options()).lr(warmupCosineLr(step, total, 0, lr, 0.0));
            opt.zero_grad();
            auto loss = F::cross_entropy(head(x.index_select(0, idx)), y.index_select(0, idx));
            loss.backward();
            opt.step();
        }
    }
    return head;
}

}  // namespace

ProtocolResult linearProbe(const Features& f, const LinearProbeOptions& o) {
    auto [mu, sd] = standardiser(f.train);
    auto xtr = (f.train - mu) / sd, xte = (f.test - mu) / sd;
    // A tenth of the training features held out to choose the lr; the test split is touched once.
    const int64_t n = xtr.size(0);
    auto gen = at::detail::createCPUGenerator(o.seed + 17);
    auto perm = torch::randperm(n, gen, torch::kInt64);
    const int64_t nVal = std::max<int64_t>(1, n / 10);
    auto valIdx = perm.slice(0, 0, nVal), fitIdx = perm.slice(0, nVal);
    nlohmann::json sweep = nlohmann::json::array();
    double bestLr = o.lrs.front(), bestVal = -1;
    for (double lr : o.lrs) {
        auto head = trainLinear(xtr.index_select(0, fitIdx), f.trainLabels.index_select(0, fitIdx), f.numClasses, lr, o.epochs,
                                o.batch, 0.0, o.seed);
        torch::NoGradGuard ng;
        double val = accuracy(head(xtr.index_select(0, valIdx)), f.trainLabels.index_select(0, valIdx));
        sweep.push_back({{"lr", lr}, {"val_top1", val}});
        if (val > bestVal) {
            bestVal = val;
            bestLr = lr;
        }
    }
    auto head = trainLinear(xtr, f.trainLabels, f.numClasses, bestLr, o.epochs, o.batch, 0.0, o.seed);
    torch::NoGradGuard ng;
    ProtocolResult r;
    r.protocol = "linear";
    r.top1 = accuracy(head(xte), f.testLabels);
    r.details = {{"lr", bestLr}, {"val_top1", bestVal}, {"sweep", sweep}, {"epochs", o.epochs}, {"train", n}, {"pooling", f.pooling}};
    return r;
}

std::vector<int64_t> balancedSubset(const torch::Tensor& labels, int numClasses, double fraction, uint64_t seed) {
    const int64_t n = labels.size(0);
    const int64_t want = std::llround(fraction * double(n));
    auto lab = labels.to(torch::kInt64).contiguous();
    const int64_t* p = lab.data_ptr<int64_t>();
    std::vector<std::vector<int64_t>> byClass(size_t(std::max(1, numClasses)));
    for (int64_t i = 0; i < n; ++i)
        if (p[i] >= 0 && p[i] < numClasses) byClass[size_t(p[i])].push_back(i);
    std::mt19937_64 rng(seed);
    for (auto& c : byClass) std::shuffle(c.begin(), c.end(), rng);
    // Equal shares; the remainder to the largest classes (ties: lower class index), never more than a class has.
    std::vector<int64_t> take(byClass.size(), 0);
    int64_t left = want;
    while (left > 0) {
        int64_t open = 0;
        for (size_t c = 0; c < byClass.size(); ++c) open += take[c] < int64_t(byClass[c].size());
        if (open == 0) break;
        int64_t share = std::max<int64_t>(1, left / open);
        std::vector<size_t> order(byClass.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return byClass[a].size() > byClass[b].size(); });
        for (size_t c : order) {
            if (left == 0) break;
            int64_t add = std::min({share, left, int64_t(byClass[c].size()) - take[c]});
            take[c] += add;
            left -= add;
        }
    }
    std::vector<int64_t> out;
    for (size_t c = 0; c < byClass.size(); ++c) out.insert(out.end(), byClass[c].begin(), byClass[c].begin() + take[c]);
    std::sort(out.begin(), out.end());
    return out;
}

ProtocolResult fewShot(const Features& f, const FewShotOptions& o) {
    auto subset = balancedSubset(f.trainLabels, f.numClasses, o.fraction, o.seed);
    auto idx = torch::tensor(subset, torch::kInt64);
    auto x = f.train.index_select(0, idx), y = f.trainLabels.index_select(0, idx);
    auto [mu, sd] = standardiser(x);
    x = (x - mu) / sd;
    torch::manual_seed(o.seed);
    torch::nn::Linear head(x.size(1), f.numClasses);
    torch::nn::init::zeros_(head->weight);
    torch::nn::init::zeros_(head->bias);
    // Multinomial logistic regression, full batch, L2-regularised.
    torch::optim::Adam opt(head->parameters(), torch::optim::AdamOptions(0.01).weight_decay(o.weightDecay));
    for (int s = 0; s < o.steps; ++s) {
        opt.zero_grad();
        F::cross_entropy(head(x), y).backward();
        opt.step();
    }
    torch::NoGradGuard ng;
    ProtocolResult r;
    r.protocol = "fewshot";
    r.top1 = accuracy(head((f.test - mu) / sd), f.testLabels);
    r.details = {{"fraction", o.fraction}, {"labelled", int64_t(subset.size())}, {"steps", o.steps}, {"seed", o.seed}, {"pooling", f.pooling}};
    if (int64_t(subset.size()) < f.numClasses)
        r.details["note"] = "fewer labelled images than classes: this training split is too small for a 1% protocol";
    return r;
}

ProtocolResult knn(const Features& f, const KnnOptions& o) {
    torch::NoGradGuard ng;
    auto tr = F::normalize(f.train, F::NormalizeFuncOptions().dim(1));
    auto te = F::normalize(f.test, F::NormalizeFuncOptions().dim(1));
    const int64_t k = std::min<int64_t>(o.k, tr.size(0));
    int64_t correct = 0;
    for (int64_t s = 0; s < te.size(0); s += 256) {
        auto q = te.slice(0, s, std::min(te.size(0), s + 256));
        auto [sim, idx] = torch::mm(q, tr.t()).topk(k, 1);
        auto weights = (sim / o.temperature).exp();
        auto votes = torch::zeros({q.size(0), f.numClasses});
        votes.scatter_add_(1, f.trainLabels.index({idx.flatten()}).view_as(idx), weights);
        correct += votes.argmax(1).eq(f.testLabels.slice(0, s, s + q.size(0))).sum().item<int64_t>();
    }
    ProtocolResult r;
    r.protocol = "knn";
    r.top1 = double(correct) / double(std::max<int64_t>(1, te.size(0)));
    r.details = {{"k", k}, {"temperature", o.temperature}, {"pooling", f.pooling}};
    return r;
}

double layerDecayScale(const std::string& name, int depth, double decay) {
    return std::pow(decay, double(depth + 1 - vitLayerId(name, depth)));
}

namespace {
VisionTransformer copyEncoder(VisionTransformer src) {
    VisionTransformer dst(src->cfg);
    torch::NoGradGuard ng;
    auto s = src->named_parameters(true), d = dst->named_parameters(true);
    for (auto& p : d) p.value().copy_(s[p.key()]);
    auto sb = src->named_buffers(true), db = dst->named_buffers(true);
    for (auto& b : db) b.value().copy_(sb[b.key()]);
    dst->to(src->cls_token.device());
    return dst;
}

struct FineTuneModel {
    VisionTransformer enc{nullptr};
    torch::nn::Linear head{nullptr};
    std::vector<torch::optim::OptimizerParamGroup> groups;
    std::vector<double> scales;
    std::vector<std::string> names;
};

FineTuneModel buildFineTune(VisionTransformer encoder, int classes, const FineTuneOptions& o) {
    FineTuneModel m;
    m.enc = copyEncoder(encoder);
    for (auto& p : m.enc->parameters()) p.set_requires_grad(true);
    torch::manual_seed(o.seed);
    m.head = torch::nn::Linear(encoder->cfg.embedDim, std::max(1, classes));
    torch::nn::init::normal_(m.head->weight, 0.0, 2e-5);
    torch::nn::init::zeros_(m.head->bias);
    m.head->to(encoder->cls_token.device());
    AdamwSettings settings;  // MAE's fine-tuning: betas 0.9 / 0.999, no decay on the class token either
    settings.peakLr = linearScaledLr(o.baseLr, o.batch);
    settings.weightDecay = o.weightDecay;
    settings.noDecay = {"cls_token"};
    std::vector<std::pair<std::string, torch::Tensor>> named;
    std::map<std::string, double> scale;
    for (auto& p : m.enc->named_parameters(true)) {
        named.emplace_back(p.key(), p.value());
        scale[p.key()] = layerDecayScale(p.key(), encoder->cfg.depth, o.layerDecay);
    }
    for (auto& p : m.head->named_parameters(true)) {
        named.emplace_back("head." + p.key(), p.value());
        scale["head." + p.key()] = 1.0;
    }
    AdamwGroups built = adamwGroups(named, settings, [&](const std::string& name) { return scale.at(name); });
    m.groups = std::move(built.groups);
    m.scales = std::move(built.multipliers);
    m.names = std::move(built.firstNames);
    return m;
}
}  // namespace

std::vector<std::pair<std::string, double>> fineTuneLearningRates(VisionTransformer encoder, const FineTuneOptions& o) {
    const double peak = linearScaledLr(o.baseLr, o.batch);
    std::vector<std::pair<std::string, double>> out;
    for (auto& p : encoder->named_parameters(true))
        out.emplace_back(p.key(), peak * layerDecayScale(p.key(), encoder->cfg.depth, o.layerDecay));
    out.emplace_back("head.weight", peak);
    return out;
}

int fineTuneSaveInterval(int steps) { return std::clamp(steps / 10, 1, 500); }

FineTuneStopped::FineTuneStopped(int step, int steps, bool stateSaved, const std::string& statePath)
    : EvaluationStopped("fine-tuning stopped at step " + std::to_string(step) + " of " + std::to_string(steps) +
                         (stateSaved  ? ": its state is kept in " + statePath + ", and the same evaluation continues from there"
                          : step == 0 ? std::string(", before its first step")
                          : statePath.empty()
                              ? std::string(": no state is kept for it (none is asked for), so the same evaluation starts it again")
                              : ": its state could not be written to " + statePath + ", so the same evaluation starts it again")),
      step(step),
      steps(steps),
      stateSaved(stateSaved) {}

ProtocolResult fineTune(VisionTransformer encoder, const Dataset& train, const Dataset& test, const std::vector<float>& mean,
                        const std::vector<float>& std, const FineTuneOptions& o) {
    FineTuneModel m = buildFineTune(encoder, train.numClasses, o);
    // the fused kernel where LibTorch has it; a pointer, so that a damaged state's half-load can be thrown away
    auto opt = std::make_unique<AdamW>(m.groups, torch::optim::AdamWOptions(o.baseLr));
    const double peak = linearScaledLr(o.baseLr, o.batch);
    auto device = encoder->cls_token.device();
    std::mt19937_64 rng(o.seed);
    auto gen = at::detail::createCPUGenerator(o.seed);
    const int64_t n = train.size();
    torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
    int64_t cursor = 0;
    double lastLoss = 0;
    int first = 0;
    // Everything the next step depends on: a state saved after step k and loaded gives the same steps k + 1, ...
    auto saveState = [&](int done) {
        torch::serialize::OutputArchive root;
        root.write("key", c10::IValue(o.stateKey));
        root.write("done", c10::IValue(int64_t(done)));
        root.write("steps", c10::IValue(int64_t(o.steps)));
        root.write("cursor", c10::IValue(cursor));
        root.write("last_loss", c10::IValue(lastLoss));
        root.write("perm", perm);
        root.write("gen", gen.get_state());
        std::ostringstream r;
        r << rng;
        root.write("rng", c10::IValue(r.str()));
        torch::serialize::OutputArchive enc, head, optim;
        for (const auto& p : m.enc->named_parameters(true)) enc.write(p.key(), p.value().detach().cpu());
        for (const auto& b : m.enc->named_buffers(true)) enc.write(b.key(), b.value().detach().cpu(), true);
        for (const auto& p : m.head->named_parameters(true)) head.write(p.key(), p.value().detach().cpu());
        opt->save(optim);
        root.write("encoder", enc);
        root.write("head", head);
        root.write("optimizer", optim);
        std::ostringstream out;
        root.save_to(out);
        writeFileAtomically(o.statePath, out.str());
    };
    auto loadState = [&] {
        torch::serialize::InputArchive root;
        const std::string bytes = readFile(o.statePath);
        verifyZipArchive(bytes.data(), bytes.size(), o.statePath);  // damage is found here, before torch parses anything
        root.load_from(bytes.data(), bytes.size());
        c10::IValue v;
        root.read("key", v);
        if (v.toStringRef() != o.stateKey) return std::string("was made for another fine-tuning");
        root.read("steps", v);
        if (v.toInt() != o.steps) return std::string("was made for another number of steps");
        root.read("done", v);
        const int done = int(v.toInt());
        root.read("cursor", v);
        const int64_t savedCursor = v.toInt();
        root.read("last_loss", v);
        const double savedLoss = v.toDouble();
        torch::Tensor savedPerm, genState;
        root.read("perm", savedPerm);
        root.read("gen", genState);
        root.read("rng", v);
        std::mt19937_64 savedRng;
        std::istringstream(v.toStringRef()) >> savedRng;
        torch::serialize::InputArchive enc, head, optim;
        root.read("encoder", enc);
        root.read("head", head);
        root.read("optimizer", optim);
        torch::NoGradGuard ng;
        for (auto& p : m.enc->named_parameters(true)) {
            torch::Tensor t;
            enc.read(p.key(), t);
            p.value().copy_(t);
        }
        for (auto& b : m.enc->named_buffers(true)) {
            torch::Tensor t;
            enc.read(b.key(), t, true);
            b.value().copy_(t);
        }
        for (auto& p : m.head->named_parameters(true)) {
            torch::Tensor t;
            head.read(p.key(), t);
            p.value().copy_(t);
        }
        opt->load(optim);
        gen.set_state(genState);
        rng = savedRng;
        perm = savedPerm;
        cursor = savedCursor;
        lastLoss = savedLoss;
        first = done;
        return std::string();
    };
    if (!o.statePath.empty() && std::filesystem::exists(o.statePath)) {
        std::string why;
        try {
            why = loadState();
        } catch (const std::exception& e) {
            why = std::string("is damaged (") + e.what() + ")";
            first = 0;
        }
        if (!why.empty()) {
            // A half-loaded state must not leak into the fresh start: rebuild everything it may have touched.
            m = buildFineTune(encoder, train.numClasses, o);
            opt = std::make_unique<AdamW>(m.groups, torch::optim::AdamWOptions(o.baseLr));
            rng.seed(o.seed);
            gen = at::detail::createCPUGenerator(o.seed);
            perm = torch::randperm(n, gen, torch::kInt64);
            cursor = 0;
            lastLoss = 0;
            first = 0;
            if (o.note) o.note("the fine-tuning state " + o.statePath + " " + why.substr(0, why.find('\n')) + ": fine-tuning from the start");
        } else if (o.note) {
            o.note("continuing the fine-tuning from step " + std::to_string(first) + " of " + std::to_string(o.steps) + " (state in " +
                   o.statePath + ")");
        }
    }
    const int interval = fineTuneSaveInterval(o.steps);
    bool saveStates = !o.statePath.empty();
    m.enc->train();
    auto pool = [&](const torch::Tensor& tokens) { return o.pooling == "mean" ? tokens.slice(1, 1).mean(1) : tokens.select(1, 0); };
    for (int step = first; step < o.steps; ++step) {
        if (o.stopRequested && o.stopRequested()) {
            bool kept = saveStates && first > 0 && step == first;  // the state it continued from holds these steps
            if (saveStates && step > first) {
                try {
                    saveState(step);
                    kept = true;
                } catch (const std::exception& e) {
                    if (o.note) o.note("the fine-tuning state cannot be written to " + o.statePath + " (" + e.what() + ")");
                }
            }
            throw FineTuneStopped(step, o.steps, kept, o.statePath);
        }
        if (cursor + o.batch > n) {
            perm = torch::randperm(n, gen, torch::kInt64);
            cursor = 0;
        }
        auto idx = perm.slice(0, cursor, cursor + std::min<int64_t>(o.batch, n));
        cursor += o.batch;
        auto x = train.images.index_select(0, idx).to(torch::kFloat32).div(255.0);
        // Light augmentation: random resized crop (0.5..1) and flip.
        auto boxes = sampleResizedCrops(x.size(0), int(x.size(2)), int(x.size(3)), 0.5, 1.0, /*hflip=*/true, rng);
        x = normalizeImages(applyCrops(x, boxes), mean, std).to(device);
        auto y = train.labels.index_select(0, idx).to(device);
        double lr = warmupCosineLr(step, o.steps, o.warmupSteps, peak, 1e-6);
        for (size_t g = 0; g < opt->param_groups().size(); ++g)
            static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[g].options()).lr(lr * m.scales[g]);
        opt->zero_grad();
        auto loss = F::cross_entropy(m.head(pool(m.enc->forward(x))), y, F::CrossEntropyFuncOptions().label_smoothing(o.labelSmoothing));
        loss.backward();
        opt->step();
        lastLoss = loss.item<double>();
        if (saveStates && (step + 1) % interval == 0 && step + 1 < o.steps) {
            try {
                saveState(step + 1);
            } catch (const std::exception& e) {  // a full disk costs the ability to continue, not the fine-tuning
                saveStates = false;
                if (o.note) o.note("the fine-tuning state cannot be written to " + o.statePath + " (" + e.what() + "): fine-tuning on without it");
            }
        }
        if (o.progress) o.progress(step + 1, o.steps, lastLoss);
    }
    torch::NoGradGuard ng;
    m.enc->eval();
    int64_t correct = 0;
    for (int64_t s = 0; s < test.size(); s += 256) {
        auto x = test.images.slice(0, s, std::min(test.size(), s + 256)).to(torch::kFloat32).div(255.0);
        auto logits = m.head(pool(m.enc->forward(normalizeImages(x, mean, std).to(device))));
        correct += logits.argmax(1).cpu().eq(test.labels.slice(0, s, s + x.size(0))).sum().item<int64_t>();
    }
    ProtocolResult r;
    r.protocol = "finetune";
    r.top1 = double(correct) / double(std::max<int64_t>(1, test.size()));
    r.details = {{"steps", o.steps}, {"batch", o.batch}, {"base_lr", o.baseLr}, {"layer_decay", o.layerDecay}, {"warmup_steps", o.warmupSteps},
                 {"final_train_loss", lastLoss}, {"pooling", o.pooling}};
    if (first > 0) r.details["resumed_from_step"] = first;
    if (!o.statePath.empty()) {
        std::error_code ec;
        std::filesystem::remove(o.statePath, ec);
    }
    return r;
}

}  // namespace graftlab
