#include "data/Augment.h"
#include "methods/ConMim.h"
#include "methods/MocoV3.h"
#include "train/Checkpoint.h"
#include "train/Schedule.h"
#include "train/Trainer.h"
#include "base/util/Errors.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <QtTest>

#include <filesystem>

using namespace graftlab;
namespace fs = std::filesystem;

namespace {
struct Rows : TrainerObserver {
    std::vector<MetricsRow> rows;
    void onMetrics(const MetricsRow& r) override { rows.push_back(r); }
};

// tinyRecipe() with MoCo v3 heads of its size.
Recipe tinyMoco() {
    Recipe r = test::tinyRecipe();
    r.moco.hiddenDim = 32;
    r.moco.outDim = 16;
    return r;
}

Recipe tinyStages(const std::string& first, const std::string& second, std::vector<double> blocks, double embed) {
    Recipe r = tinyMoco();
    StageConfig a;
    a.name = "one";
    a.method = first;
    a.steps = 4;
    a.init = "random";
    StageConfig b;
    b.name = "two";
    b.method = second;
    b.steps = 4;
    b.init = "previous";
    b.blockLr = std::move(blocks);
    b.embedLr = embed;
    r.stages = {a, b};
    r.train.logEvery = 1;
    r.train.checkpointEvery = 100;
    return r;
}
// Trains stage 1 of `r` into `dir`, then a trainer resumed from its end enters stage 2 (initialised as the recipe
// says); `stage1` holds stage 1's final tensors.
struct SecondStage {
    std::map<std::string, torch::Tensor> stage1;
    std::unique_ptr<Trainer> trainer;
};
SecondStage enterSecondStage(const Recipe& r, const std::string& dir) {
    std::string ckpt = test::trainAndStopAt(r, dir, 4)  /* the end of stage 1 */;
    SecondStage s;
    s.stage1 = readModelTensors(ckpt);
    TrainerOptions o;
    o.checkpointDir = dir;
    s.trainer = std::make_unique<Trainer>(r, o);
    s.trainer->prepare();
    s.trainer->resumeFrom(ckpt);
    if (s.trainer->stage() != 0) throw std::runtime_error("resumed at the end of stage 1 but in another stage");
    s.trainer->enterStage(1, true);
    return s;
}
}  // namespace

class MethodsTest : public QObject {
    Q_OBJECT
private slots:
    void infoNceClosedForm() {
        // q = k = N orthonormal unit vectors: logits are I / T, so each row's loss is
        // -log(e^{1/T} / (e^{1/T} + (N - 1))), times 2T.
        const int n = 8;
        const double T = 0.2;
        auto q = torch::eye(n).slice(1, 0, n);
        double expected = -std::log(std::exp(1 / T) / (std::exp(1 / T) + (n - 1))) * 2 * T;
        QVERIFY(std::abs(mocoContrastiveLoss(q, q, T).item<double>() - expected) < 1e-5);
        // scaling q or k does not matter (both are L2-normalised)
        QVERIFY(std::abs(mocoContrastiveLoss(q * 3, q * 0.5, T).item<double>() - expected) < 1e-5);
    }

    void mlpShapesAndLastBatchNorm() {
        auto mlp = buildMocoMlp(3, 32, 64, 16);
        auto out = mlp->forward(torch::randn({5, 32}));
        QCOMPARE(out.sizes().vec(), (std::vector<int64_t>{5, 16}));
        auto* lastBn = (*mlp)[mlp->size() - 1]->as<torch::nn::BatchNorm1d>();
        QVERIFY(lastBn);
        QVERIFY(!lastBn->options.affine());
    }

    void momentumUpdateFollowsFormulaOutsideAutograd() {
        Recipe r = tinyMoco();
        torch::manual_seed(0);
        MocoV3Objective moco(r, 1, {0.5f}, {0.25f});
        auto heads = moco.mocoHeads();
        auto enc = moco.encoder();
        for (auto& p : heads->momentum_encoder->parameters()) QVERIFY(!p.requires_grad());
        {
            torch::NoGradGuard ng;
            for (auto& p : enc->parameters()) p.add_(0.1);  // base moves away from the momentum copy
        }
        auto before = heads->momentum_encoder->blocks[0]->as<Block>()->mlp->fc1->weight.clone();
        auto base = enc->blocks[0]->as<Block>()->mlp->fc1->weight.clone();
        heads->momentumUpdate(enc, 0.9);
        auto after = heads->momentum_encoder->blocks[0]->as<Block>()->mlp->fc1->weight;
        QVERIFY(torch::allclose(after, 0.9 * before + 0.1 * base, 1e-6, 1e-7));
        // a backward pass leaves the momentum branch without gradients
        auto x = torch::randn({4, 1, 16, 16});
        auto l = heads->loss(enc, x, x.flip({3}));
        l.backward();
        for (auto& p : heads->momentum_encoder->parameters()) QVERIFY(!p.grad().defined());
        QVERIFY(enc->blocks[0]->as<Block>()->mlp->fc1->weight.grad().defined());
        // frozen random patch projection
        QVERIFY(!enc->patch_embed->proj->weight.requires_grad());
        QVERIFY(std::abs(mocoMomentum(0.99, 0, 100) - 0.99) < 1e-12);
        QVERIFY(std::abs(mocoMomentum(0.99, 100, 100) - 1.0) < 1e-12);
        QVERIFY(std::abs(mocoMomentum(0.99, 25, 100) - (1 - 0.01 * (std::cos(M_PI * 0.25) + 1) / 2)) < 1e-12);  // cosine, not linear
    }

    // MoCo v3's symmetric loss pairs q1 with k2 and q2 with k1 (the query of one view against the key of the other):
    // with the predictor and projectors reduced to what matters, swapping the pairing changes the loss.
    void mocoLossPairsEachViewWithTheOtherViewsKey() {
        Recipe r = tinyMoco();
        torch::manual_seed(1);
        MocoV3Objective moco(r, 1, {0.5f}, {0.25f});
        auto heads = moco.mocoHeads();
        auto enc = moco.encoder();
        auto v1 = torch::randn({6, 1, 16, 16}), v2 = torch::randn({6, 1, 16, 16});
        torch::NoGradGuard ng;
        heads->eval();  // the same BatchNorm statistics for every forward pass below
        auto project = [&](VisionTransformer e, torch::nn::Sequential proj, const torch::Tensor& x) { return proj->forward(e->forward(x).select(1, 0)); };
        auto q1 = heads->predictor->forward(project(enc, heads->projector, v1));
        auto q2 = heads->predictor->forward(project(enc, heads->projector, v2));
        auto k1 = project(heads->momentum_encoder, heads->momentum_projector, v1);
        auto k2 = project(heads->momentum_encoder, heads->momentum_projector, v2);
        const double T = r.moco.temperature;
        double got = heads->loss(enc, v1, v2).item<double>();
        double crossed = (mocoContrastiveLoss(q1, k2, T) + mocoContrastiveLoss(q2, k1, T)).item<double>();
        double same = (mocoContrastiveLoss(q1, k1, T) + mocoContrastiveLoss(q2, k2, T)).item<double>();
        QVERIFY2(std::abs(got - crossed) < 1e-5, (std::to_string(got) + " vs " + std::to_string(crossed)).c_str());
        QVERIFY(std::abs(same - crossed) > 1e-3);  // the test can tell the two pairings apart
        heads->train();
    }

    void photometricIdentityAndSolarize() {
        auto x = torch::rand({4, 3, 8, 8});
        PhotometricConfig none;
        none.jitterProbability = 0;
        none.grayscaleProbability = 0;
        std::mt19937_64 rng(1);
        QVERIFY(torch::allclose(applyPhotometric(x, none, rng), x, 1e-6, 1e-6));
        PhotometricConfig sol = none;
        sol.solarizeProbability = 1.0;
        auto s = applyPhotometric(x, sol, rng);
        QVERIFY(torch::allclose(s, torch::where(x >= 0.5, 1 - x, x), 1e-6, 1e-6));
        PhotometricConfig gray = none;
        gray.grayscaleProbability = 1.0;
        auto g = applyPhotometric(x, gray, rng);
        QVERIFY(torch::allclose(g.select(1, 0), g.select(1, 1), 1e-6, 1e-6));
        // 1-channel images: brightness still applies, grayscale is the identity
        auto m = torch::full({2, 1, 8, 8}, 0.5);
        PhotometricConfig bright = none;
        bright.jitterProbability = 1.0;
        bright.contrast = bright.saturation = bright.hue = 0;
        bright.brightness = 0.5;
        auto b = applyPhotometric(m, bright, rng);
        QVERIFY((b - m).abs().max().item<float>() > 1e-3);
        // blur lowers the variance of noise
        auto noise = torch::rand({2, 1, 16, 16});
        QVERIFY(gaussianBlur(noise, {1.5, 1.5}).var().item<float>() < 0.5f * noise.var().item<float>());
        QVERIFY(torch::equal(gaussianBlur(noise, {0.0, 0.0}), noise));
    }

    void frozenBlocksStayAndGroupsFollowMultipliers() {
        Recipe r = tinyStages("mae", "mocov3", {0.0, 1.0}, 0.1);
        r.moco.frozenPatchEmbed = false;
        Trainer t(r);
        Rows rows;
        t.addObserver(&rows);
        t.prepare();
        t.enterStage(1, true);  // the graft, without training stage 1 (random weights are fine here)
        QCOMPARE(t.groupNames().front(), std::string("x1"));
        QCOMPARE(t.groupNames().back(), std::string("x0.1"));
        // train stage 2 from its first step
        TrainerOptions o;
        Trainer t2(r, o);
        t2.addObserver(&rows);
        t2.prepare();
        // run stage 1 then stage 2; check on the final weights that block 0 did not move in stage 2
        t2.run();
        QVERIFY(std::isfinite(rows.rows.back().value("loss")));
        auto& last = rows.rows.back();
        QCOMPARE(last.stage, 1);
        QVERIFY(std::abs(last.value("lr/x0.1") - 0.1 * last.value("lr")) < 1e-15);
        // the row of step 8 reports the lr of step 7 = step 3 of stage 2's own warm-up + cosine
        double expectLr = warmupCosineLr(3, 4, r.optim.warmupSteps, r.peakLr(), r.optim.minLr);
        QVERIFY(std::abs(last.value("lr") - expectLr) < 1e-15);
        QVERIFY(std::abs(last.value("lr/x1") - expectLr) < 1e-15);
        QVERIFY(last.value("momentum", -1) > 0.99);
        // the optimizer's groups hold the lr the schedule asks for the step after the last one trained: x1 groups the
        // base lr, x0.1 groups a tenth of it
        double nextLr = warmupCosineLr(4, 4, r.optim.warmupSteps, r.peakLr(), r.optim.minLr);
        int tenth = 0, full = 0;
        for (const auto& p : t2.optimizer().param_groups()) {
            double lr = static_cast<const torch::optim::AdamWOptions&>(p.options()).lr();
            if (std::abs(lr - nextLr) < 1e-15 || std::abs(lr - expectLr) < 1e-15) ++full;
            else if (std::abs(lr - 0.1 * nextLr) < 1e-15 || std::abs(lr - 0.1 * expectLr) < 1e-15) ++tenth;
            else QFAIL(qPrintable(QString("an optimizer group has lr %1, neither the schedule's %2 nor a tenth of it").arg(lr).arg(expectLr)));
        }
        QVERIFY(full > 0 && tenth > 0);
        // frozen block: no gradient, not in the optimizer
        auto w = t2.objective().encoder()->blocks[0]->as<Block>()->attn->qkv->weight;
        QVERIFY(!w.requires_grad());
    }

    void frozenBlockIsBitIdenticalAcrossStageTwo() {
        Recipe r = tinyStages("mae", "mocov3", {0.0, 1.0}, 0.0);
        auto dir = test::tempDir("frozen");
        std::string ckpt = test::trainAndStopAt(r, dir, 4)  /* the end of stage 1 */;
        auto stage1 = readModelTensors(ckpt);
        TrainerOptions o2;
        o2.checkpointDir = dir;
        Trainer b(r, o2);
        b.prepare();
        b.resumeFrom(ckpt);
        QCOMPARE(b.run(), TrainerState::Finished);
        QCOMPARE(b.stage(), 1);
        auto enc = b.objective().encoder();
        // frozen block 0 and embedding: bit-identical to the end of stage 1; block 1 trained
        QVERIFY(torch::equal(enc->blocks[0]->as<Block>()->attn->qkv->weight, stage1.at("encoder.blocks.0.attn.qkv.weight")));
        QVERIFY(torch::equal(enc->patch_embed->proj->weight, stage1.at("encoder.patch_embed.proj.weight")));
        QVERIFY(!torch::equal(enc->blocks[1]->as<Block>()->attn->qkv->weight, stage1.at("encoder.blocks.1.attn.qkv.weight")));
        fs::remove_all(dir);
    }

    void stageTwoStartsFromStageOneInBothEncoders() {
        Recipe r = tinyStages("mae", "mocov3", {0.1, 1.0}, 0.1);
        auto dir = test::tempDir("graft");
        SecondStage second = enterSecondStage(r, dir);
        auto& stage1 = second.stage1;
        Trainer& b = *second.trainer;
        auto* moco = dynamic_cast<MocoV3Objective*>(&b.objective());
        QVERIFY(moco);
        auto named = moco->named_parameters();
        int compared = 0;
        for (const auto& [key, value] : stage1) {
            if (key.rfind("encoder.", 0) != 0 || key == "encoder.pos_embed") continue;
            QVERIFY2(torch::equal(named[key], value), key.c_str());
            QVERIFY2(torch::equal(named["moco.momentum_" + key], value), key.c_str());
            ++compared;
        }
        QVERIFY(compared > 10);
        fs::remove_all(dir);
    }

    // stages[i].init_blocks = k: the embedding and the lower k blocks come from the stage before (base and momentum
    // encoder), the upper blocks and the final norm are freshly initialised (the seed's "MIM lower blocks + random
    // upper blocks" experiment).
    void stageTakesOnlyTheLowerBlocksWhenAsked() {
        Recipe r = tinyStages("mae", "mocov3", {0.1, 1.0}, 0.1);
        r.stages[1].initBlocks = 1;
        QVERIFY(r.validate().empty());
        auto dir = test::tempDir("graft-lower");
        SecondStage second = enterSecondStage(r, dir);
        auto& stage1 = second.stage1;
        Trainer& b = *second.trainer;
        auto named = b.objective().named_parameters();
        for (const char* key : {"encoder.patch_embed.proj.weight", "encoder.cls_token", "encoder.blocks.0.attn.qkv.weight",
                                "encoder.blocks.0.mlp.fc2.weight"}) {
            QVERIFY2(torch::equal(named[key], stage1.at(key)), key);
            QVERIFY2(torch::equal(named[std::string("moco.momentum_") + key], stage1.at(key)), key);
        }
        for (const char* key : {"encoder.blocks.1.attn.qkv.weight", "encoder.blocks.1.mlp.fc1.weight", "encoder.norm.weight"})
            QVERIFY2(!torch::equal(named[key], stage1.at(key)), key);
        // a fresh block is the stage's own initialisation, the same in the momentum copy
        QVERIFY(torch::equal(named["moco.momentum_encoder.blocks.1.attn.qkv.weight"], named["encoder.blocks.1.attn.qkv.weight"]));
        // out of range is refused with the field named
        r.stages[1].initBlocks = r.model.depth + 1;
        auto issues = r.validate();
        QVERIFY(!issues.empty() && issues.front().field == "stages[1].init_blocks");
        fs::remove_all(dir);
    }

    // The layer_grafted preset as the official code: stage 2 (MoCo v3) keeps the patch projection it took from the
    // MAE stage fixed (--stop-grad-conv1), while class token and position embedding train at lr_mult.embed.
    void layerGraftedPresetFreezesTheGraftedPatchProjection() {
        std::vector<RecipeIssue> issues;
        Recipe r = loadRecipeFile(test::sourceDir() + "/resources/recipes/layer_grafted.json", {}, issues);
        QVERIFY(issues.empty());
        QVERIFY(r.moco.frozenPatchEmbed);
        test::shrinkToTiny(r);
        for (auto& st : r.stages) st.steps = 4;
        r.train.checkpointEvery = 100;
        auto dir = test::tempDir("graft-conv1");
        SecondStage second = enterSecondStage(r, dir);
        auto& stage1 = second.stage1;
        Trainer& b = *second.trainer;
        auto named = b.objective().named_parameters();
        auto w = named["encoder.patch_embed.proj.weight"];
        QVERIFY(!w.requires_grad());
        QVERIFY(torch::equal(w, stage1.at("encoder.patch_embed.proj.weight")));  // MAE's projection, not a random one
        QVERIFY(named["encoder.cls_token"].requires_grad());
        fs::remove_all(dir);
    }

    void stageStartsFromAnotherRunsCheckpoint() {
        Recipe mae = test::tinyRecipe();
        mae.train.steps = 3;
        auto dir = test::tempDir("fromckpt");
        TrainerOptions o;
        o.checkpointDir = dir;
        {
            Trainer a(mae, o);
            a.run();
        }
        std::string ckpt = latestGoodCheckpoint(dir);
        Recipe cl = tinyStages("mocov3", "mocov3", {}, 1.0);
        cl.stages.resize(1);
        cl.stages[0].init = "checkpoint";
        cl.stages[0].checkpoint = ckpt;
        Trainer b(cl);
        b.prepare();  // stage 1 is initialised from the other run's encoder, base and momentum
        auto stored = readModelTensors(ckpt);
        auto named = b.objective().named_parameters();
        QVERIFY(torch::equal(named["encoder.blocks.1.mlp.fc2.weight"], stored.at("encoder.blocks.1.mlp.fc2.weight")));
        QVERIFY(torch::equal(named["moco.momentum_encoder.blocks.1.mlp.fc2.weight"], stored.at("encoder.blocks.1.mlp.fc2.weight")));
        // a checkpoint that is not there is named
        cl.stages[0].checkpoint = dir + "/missing.ckpt";
        Trainer c(cl);
        bool named_ok = false;
        try {
            c.prepare();
        } catch (const FileError& e) {
            named_ok = std::string(e.what()).find("missing.ckpt") != std::string::npos;
        }
        QVERIFY(named_ok);
        fs::remove_all(dir);
    }

    void everyPresetTrainsOnTheSyntheticSet() {
        int presets = 0;
        for (const auto& entry : fs::directory_iterator(test::sourceDir() + "/resources/recipes")) {
            if (entry.path().extension() != ".json" || entry.path().stem().string().rfind("bench", 0) == 0) continue;
            ++presets;
            std::string nameS = entry.path().stem().string();
            const char* name = nameS.c_str();
            std::vector<RecipeIssue> issues;
            Recipe r = loadRecipeFile(entry.path().string(), {}, issues);
            QVERIFY2(issues.empty(), (std::string(name) + ": " + formatIssues(issues)).c_str());
            QVERIFY2(r.validate().empty(), (std::string(name) + ": " + formatIssues(r.validate())).c_str());
            test::shrinkToTiny(r);
            r.train.steps = 20;
            r.train.logEvery = 5;
            for (auto& st : r.stages) st.steps = 10;
            Trainer t(r);
            Rows rows;
            t.addObserver(&rows);
            QCOMPARE(int(t.run()), int(TrainerState::Finished));
            QCOMPARE(int(rows.rows.size()), 4);
            for (const auto& row : rows.rows) QVERIFY2(std::isfinite(row.value("loss")), name);
            if (!r.stages.empty()) QCOMPARE(rows.rows.back().stage, 1);
        }
        QVERIFY(presets >= 13);
    }

    void conmimLossOnlyAtMaskedPositionsAndKeysWithoutGradient() {
        // closed form: feats == keys == orthonormal rows -> each counted patch has loss -log(e^{1/T}/(e^{1/T}+L-1))
        const int L = 6;
        const double T = 0.1;
        auto k = torch::eye(L).unsqueeze(0).repeat({2, 1, 1});
        auto mask = torch::zeros({2, L});
        mask.index_put_({0, 1}, 1.0);
        mask.index_put_({1, 4}, 1.0);
        double expected = -std::log(std::exp(1 / T) / (std::exp(1 / T) + (L - 1)));
        QVERIFY(std::abs(patchContrastLoss(k, k, mask, T).item<double>() - expected) < 1e-4);
        // changing features at unmasked positions changes nothing
        auto f2 = k.clone();
        f2.index_put_({0, 0}, torch::ones({L}) / std::sqrt(double(L)));
        QVERIFY(std::abs(patchContrastLoss(f2, k, mask, T).item<double>() - expected) < 1e-4);
        f2.index_put_({0, 1}, torch::ones({L}) / std::sqrt(double(L)));
        QVERIFY(std::abs(patchContrastLoss(f2, k, mask, T).item<double>() - expected) > 1e-2);

        Recipe r = test::tinyRecipe();
        r.method = "conmim";
        torch::manual_seed(0);
        ConMimObjective model(r, 1, {0.5f}, {0.25f});
        auto x = torch::randn({3, 1, 16, 16});
        QVERIFY(!model.keys(x).requires_grad());
        Batch b;
        b.views = {x, x};
        StepContext ctx;
        ctx.generator = at::detail::createCPUGenerator(1);
        auto out = model.computeLoss(b, ctx);
        out.total.backward();
        for (const auto& p : model.named_parameters()) {
            bool slow = p.key().rfind("slow_", 0) == 0;
            if (slow) QVERIFY2(!p.value().grad().defined(), p.key().c_str());
        }
        QVERIFY(model.mask_token.grad().defined());  // masked patches use the learned token
        // with mask ratio 0.4 of 16 patches, 6 positions count per image: the unmasked ablation counts all 16
        QVERIFY(std::isfinite(out.total.item<double>()));
    }

    // ConMIM as the official code masks: BEiT's block-wise rectangles (few connected regions), not scattered patches.
    void conmimMasksBlockwiseAndProjectsWithBatchNorm() {
        auto components = [](const torch::Tensor& flat, int g) {
            auto m = flat.reshape({g, g});
            auto a = m.accessor<float, 2>();
            std::vector<std::vector<int>> seen(size_t(g), std::vector<int>(size_t(g), 0));
            int count = 0;
            for (int i = 0; i < g; ++i)
                for (int j = 0; j < g; ++j) {
                    if (a[i][j] == 0.f || seen[size_t(i)][size_t(j)]) continue;
                    ++count;
                    std::vector<std::pair<int, int>> stack{{i, j}};
                    seen[size_t(i)][size_t(j)] = 1;
                    while (!stack.empty()) {
                        auto [y, x] = stack.back();
                        stack.pop_back();
                        for (auto [dy, dx] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
                            int yy = y + dy, xx = x + dx;
                            if (yy < 0 || xx < 0 || yy >= g || xx >= g || a[yy][xx] == 0.f || seen[size_t(yy)][size_t(xx)]) continue;
                            seen[size_t(yy)][size_t(xx)] = 1;
                            stack.push_back({yy, xx});
                        }
                    }
                }
            return count;
        };
        const int g = 7;
        const int64_t target = 19;  // 40 % of 49, as ConMIM's 75 of 196
        std::mt19937_64 rng(3);
        double blocks = 0, scattered = 0, maskedMean = 0;
        for (int k = 0; k < 200; ++k) {
            auto m = blockwiseMask(g, g, target, rng);
            QVERIFY(m.sum().item<float>() <= float(target));
            maskedMean += m.sum().item<double>() / 200;
            blocks += components(m, g) / 200.0;
            auto order = torch::randperm(g * g);
            auto r = torch::zeros({g * g}).index_fill_(0, order.slice(0, 0, target), 1.0);
            scattered += components(r, g) / 200.0;
        }
        QVERIFY2(maskedMean > 0.8 * target, std::to_string(maskedMean).c_str());
        QVERIFY2(blocks < 3.0 && scattered > 5.0, (std::to_string(blocks) + " vs " + std::to_string(scattered)).c_str());
        // the official projector: 3 layers with BatchNorm, the last without affine; GraftLab's earlier one on request
        Recipe r = test::tinyRecipe();
        r.method = "conmim";
        ConMimObjective official(r, 1, {0.5f}, {0.25f});
        int bns = 0;
        for (auto& m : official.modules(false))
            if (m->as<torch::nn::BatchNorm1d>()) ++bns;
        QVERIFY2(bns >= 6, std::to_string(bns).c_str());  // projector and slow projector: 3 each
        r.conmim.projector = "simple";
        ConMimObjective simple(r, 1, {0.5f}, {0.25f});
        for (auto& m : simple.modules(false)) QVERIFY(!m->as<torch::nn::BatchNorm1d>());
        r.conmim.maskStyle = "checkerboard";
        QVERIFY(!r.validate().empty() && r.validate().front().field == "conmim.mask_style");
    }

    void conmimViewsShareGeometry() {
        Recipe r = test::tinyRecipe();
        r.method = "conmim";
        r.conmim.perturbation = "basic_both";
        ConMimObjective model(r, 1, {0.5f}, {0.25f});
        auto imgs = torch::rand({4, 1, 16, 16});
        auto v = model.makeViews(imgs, 7);
        QVERIFY(torch::equal(v[0], v[1]));  // same crop and flip, no photometric difference
        r.conmim.perturbation = "asymmetric";
        ConMimObjective asym(r, 1, {0.5f}, {0.25f});
        auto w = asym.makeViews(imgs, 7);
        QVERIFY(torch::equal(w[0], v[0]));   // the online input is the basic one
        QVERIFY(!torch::equal(w[1], v[1]));  // the slow input is strongly perturbed
    }
};
GRAFTLAB_REGISTER_TEST(MethodsTest);
#include "test_methods.moc"
