#include "model/FusedAttention.h"
#include "model/Linear.h"
#include "data/Augment.h"
#include "methods/Objective.h"
#include "data/Dataset.h"
#include "data/Loader.h"
#include "train/Device.h"
#include "methods/Mae.h"
#include "train/Checkpoint.h"
#include "train/RunWriter.h"
#include "train/Schedule.h"
#include "methods/Ema.h"
#include "train/Trainer.h"
#include "train/TrainStep.h"
#include "train/Optimizer.h"
#include "util/TorchVersion.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <sstream>

#include <QtTest>

#include <filesystem>
#include <fstream>

using namespace graftlab;
namespace fs = std::filesystem;

namespace {
struct Recorder : TrainerObserver {
    std::vector<MetricsRow> rows;
    std::vector<TrainerState> states;
    std::vector<std::string> checkpoints;
    void onMetrics(const MetricsRow& r) override { rows.push_back(r); }
    void onStateChanged(TrainerState s, const std::string&) override { states.push_back(s); }
    void onCheckpoint(const std::string& p, int64_t) override { checkpoints.push_back(p); }
};

// The key LibTorch's optimizers file a parameter's state under (the TensorImpl's address in 2.x, its string in 1.13).
template <class Opt>
auto stateKeyFor(const Opt& o, const torch::Tensor& p) {
    using Key = typename std::decay_t<decltype(o.state())>::key_type;
    if constexpr (std::is_same_v<Key, std::string>) {
        std::ostringstream os;  // as c10::guts::to_string wrote the address in LibTorch 1.13
        os << static_cast<const void*>(p.unsafeGetTensorImpl());
        return os.str();
    }
    else return Key(p.unsafeGetTensorImpl());
}

// A trainer resumed from `ckpt` whose encoder norm is NaN: every loss from there on is NaN.
std::unique_ptr<Trainer> poisonedTrainer(const Recipe& r, const std::string& dir, const std::string& ckpt, bool deviceChecks) {
    TrainerOptions o;
    o.checkpointDir = dir;
    o.deviceChecks = deviceChecks;
    auto t = std::make_unique<Trainer>(r, o);
    t->prepare();
    t->resumeFrom(ckpt);
    torch::NoGradGuard ng;
    t->objective().encoder()->norm->weight.fill_(std::nan(""));
    return t;
}

bool sameParameters(torch::nn::Module& a, torch::nn::Module& b) {
    auto pa = a.named_parameters(), pb = b.named_parameters();
    if (pa.size() != pb.size()) return false;
    for (const auto& p : pa)
        if (!torch::equal(p.value(), pb[p.key()])) return false;
    return true;
}
}  // namespace

// A tiny recipe's objective for `method` with one fixed batch of 16 synthetic images and its views, and a step
// context at step 0 of 10: for comparing two ways of computing the same loss.
struct FixedBatch {
    Recipe recipe = test::tinyRecipe();
    std::shared_ptr<Objective> obj;
    Batch batch;
    StepContext ctx;
    FixedBatch(const std::string& method, uint64_t seed) {
        recipe.method = method;
        torch::manual_seed(seed);
        Dataset data = makeSynthetic(32, recipe.data.imageSize, 3, Split::Train);
        obj = makeObjective(recipe, method, data.channels(), data.mean, data.std);
        batch.images = data.images.slice(0, 0, 16).to(torch::kFloat32).div(255.0);
        batch.views = obj->makeViews(batch.images, 5);
        batch.labels = data.labels.slice(0, 0, 16);
        ctx.step = 0;
        ctx.totalSteps = 10;
        ctx.stageSteps = 10;
    }
};

// What an observer saw of `r` trained to its end with checkpoints in `checkpointDir` (throws when it does not finish).
Recorder runToEnd(const Recipe& r, const std::string& checkpointDir) {
    TrainerOptions o;
    o.checkpointDir = checkpointDir;
    Trainer t(r, o);
    Recorder rec;
    t.addObserver(&rec);
    if (t.run() != TrainerState::Finished) throw std::runtime_error("the run of " + r.name + " did not finish");
    return rec;
}

// The logged losses of `r` trained to its end (checkpoints in a scratch directory, removed after).
std::vector<double> lossesOfAFullRun(const Recipe& r) {
    auto dir = test::tempDir("full-run");
    Recorder rec = runToEnd(r, dir + "/checkpoints");
    fs::remove_all(dir);
    std::vector<double> losses;
    for (const auto& row : rec.rows) losses.push_back(row.value("loss"));
    return losses;
}

class TrainTest : public QObject {
    Q_OBJECT
private slots:
    void scheduleWarmupThenCosine() {
        QCOMPARE(warmupCosineLr(0, 100, 10, 1.0, 0.0), 0.0);
        QCOMPARE(warmupCosineLr(5, 100, 10, 1.0, 0.0), 0.5);
        QCOMPARE(warmupCosineLr(10, 100, 10, 1.0, 0.0), 1.0);
        QVERIFY(std::abs(warmupCosineLr(55, 100, 10, 1.0, 0.0) - 0.5) < 1e-12);
        QVERIFY(std::abs(warmupCosineLr(100, 100, 10, 1.0, 0.1) - 0.1) < 1e-12);
        QVERIFY(std::abs(cosineRamp(0, 10, 0.99, 1.0) - 0.99) < 1e-12);
        QVERIFY(std::abs(cosineRamp(10, 10, 0.99, 1.0) - 1.0) < 1e-12);
        // between the ends it is a half cosine, not a line: 1 - (1 - m0)(cos(pi t / T) + 1) / 2
        for (int64_t t : {1, 3, 5, 8}) {
            double expected = 1.0 - 0.01 * (std::cos(M_PI * double(t) / 10.0) + 1) / 2;
            QVERIFY2(std::abs(cosineRamp(t, 10, 0.99, 1.0) - expected) < 1e-12, std::to_string(t).c_str());
        }
        QVERIFY(std::abs(cosineRamp(5, 10, 0.99, 1.0) - 0.995) < 1e-12);       // a linear ramp agrees here ...
        QVERIFY(std::abs(cosineRamp(2, 10, 0.99, 1.0) - 0.990955) < 1e-6);     // ... but not here (linear: 0.992)
        // and the lr: a half cosine after the warm-up, not a line (a third of the way: 0.75, a line would give 0.667)
        QVERIFY(std::abs(warmupCosineLr(40, 100, 10, 1.0, 0.0) - 0.75) < 1e-12);
    }

    void smallModelOverfitsOneBatch() {
        Recipe r = test::tinyRecipe();
        torch::manual_seed(0);
        torch::set_num_threads(2);
        MaeObjective mae(r, 1, {0.5f}, {0.25f});
        Dataset d = makeSynthetic(16, 16, 0, Split::Train);
        auto imgs = normalizeImages(d.images.to(torch::kFloat32) / 255, d.mean, d.std);
        torch::optim::AdamW opt(mae.parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0));
        float first = 0, last = 0;
        for (int i = 0; i < 150; ++i) {
            auto gen = at::detail::createCPUGenerator(1);  // the same mask every step: one fixed batch
            opt.zero_grad();
            auto f = mae.forward(imgs, 0.75, gen);
            auto loss = mae.loss(imgs, f.pred, f.mask.mask);
            loss.backward();
            opt.step();
            if (i == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        QVERIFY2(last < 0.5f * first, (std::to_string(first) + " -> " + std::to_string(last)).c_str());
    }

    void trainerRunsAndReportsMetrics() {
        Recipe r = test::tinyRecipe();
        auto dir = test::tempDir("trainer");
        TrainerOptions o;
        o.checkpointDir = dir + "/checkpoints";
        Recorder rec = runToEnd(r, o.checkpointDir);
        QCOMPARE(int(rec.rows.size()), 6);
        QCOMPARE(rec.rows.back().step, int64_t(12));
        for (const char* key : {"loss", "loss/mae", "lr", "images_per_s"})
            QVERIFY2(rec.rows.back().value(key, -1) >= 0, key);
        QVERIFY(std::isfinite(rec.rows.back().value("loss")));
        // lr follows the schedule: step 2 row reports the lr used at step 1 (warm-up 2 steps, peak base*16/256)
        QVERIFY(std::abs(rec.rows[0].value("lr") - r.peakLr() * 0.5) < 1e-12);
        // checkpoints at 4, 8, 12; keep_every = 0 keeps only the newest
        QCOMPARE(int(rec.checkpoints.size()), 3);
        auto left = listCheckpoints(o.checkpointDir);
        QCOMPARE(int(left.size()), 1);
        QCOMPARE(left[0].first, int64_t(12));
        fs::remove_all(dir);
    }

    void viewsMadeOnTheDeviceMatchTheCpus() {
        // data.augment_on = device: the loader uploads the batch's 8-bit images and the objective makes its views
        // there; the random choices are drawn on the CPU, so they are the CPU's views (up to the device's rounding).
        // On a machine without CUDA the same path runs with the CPU as the device (the upload is then no copy).
        const torch::Device dev = torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
        auto gray = makeSynthetic(64, 16, 3, Split::Train);
        Dataset rgb = gray;  // three channels too: the saturation, hue and grayscale paths
        rgb.images = gray.images.repeat({1, 3, 1, 1}).contiguous();
        rgb.images.select(1, 0).copy_(rgb.images.select(1, 0).to(torch::kFloat32).mul(0.5));
        rgb.mean = {0.3f, 0.5f, 0.5f};
        rgb.std = {0.2f, 0.25f, 0.25f};
        for (const auto* data : {&gray, &rgb})
            for (const char* method : {"mae", "mocov3", "conmim"}) {
                Recipe r = test::tinyRecipe();
                r.augment.view1BlurProb = r.augment.view2BlurProb = 0.5;
                r.augment.view1SolarizeProb = r.augment.view2SolarizeProb = 0.5;
                auto shared = std::make_shared<Dataset>(*data);
                auto obj = makeObjective(r, method, data->channels(), data->mean, data->std);
                ViewMaker views = [obj](const torch::Tensor& x, uint64_t seed) { return obj->makeViews(x, seed); };
                Loader onCpu(shared, 8, 5, views), onDevice(shared, 8, 5, views);
                onDevice.setViewDevice(dev);
                const std::string what = std::string(method) + ", " + std::to_string(data->channels()) + " channel(s)";
                for (int step = 0; step < 3; ++step) {
                    Batch a = onCpu.next(), b = onDevice.next();
                    QCOMPARE(b.views.size(), a.views.size());
                    QVERIFY2(!a.views.empty(), what.c_str());
                    QVERIFY(torch::equal(a.labels, b.labels));
                    for (size_t v = 0; v < a.views.size(); ++v) {
                        QVERIFY2(b.views[v].device() == dev, what.c_str());
                        QVERIFY2(a.views[v].is_cpu(), what.c_str());
                        QVERIFY2(torch::allclose(a.views[v], b.views[v].cpu(), 1e-4, 1e-4), what.c_str());
                    }
                }
            }
    }

    void augmentOnDeviceTrainsAsOnTheCpu() {
        // The trainer's side of data.augment_on: on CUDA `auto` and `device` make the views there, `cpu` on the CPU;
        // the losses agree. Without CUDA every choice is the CPU's, and a bad value is refused with its field.
        QVERIFY(!augmentOnDevice("auto", torch::kCPU));
        QVERIFY(!augmentOnDevice("device", torch::kCPU));
        Recipe bad = test::tinyRecipe();
        bad.data.augmentOn = "gpu";
        bool named = false;
        for (const auto& e : bad.validate()) named = named || e.field == "data.augment_on";
        QVERIFY(named);
        if (!torch::cuda::is_available()) QSKIP("no CUDA device: the views are made on the CPU whatever data.augment_on says");
        QVERIFY(augmentOnDevice("auto", torch::kCUDA));
        QVERIFY(augmentOnDevice("device", torch::kCUDA));
        QVERIFY(!augmentOnDevice("cpu", torch::kCUDA));
        std::vector<double> losses[2];
        for (int i = 0; i < 2; ++i) {
            Recipe r = test::tinyRecipe();
            r.method = "mocov3";
            r.device = "cuda";
            r.train.precision = "fp32";
            r.data.augmentOn = i == 0 ? "cpu" : "device";
            losses[i] = lossesOfAFullRun(r);
        }
        QCOMPARE(losses[1].size(), losses[0].size());
        for (size_t k = 0; k < losses[0].size(); ++k)
            QVERIFY2(std::abs(losses[0][k] - losses[1][k]) < 1e-3 * std::max(1.0, std::abs(losses[0][k])),
                     (std::to_string(losses[0][k]) + " vs " + std::to_string(losses[1][k])).c_str());
    }

    void weightDecayGroups() {
        Recipe r = test::tinyRecipe();
        Trainer t(r);
        t.prepare();
        auto& groups = t.optimizer().param_groups();
        QCOMPARE(int(groups.size()), 2);
        auto& decayOpts = static_cast<torch::optim::AdamWOptions&>(groups[0].options());
        auto& noDecayOpts = static_cast<torch::optim::AdamWOptions&>(groups[1].options());
        QCOMPARE(decayOpts.weight_decay(), r.optim.weightDecay);
        QCOMPARE(noDecayOpts.weight_decay(), 0.0);
        for (const auto& p : groups[0].params()) QVERIFY(p.dim() >= 2);
        for (const auto& p : groups[1].params()) QVERIFY(p.dim() <= 1);
        QCOMPARE(std::get<0>(decayOpts.betas()), r.optim.beta1);
        QCOMPARE(std::get<1>(decayOpts.betas()), r.optim.beta2);
    }

    void checkpointRoundTripGivesIdenticalOutputs() {
        Recipe r = test::tinyRecipe();
        auto dir = test::tempDir("ckpt");
        TrainerOptions o;
        o.checkpointDir = dir;
        Trainer t(r, o);
        t.run();
        std::string path = latestGoodCheckpoint(dir);
        QVERIFY(!path.empty());
        CheckpointMeta meta = readCheckpointMeta(path);
        QCOMPARE(meta.step, int64_t(12));
        QCOMPARE(meta.recipe.dump(), r.toJson().dump());
        torch::manual_seed(123);  // different init, overwritten by the load
        MaeObjective fresh(r, meta.channels, meta.mean, meta.std);
        loadModelState(path, fresh);
        auto x = torch::randn({3, 1, 16, 16});
        auto gen1 = at::detail::createCPUGenerator(9), gen2 = at::detail::createCPUGenerator(9);
        auto& trained = static_cast<MaeObjective&>(t.objective());
        trained.eval();
        fresh.eval();
        torch::NoGradGuard ng;
        QVERIFY(torch::equal(trained.forward(x, 0.75, gen1).pred, fresh.forward(x, 0.75, gen2).pred));
        fs::remove_all(dir);
    }

    void stopAndResumeEqualsUninterrupted() {
        Recipe r = test::tinyRecipe();
        auto dirA = test::tempDir("uninterrupted"), dirB = test::tempDir("interrupted");
        TrainerOptions oa;
        oa.checkpointDir = dirA;
        Trainer a(r, oa);
        a.run();

        TrainerOptions ob;
        ob.checkpointDir = dirB;
        ob.stopAtStep = 6;  // not a checkpoint multiple: the stop itself must write one
        {
            Trainer b(r, ob);
            QCOMPARE(int(b.run()), int(TrainerState::Stopped));
            QCOMPARE(b.step(), int64_t(6));
        }
        TrainerOptions oc;
        oc.checkpointDir = dirB;
        Trainer c(r, oc);
        c.prepare();
        c.resumeFrom(latestGoodCheckpoint(dirB));
        QCOMPARE(c.step(), int64_t(6));
        QCOMPARE(int(c.run()), int(TrainerState::Finished));
        QVERIFY(sameParameters(a.objective(), c.objective()));  // bit for bit
        fs::remove_all(dirA);
        fs::remove_all(dirB);
    }

    void stopRequestEndsBetweenSteps() {
        Recipe r = test::tinyRecipe();
        r.train.steps = 1000;
        auto dir = test::tempDir("stop");
        TrainerOptions o;
        o.checkpointDir = dir;
        Trainer t(r, o);
        struct StopAt : TrainerObserver {
            Trainer* t;
            void onMetrics(const MetricsRow& row) override {
                if (row.step >= 4) t->requestStop();
            }
        } stopper;
        stopper.t = &t;
        t.addObserver(&stopper);
        QCOMPARE(int(t.run()), int(TrainerState::Stopped));
        QCOMPARE(t.step(), int64_t(4));
        QCOMPARE(listCheckpoints(dir).front().first, int64_t(4));
        fs::remove_all(dir);
    }

    // train.precision = bf16: autocast in the forward pass (CPU autocast here; the same scope drives CUDA's).
    // Numerics: each method's loss on a fixed batch within 3 % of fp32; matrix products really run in bf16; the
    // scope restores fp32 when it ends; a short bf16 run trains (finite, decreasing loss).
    // The speed paths (oneDNN linear layers, model/Linear.h; the fused attention core, model/FusedAttention.h)
    // against the eager LibTorch path, per method on one fixed batch and mask: the loss to 1e-5 relative and
    // every parameter's gradient to 1e-3 relative / 1e-5 absolute (float32 summation order, through 2 blocks
    // and the heads).
    void fastPathsMatchEagerLossesAndGradients() {
        bool anyBitwiseDifference = false;  // proves the two runs took different paths
        for (const std::string method : {"mae", "mocov3", "conmim", "mtl"}) {
            FixedBatch f(method, 4);
            auto& obj = f.obj;
            auto& b = f.batch;
            auto& ctx = f.ctx;
            auto run = [&](bool fast) {
                setFastLinearEnabled(fast);
                setFusedAttentionEnabled(fast);
                ctx.generator = at::detail::createCPUGenerator(11);  // the same mask both times
                obj->zero_grad();
                auto loss = obj->computeLoss(b, ctx).total;
                loss.backward();
                std::vector<torch::Tensor> grads;
                for (auto& p : obj->parameters())
                    grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
                setFastLinearEnabled(true);
                setFusedAttentionEnabled(true);
                return std::make_pair(loss.item<double>(), grads);
            };
            auto [fastLoss, fastGrads] = run(true);
            auto [eagerLoss, eagerGrads] = run(false);
            const QString m = QString::fromStdString(method);
            QVERIFY2(std::isfinite(fastLoss) && std::abs(fastLoss - eagerLoss) <= 1e-5 * std::abs(eagerLoss),
                     qPrintable(QString("%1: fast %2, eager %3").arg(m).arg(fastLoss, 0, 'g', 10).arg(eagerLoss, 0, 'g', 10)));
            QCOMPARE(fastGrads.size(), eagerGrads.size());
            int compared = 0;
            for (size_t i = 0; i < fastGrads.size(); ++i) {
                QCOMPARE(fastGrads[i].defined(), eagerGrads[i].defined());
                if (!fastGrads[i].defined()) continue;
                ++compared;
                anyBitwiseDifference = anyBitwiseDifference || !torch::equal(fastGrads[i], eagerGrads[i]);
                QVERIFY2(torch::allclose(fastGrads[i], eagerGrads[i], 1e-3, 1e-5),
                         qPrintable(QString("%1: parameter %2, max |d| %3").arg(m).arg(i).arg(
                             (fastGrads[i] - eagerGrads[i]).abs().max().item<double>())));
            }
            QVERIFY(compared > 10);
        }
        QVERIFY(anyBitwiseDifference);
    }

    void bf16AutocastMatchesFp32() {
        for (const std::string method : {"mae", "mocov3", "conmim"}) {
            FixedBatch f(method, 3);
            auto& obj = f.obj;
            auto& b = f.batch;
            auto& ctx = f.ctx;
            obj->eval();  // no dropout; BatchNorm on batch statistics either way
            auto lossAt = [&](bool bf16) {
                ctx.generator = at::detail::createCPUGenerator(11);  // the same mask both times
                torch::NoGradGuard ng;
                AutocastScope scope(bf16, torch::kCPU);
                return obj->computeLoss(b, ctx).total.item<double>();
            };
            double fp32 = lossAt(false), bf16 = lossAt(true);
            QVERIFY2(std::isfinite(bf16) && std::abs(bf16 - fp32) <= 0.03 * std::abs(fp32),
                     qPrintable(QString("%1: fp32 %2, bf16 %3").arg(QString::fromStdString(method)).arg(fp32).arg(bf16)));
            QVERIFY(fp32 != bf16);  // bf16 arithmetic really happened
        }
        {
            auto x = torch::randn({4, 8}), w = torch::randn({3, 8});
            {
                AutocastScope scope(true, torch::kCPU);
                QCOMPARE(torch::linear(x, w).scalar_type(), torch::kBFloat16);
            }
            QCOMPARE(torch::linear(x, w).scalar_type(), torch::kFloat32);
            AutocastScope off(false, torch::kCPU);
            QCOMPARE(torch::linear(x, w).scalar_type(), torch::kFloat32);
        }
        QVERIFY(useBf16Autocast("bf16", torch::kCPU));
        QVERIFY(!useBf16Autocast("auto", torch::kCPU));
        QVERIFY(useBf16Autocast("auto", torch::Device(torch::kCUDA)));
        QVERIFY(!useBf16Autocast("fp32", torch::Device(torch::kCUDA)));
        Recipe r = test::tinyRecipe();
        r.train.precision = "bf16";
        r.train.steps = 12;
        r.train.logEvery = 4;
        auto dir = test::tempDir("bf16");
        TrainerOptions o;
        o.checkpointDir = dir;
        Trainer t(r, o);
        Recorder rec;
        t.addObserver(&rec);
        QCOMPARE(int(t.run()), int(TrainerState::Finished));
        std::vector<double> losses;
        for (const auto& row : rec.rows) losses.push_back(row.value("loss"));
        QCOMPARE(int(losses.size()), 3);
        for (double l : losses) QVERIFY(std::isfinite(l));
        QVERIFY2(losses.back() < losses.front(), qPrintable(QString("%1 -> %2").arg(losses.front()).arg(losses.back())));
        fs::remove_all(dir);
        r.train.precision = "fp16";
        QVERIFY(!r.validate().empty());
    }

    void nonFiniteLossStopsOrSkips() {
        Recipe r = test::tinyRecipe();
        r.train.steps = 30;
        auto dir = test::tempDir("nan");
        std::string ckpt = test::trainAndStopAt(r, dir, 4);
        for (const std::string policy : {"stop", "skip"}) {
            r.train.onNonFinite = policy;
            auto owned = poisonedTrainer(r, dir, ckpt, /*deviceChecks=*/false);
            Trainer& t = *owned;
            auto before = t.objective().encoder()->blocks[0]->as<Block>()->mlp->fc1->weight.clone();
            QCOMPARE(int(t.run()), int(TrainerState::Failed));
            QVERIFY(t.failure().find("NaN") != std::string::npos);
            QCOMPARE(t.step(), policy == "stop" ? int64_t(4) : int64_t(4 + 9));  // skip: gives up at the 10th in a row
            QVERIFY(torch::equal(before, t.objective().encoder()->blocks[0]->as<Block>()->mlp->fc1->weight));  // no step taken
            QCOMPARE(latestGoodCheckpoint(dir), ckpt);  // the good checkpoint stays the newest
        }
        fs::remove_all(dir);
    }

    // train/Optimizer.h: the fused AdamW kernel (LibTorch >= 2.4 on the CPU) against LibTorch's AdamW, step by step
    // over two groups (decay and none, different lrs, lr changed mid-way): parameters to float rounding; a step
    // flagged found_inf changes nothing (parameters, moments, step count); the state saved from the fused optimizer
    // loads into LibTorch's AdamW with the same step counts and moments (the checkpoint format is LibTorch's).
    void fusedAdamwMatchesLibTorch() {
        QVERIFY(!fusedAdamwAvailable(torch::kCPU) || GRAFTLAB_TORCH_AT_LEAST(2, 4));
        if (!fusedAdamwAvailable(torch::kCPU)) QSKIP("LibTorch < 2.4: no fused AdamW on the CPU");
        torch::manual_seed(3);
        auto w0 = torch::randn({6, 5}), b0 = torch::randn({6});
        auto wa = w0.clone().requires_grad_(true), ba = b0.clone().requires_grad_(true);
        auto wb = w0.clone().requires_grad_(true), bb = b0.clone().requires_grad_(true);
        auto groups = [](torch::Tensor w, torch::Tensor b) {
            std::vector<torch::optim::OptimizerParamGroup> g;
            g.emplace_back(std::vector<torch::Tensor>{w}, std::make_unique<torch::optim::AdamWOptions>(
                                                              torch::optim::AdamWOptions(3e-2).weight_decay(0.1).betas({0.9, 0.95})));
            g.emplace_back(std::vector<torch::Tensor>{b}, std::make_unique<torch::optim::AdamWOptions>(
                                                              torch::optim::AdamWOptions(1e-2).weight_decay(0.0)));
            return g;
        };
        AdamW fused(groups(wa, ba), torch::optim::AdamWOptions(1e-3));
        torch::optim::AdamW ref(groups(wb, bb), torch::optim::AdamWOptions(1e-3));
        QVERIFY(fused.fused());
        auto setGrads = [&](int step) {
            auto gen = at::detail::createCPUGenerator(100 + step);
            auto gw = torch::randn({6, 5}, gen), gb = torch::randn({6}, gen);
            wa.mutable_grad() = gw.clone();
            wb.mutable_grad() = gw.clone();
            ba.mutable_grad() = gb.clone();
            bb.mutable_grad() = gb.clone();
        };
        auto close = [&] { return torch::allclose(wa, wb, 1e-5, 1e-6) && torch::allclose(ba, bb, 1e-5, 1e-6); };
        for (int step = 0; step < 6; ++step) {
            if (step == 3)
                for (auto* o : {static_cast<torch::optim::Optimizer*>(&fused), static_cast<torch::optim::Optimizer*>(&ref)})
                    static_cast<torch::optim::AdamWOptions&>(o->param_groups()[0].options()).lr(5e-3);
            setGrads(step);
            fused.stepWithFlag(torch::zeros({}));
            ref.step();
            QVERIFY2(close(), qPrintable(QString("step %1: max |d w| %2").arg(step).arg((wa - wb).abs().max().item<double>())));
        }
        QVERIFY(!torch::equal(wa, w0));
        // a flagged step: nothing moves, and the next step is the 7th, as for the reference
        auto wBefore = wa.detach().clone();
        setGrads(6);
        fused.stepWithFlag(torch::ones({}));
        QVERIFY(torch::equal(wa, wBefore));
        fused.stepWithFlag(torch::zeros({}));
        ref.step();
        QVERIFY(close());
        // saved by the fused optimizer, loaded by LibTorch's: same counts and moments
        torch::serialize::OutputArchive out;
        fused.save(out);
        std::ostringstream bytes;
        out.save_to(bytes);
        auto wc = w0.clone().requires_grad_(true), bc = b0.clone().requires_grad_(true);
        torch::optim::AdamW loaded(groups(wc, bc), torch::optim::AdamWOptions(1e-3));
        torch::serialize::InputArchive in;
        std::istringstream is(bytes.str());
        in.load_from(is);
        loaded.load(in);
        for (auto [p, q] : {std::pair{wc, wb}, std::pair{bc, bb}}) {
            const auto& stLoaded = static_cast<const torch::optim::AdamWParamState&>(*loaded.state().at(stateKeyFor(loaded, p)));
            const auto& stRef = static_cast<const torch::optim::AdamWParamState&>(*ref.state().at(stateKeyFor(ref, q)));
            QCOMPARE(stLoaded.step(), int64_t(7));
            QCOMPARE(stLoaded.step(), stRef.step());
            QVERIFY(torch::allclose(stLoaded.exp_avg(), stRef.exp_avg(), 1e-5, 1e-7));
            QVERIFY(torch::allclose(stLoaded.exp_avg_sq(), stRef.exp_avg_sq(), 1e-5, 1e-8));
        }
    }

    // Gradient clipping on the device: PyTorch's rule (coefficient max / (norm + 1e-6), capped at 1) against
    // LibTorch's clip_grad_norm_, clipping and not.
    void clipGradNormMatchesLibTorch() {
        for (double maxNorm : {0.5, 1e6}) {
            torch::manual_seed(8);
            std::vector<torch::Tensor> a, b;
            for (auto shape : {std::vector<int64_t>{4, 3}, std::vector<int64_t>{7}}) {
                auto p = torch::zeros(shape, torch::requires_grad()), q = torch::zeros(shape, torch::requires_grad());
                auto g = torch::randn(shape);
                p.mutable_grad() = g.clone();
                q.mutable_grad() = g.clone();
                a.push_back(p);
                b.push_back(q);
            }
            auto norm = clipGradNorm(a, maxNorm);
            double refNorm = torch::nn::utils::clip_grad_norm_(b, maxNorm);
            QVERIFY(std::abs(norm.item<double>() - refNorm) < 1e-5 * refNorm);
            for (size_t i = 0; i < a.size(); ++i) QVERIFY(torch::allclose(a[i].grad(), b[i].grad(), 1e-6, 1e-7));
            const double after = torch::stack({a[0].grad().norm(), a[1].grad().norm()}).norm().item<double>();
            QVERIFY(maxNorm < 1 ? std::abs(after - maxNorm) < 1e-4 : std::abs(after - refNorm) < 1e-5 * refNorm);
        }
    }

    // TrainerOptions::deviceChecks (always on for CUDA with the fused AdamW): the loss is checked on the device and
    // read back only at log, checkpoint and probe steps. A clean run is the same run, bit for bit, with the same
    // logged losses; a non-finite loss still stops (or, skipped, gives up after 10 in a row) with no optimizer
    // step taken and the good checkpoint kept, the failure naming the first bad step.
    // The step is written once (train/TrainStep.h): a batch whose loss is not finite changes no weight, on the
    // host-checked path and on the device-checked one (CUDA's; a CPU with LibTorch >= 2.4 here) alike — neither the
    // trained ones nor MoCo v3's momentum encoder or ConMIM's slow model. (The device-checked path used to run the
    // momentum update on a skipped step.)
    void aSkippedStepChangesNoWeightOnEitherPath() {
        int paths = 0;
        for (const std::string method : {"mocov3", "conmim"}) {
            for (bool deviceChecks : {false, true}) {
                if (deviceChecks && !fusedAdamwAvailable(torch::kCPU)) continue;  // LibTorch < 2.4: no such path on a CPU
                ++paths;
                Recipe r = test::tinyRecipe();
                r.method = method;
                torch::manual_seed(3);
                Dataset data = makeSynthetic(32, r.data.imageSize, 1, Split::Train);
                auto obj = makeObjective(r, method, data.channels(), data.mean, data.std);
                AdamwGroups groups = adamwGroups(*obj, r, [](const std::string&) { return 1.0; });
                AdamW opt(groups.groups, torch::optim::AdamWOptions(r.peakLr()));
                QCOMPARE(opt.fused(), deviceChecks || fusedAdamwAvailable(torch::kCPU));
                Batch b;
                b.images = data.images.slice(0, 0, r.optim.batchSize).to(torch::kFloat32).div(255.0);
                b.views = obj->makeViews(b.images, 1);
                StepSettings settings;
                settings.deviceChecks = deviceChecks;
                auto contextFor = [&](int64_t step) {
                    StepContext ctx;
                    ctx.step = ctx.stageStep = step;
                    ctx.totalSteps = ctx.stageSteps = 10;
                    ctx.generator = stepGenerator(1, step);
                    return ctx;
                };
                // two good steps: the optimizer has state, the EMA copies have moved away from the encoder
                for (int64_t step : {0, 1}) {
                    StepContext ctx = contextFor(step);
                    StepOutcome good = trainStep(*obj, opt, b, ctx, settings);
                    QVERIFY(!good.skipped);
                    QVERIFY(!deviceChecks || !good.bad.item<bool>());
                }
                std::map<std::string, torch::Tensor> before;
                for (const auto& p : obj->named_parameters()) before[p.key()] = p.value().detach().clone();
                QVERIFY(before.size() > 10);
                bool emaCopies = false;
                for (const auto& prefix : obj->encoderCopyPrefixes())
                    for (const auto& [name, t] : before) emaCopies = emaCopies || name.rfind(prefix, 0) == 0;
                QVERIFY2(emaCopies, method.c_str());
                b.views[0][0].fill_(std::nan(""));  // one poisoned image: the loss is NaN
                StepContext ctx = contextFor(2);
                StepOutcome bad = trainStep(*obj, opt, b, ctx, settings);
                QVERIFY(deviceChecks ? bad.bad.item<bool>() : bad.skipped);
                for (const auto& p : obj->named_parameters())
                    QVERIFY2(torch::equal(p.value(), before.at(p.key())),
                             qPrintable(QString::fromStdString(method + (deviceChecks ? " (device-checked): " : " (host-checked): ") + p.key() + " changed")));
            }
        }
        if (!fusedAdamwAvailable(torch::kCPU)) QCOMPARE(paths, 2);  // the device-checked half runs on LibTorch >= 2.4
    }

    void deviceChecksKeepTheRunAndItsFailures() {
        if (!fusedAdamwAvailable(torch::kCPU)) QSKIP("LibTorch < 2.4: no fused AdamW on the CPU, so no device checks");
        Recipe r = test::tinyRecipe();
        r.optim.clipGrad = 1.0;
        Recorder hostRows, deviceRows;
        std::shared_ptr<torch::nn::Module> hostObj, deviceObj;
        for (bool device : {false, true}) {
            TrainerOptions o;
            o.deviceChecks = device;
            Trainer t(r, o);
            t.addObserver(device ? &deviceRows : &hostRows);
            QCOMPARE(int(t.run()), int(TrainerState::Finished));
            (device ? deviceObj : hostObj) = t.objective().shared_from_this();
        }
        QVERIFY(sameParameters(*hostObj, *deviceObj));
        QCOMPARE(deviceRows.rows.size(), hostRows.rows.size());
        for (size_t i = 0; i < hostRows.rows.size(); ++i) {
            QCOMPARE(deviceRows.rows[i].step, hostRows.rows[i].step);
            for (const auto& [k, v] : hostRows.rows[i].values) {
                if (k == "images_per_s" || k == "probe_share") continue;  // timings
                double dv = std::nan("");
                for (const auto& [k2, v2] : deviceRows.rows[i].values)
                    if (k2 == k) dv = v2;
                QVERIFY2(std::abs(dv - v) <= 1e-6 * std::max(1.0, std::abs(v)), qPrintable(QString::fromStdString(k) + QString(": %1 vs %2").arg(dv).arg(v)));
            }
        }

        r.train.steps = 40;
        auto dir = test::tempDir("nan-device");
        std::string ckpt = test::trainAndStopAt(r, dir, 4);
        for (const std::string policy : {"stop", "skip"}) {
            r.train.onNonFinite = policy;
            auto owned = poisonedTrainer(r, dir, ckpt, /*deviceChecks=*/true);
            Trainer& t = *owned;
            auto before = t.objective().encoder()->blocks[0]->as<Block>()->mlp->fc1->weight.clone();
            QCOMPARE(int(t.run()), int(TrainerState::Failed));
            const std::string named = policy == "stop" ? "at step 4 " : "at steps 4 to 13 (10 batches in a row";
            QVERIFY2(t.failure().find(named) != std::string::npos, t.failure().c_str());
            // read back at the first log step (every 2) after the stop condition: 6 for stop, 14 for 10 skipped in a row
            QCOMPARE(t.step(), policy == "stop" ? int64_t(6) : int64_t(14));
            QVERIFY(torch::equal(before, t.objective().encoder()->blocks[0]->as<Block>()->mlp->fc1->weight));
            QCOMPARE(latestGoodCheckpoint(dir), ckpt);
        }
        fs::remove_all(dir);
    }

    void badCheckpointsAreNamed() {
        auto dir = test::tempDir("badckpt");
        std::string junk = dir + "/junk.ckpt";
        std::ofstream(junk) << "this is not a checkpoint at all, just some text of a reasonable length";
        try {
            readCheckpointMeta(junk);
            QFAIL("no error");
        } catch (const FileError& e) {
            QVERIFY2(std::string(e.what()).find(junk) != std::string::npos, e.what());
        }
        // a real checkpoint cut short
        Recipe r = test::tinyRecipe();
        TrainerOptions o;
        o.checkpointDir = dir + "/ck";
        r.train.steps = 2;
        Trainer t(r, o);
        t.run();
        std::string good = latestGoodCheckpoint(o.checkpointDir);
        std::string cut = dir + "/cut.ckpt";
        fs::copy_file(good, cut);
        fs::resize_file(cut, fs::file_size(cut) / 3);
        bool threw = false;
        try {
            MaeObjective m(r, 1, {0.5f}, {0.25f});
            loadModelState(cut, m);
        } catch (const FileError& e) {
            threw = std::string(e.what()).find(cut) != std::string::npos;
        }
        QVERIFY(threw);
        // another architecture
        Recipe wide = r;
        wide.model.embedDim = 64;
        threw = false;
        try {
            MaeObjective m(wide, 1, {0.5f}, {0.25f});
            loadModelState(good, m);
        } catch (const FileError& e) {
            threw = std::string(e.what()).find("shape") != std::string::npos;
        }
        QVERIFY(threw);
        // the newest checkpoint damaged: the previous good one is chosen
        fs::copy_file(cut, o.checkpointDir + "/" + checkpointFileName(99));
        QCOMPARE(latestGoodCheckpoint(o.checkpointDir), good);
        // every single damaged byte of the header region and a sample of the rest: a FileError naming the file,
        // never a crash, a raw torch error or a multi-gigabyte allocation
        std::string bytes = readFile(good);
        std::string flipped = dir + "/flipped.ckpt";
        int rejected = 0;
        for (size_t at = 0; at < bytes.size(); at += (at < 2048 ? 97 : bytes.size() / 40)) {
            std::string b = bytes;
            b[at] = char(b[at] ^ 0x21);
            writeFileAtomically(flipped, b);
            try {
                MaeObjective m(r, 1, {0.5f}, {0.25f});
                loadModelState(flipped, m);
            } catch (const FileError& e) {
                QVERIFY2(std::string(e.what()).find(flipped) != std::string::npos, e.what());
                ++rejected;
            }
        }
        QVERIFY(rejected > 30);
        // the inputs libFuzzer found (tests/fuzz/regressions): each is rejected by name
        for (const auto& entry : fs::directory_iterator(GRAFTLAB_SOURCE_DIR "/tests/fuzz/regressions/fuzz_checkpoint")) {
            std::string path = entry.path().string();
            try {
                readCheckpointMeta(path);
                QFAIL(qPrintable(QString::fromStdString("accepted: " + path)));
            } catch (const FileError& e) {
                QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
            }
        }
        fs::remove_all(dir);
    }

    void runDirRefusesExistingRunAndKeepsWholeLines() {
        auto dir = test::tempDir("rundir");
        {
            RunWriter d(dir, RunDirMode::Create);
            d.writeRecipe(test::tinyRecipe());
            MetricsRow row;
            row.step = 2;
            row.values = {{"loss", 1.5}};
            d.onMetrics(row);
            row.step = 4;
            d.onMetrics(row);
        }
        bool refused = false;
        try {
            RunWriter again(dir, RunDirMode::Create);
        } catch (const FileError& e) {
            refused = std::string(e.what()).find("already holds a run") != std::string::npos;
        }
        QVERIFY(refused);
        std::ofstream(dir + "/metrics.jsonl", std::ios::app) << "{\"step\": 6, \"lo";  // torn line of a killed run
        auto rows = RunWriter::readMetrics(dir + "/metrics.jsonl");
        QCOMPARE(int(rows.size()), 2);
        RunWriter resumed(dir, RunDirMode::Resume);
        resumed.truncateMetricsAfter(2);
        QCOMPARE(int(RunWriter::readMetrics(dir + "/metrics.jsonl").size()), 1);
        fs::remove_all(dir);
    }
};
GRAFTLAB_REGISTER_TEST(TrainTest);
#include "test_train.moc"
