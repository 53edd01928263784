#include "data/Augment.h"
#include "methods/ConMim.h"
#include "methods/MocoV3.h"
#include "probes/ProbeExport.h"
#include "probes/Probes.h"
#include "methods/Mtl.h"
#include "base/probes/MaskedPatch.h"
#include "base/probes/Snapshot.h"
#include "train/Checkpoint.h"
#include "train/Trainer.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "util/ImageIO.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <QtTest>

#include <filesystem>
#include <fstream>

using namespace graftlab;
namespace fs = std::filesystem;

namespace {
Recipe tinyMtl() {
    Recipe r = test::tinyRecipe();
    r.method = "mtl";
    r.moco.hiddenDim = 32;
    r.moco.outDim = 16;
    r.probes.samples = 4;
    return r;
}

Dataset tinyData(const Recipe& r) { return makeSynthetic(r.data.syntheticSize, r.data.imageSize, 0, Split::Train); }

struct Collect : TrainerObserver {
    std::vector<Snapshot> snaps;
    std::vector<MetricsRow> rows;
    void onSnapshot(const Snapshot& s) override { snaps.push_back(s); }
    void onMetrics(const MetricsRow& r) override { rows.push_back(r); }
    std::vector<const Snapshot*> of(const std::string& kind) const {
        std::vector<const Snapshot*> out;
        for (const auto& s : snaps)
            if (s.kind == kind) out.push_back(&s);
        return out;
    }
};

std::map<std::string, torch::Tensor> stateOf(torch::nn::Module& m) {
    std::map<std::string, torch::Tensor> out;
    for (auto& p : m.named_parameters(true)) out[p.key()] = p.value().detach().clone();
    for (auto& b : m.named_buffers(true)) out[b.key()] = b.value().detach().clone();
    return out;
}
}  // namespace

class ProbeTest : public QObject {
    Q_OBJECT
private slots:
    void init() { torch::manual_seed(0); }

    // cos(grad L, grad L) = 1 and cos(grad L, grad -L) = -1 for every sample and every parameter group.
    void gradientCosineOfALossWithItselfAndItsNegation() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        MtlObjective mtl(r, 1, d.mean, d.std);
        auto enc = mtl.encoder();
        auto x = normalizeImages(pickProbeImages(d, 4).images01, d.mean, d.std);
        at::Generator gen = at::detail::createCPUGenerator(3);
        auto mask = randomMasking(4, enc->cfg.numPatches(), 0.75, gen, torch::kCPU);
        MimHead head{mtl.decoder(), r.mae, r.model.patchSize, "test"};
        auto loss = [&] { return mimLossPerSample(enc, head, x, mask); };
        auto same = gradientCosines(enc, loss, loss);
        auto neg = gradientCosines(enc, loss, [&] { return -mimLossPerSample(enc, head, x, mask); });
        QCOMPARE(int(same.groups.size()), r.model.depth + 3);  // embed, blocks, norm, encoder
        QCOMPARE(same.groups[1], std::string("blocks.0"));
        QCOMPARE(same.cos.size(1), int64_t(4));
        QVERIFY(torch::allclose(same.cos, torch::ones_like(same.cos), 1e-4, 1e-4));
        QVERIFY(torch::allclose(neg.cos, -torch::ones_like(neg.cos), 1e-4, 1e-4));
        // The per-sample losses average to the batch loss the training step uses.
        auto batchLoss = maeLoss(x, mtl.decoder()->forward(enc->forwardVisible(x, mask), mask.idsRestore), mask.mask, r.model.patchSize, false);
        QVERIFY(std::abs(loss().mean().item<double>() - batchLoss.item<double>()) < 1e-5);
    }

    // Losses whose gradients are known by hand: each image's cosine is its own (not the batch's), each parameter
    // lands in its own group, and the whole-batch cosine is that of the mean losses' gradients.
    void gradientCosinePerImageGroupAndBatchByHand() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        MtlObjective mtl(r, 1, d.mean, d.std);
        auto enc = mtl.encoder();
        auto params = enc->named_parameters(true);
        torch::Tensor w0 = params["blocks.0.norm1.weight"], w1 = params["blocks.1.norm1.weight"];
        const int64_t D = w0.size(0);
        auto e = [&](int64_t i, double v = 1) { return torch::zeros({D}).index_put_({i}, v); };
        // blocks.0: image 0 a = b = e0 (cos 1), image 1 a = e1, b = -e1 (cos -1); batch: (e0+e1)/2 vs (e0-e1)/2 (cos 0)
        // blocks.1: image 0 e0 vs e1 (cos 0), image 1 e2 vs e2 (cos 1); batch (e0+e2)/2 vs (e1+e2)/2 (cos 0.5)
        auto lossA = [&] { return torch::stack({(w0 * e(0)).sum() + (w1 * e(0)).sum(), (w0 * e(1)).sum() + (w1 * e(2)).sum()}); };
        auto lossB = [&] { return torch::stack({(w0 * e(0)).sum() + (w1 * e(1)).sum(), (w0 * e(1, -1)).sum() + (w1 * e(2)).sum()}); };
        auto res = gradientCosines(enc, lossA, lossB);
        auto at = [&](const std::string& g, int64_t i) {
            auto it = std::find(res.groups.begin(), res.groups.end(), g);
            return res.cos[it - res.groups.begin()][i].item<double>();
        };
        auto batchAt = [&](const std::string& g) {
            auto it = std::find(res.groups.begin(), res.groups.end(), g);
            return res.batchCos[it - res.groups.begin()].item<double>();
        };
        QVERIFY(std::abs(at("blocks.0", 0) - 1) < 1e-6);
        QVERIFY(std::abs(at("blocks.0", 1) + 1) < 1e-6);
        QVERIFY(std::abs(at("blocks.1", 0)) < 1e-6);
        QVERIFY(std::abs(at("blocks.1", 1) - 1) < 1e-6);
        QVERIFY(std::abs(at("encoder", 0) - 0.5) < 1e-6);  // (e0|e0) vs (e0|e1)
        QVERIFY(std::abs(at("encoder", 1)) < 1e-6);        // (e1|e2) vs (-e1|e2)
        QVERIFY(std::isnan(at("embed", 0)) && std::isnan(at("norm", 1)));  // no gradient there
        QVERIFY(std::abs(batchAt("blocks.0")) < 1e-6);
        QVERIFY(std::abs(batchAt("blocks.1") - 0.5) < 1e-6);
        // a probe in chunks: the whole-probe cosine comes from the gradients summed over the chunks, not from the
        // chunks' own cosines (chunk 1: e0 vs e0, cos 1; chunk 2: e1 vs -e1, cos -1; together e0+e1 vs e0-e1: 0)
        GradSums sums;
        auto one = [&](int64_t i, double sign) {
            return gradientCosines(
                enc, [&] { return torch::stack({(w0 * e(i)).sum()}); }, [&] { return torch::stack({(w0 * e(i, sign)).sum()}); }, &sums);
        };
        auto c1 = one(0, 1), c2 = one(1, -1);
        auto blocks0 = size_t(std::find(res.groups.begin(), res.groups.end(), "blocks.0") - res.groups.begin());
        QVERIFY(std::abs(c1.batchCos[int64_t(blocks0)].item<double>() - 1) < 1e-6);
        QVERIFY(std::abs(c2.batchCos[int64_t(blocks0)].item<double>() + 1) < 1e-6);
        QVERIFY(std::abs(summedGradientCosines(enc, sums)[int64_t(blocks0)].item<double>()) < 1e-6);
    }

    // Each image's CL loss is its own: the heads' BatchNorm uses its running statistics, not the probe batch's, so
    // no image's projection mixes in the others'. Checked against the loss recomputed by hand with eval-mode heads,
    // for four images and for the first two (in batch mode both would differ).
    void perSampleClLossUsesRunningBatchNormStatistics() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        MtlObjective mtl(r, 1, d.mean, d.std);
        auto enc = mtl.encoder();
        auto heads = mtl.mocoHeads();
        std::mt19937_64 rng(5);
        auto views = contrastiveViews(pickProbeImages(d, 4).images01, r.augment, d.mean, d.std, rng);
        for (int i = 0; i < 3; ++i) heads->loss(enc, views[0], views[1]);  // running statistics move, as in training
        auto byHand = [&](int64_t n) {
            torch::NoGradGuard ng;
            heads->eval();
            auto both = torch::cat({views[0].slice(0, 0, n), views[1].slice(0, 0, n)});
            auto cls = enc->forward(both).select(1, 0);
            auto mcls = heads->momentum_encoder->forward(both).select(1, 0);
            auto q1 = heads->predictor->forward(heads->projector->forward(cls.slice(0, 0, n)));
            auto q2 = heads->predictor->forward(heads->projector->forward(cls.slice(0, n)));
            auto k1 = heads->momentum_projector->forward(mcls.slice(0, 0, n));
            auto k2 = heads->momentum_projector->forward(mcls.slice(0, n));
            heads->train();
            const double T = r.moco.temperature;
            return mocoContrastiveLossPerSample(q1, k2, T) + mocoContrastiveLossPerSample(q2, k1, T);
        };
        for (int64_t n : {int64_t(4), int64_t(2)}) {
            auto got = heads->perSampleLoss(enc, views[0].slice(0, 0, n), views[1].slice(0, 0, n));
            QCOMPARE(got.size(0), n);
            QVERIFY2(torch::allclose(got.detach(), byHand(n), 1e-5, 1e-5), qPrintable(QString::number(n)));
        }
        QVERIFY(heads->projector->is_training() && heads->predictor->is_training());  // the training mode is put back
        // the per-sample terms average to the batch loss (one process)
        auto q = torch::randn({6, 8}), k = torch::randn({6, 8});
        QVERIFY(std::abs(mocoContrastiveLossPerSample(q, k, 0.2).mean().item<double>() - mocoContrastiveLoss(q, k, 0.2).item<double>()) < 1e-5);
    }

    // MIM vs CL on MTL: finite cosines in [-1, 1] per block and sample, a summary matching them, and the model's
    // state (weights, BN statistics, requires_grad flags) untouched.
    void gradientCosineProbeOnMtlLeavesTheModelAlone() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        r.probes.gradcosSamples = 7;  // in chunks of probes.samples = 4: 4 + 3 images
        auto obj = makeObjective(r, "mtl", 1, d.mean, d.std);
        for (auto& p : obj->encoder()->patch_embed->parameters()) p.set_requires_grad(false);  // as a frozen stage
        auto before = stateOf(*obj);
        ProbeRunner runner(r, d, torch::kCPU);
        Snapshot s = runner.gradcos(7, 0, *obj, nullptr, "");
        QVERIFY2(s.unavailable().empty(), s.unavailable().c_str());
        const SnapshotArray* cos = s.find("cos");
        QVERIFY(cos);
        const int64_t n = 7;
        QCOMPARE(cos->shape, (std::vector<int64_t>{r.model.depth + 3, n}));
        QCOMPARE(s.meta["image_indices"].size(), size_t(n));
        QCOMPARE(s.find("mim_loss")->shape, (std::vector<int64_t>{n}));
        QCOMPARE(s.find("batch_cos")->shape, (std::vector<int64_t>{r.model.depth + 3}));
        for (float v : s.find("batch_cos")->values) QVERIFY(std::isfinite(v) && std::abs(v) <= 1.0001f);
        for (float v : cos->values) QVERIFY(std::isfinite(v) && v >= -1.0001f && v <= 1.0001f);
        const SnapshotArray* sum = s.find("summary");
        QVERIFY(sum);
        for (int64_t g = 0; g < cos->shape[0]; ++g) {
            double mean = 0, neg = 0;
            for (int64_t i = 0; i < n; ++i) {
                mean += cos->at({g, i}) / double(n);
                neg += cos->at({g, i}) < 0 ? 1.0 / double(n) : 0.0;
            }
            QVERIFY(std::abs(sum->at({g, 0}) - mean) < 1e-5);
            QVERIFY(std::abs(sum->at({g, 6}) - neg) < 1e-6);
            QVERIFY(sum->at({g, 1}) <= sum->at({g, 3}) && sum->at({g, 3}) <= sum->at({g, 5}));
        }
        QCOMPARE(s.meta["mim_head"].get<std::string>(), std::string("this stage's MAE decoder"));
        auto after = stateOf(*obj);
        for (auto& [k, v] : before) QVERIFY2(torch::equal(v, after[k]), k.c_str());
        for (auto& p : obj->encoder()->patch_embed->parameters()) QVERIFY(!p.requires_grad());
        for (auto& p : obj->encoder()->blocks->parameters()) QVERIFY(p.requires_grad());
    }

    void gradientCosineSaysWhyItIsUnavailable() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        auto mae = makeObjective(r, "mae", 1, d.mean, d.std);
        ProbeRunner runner(r, d, torch::kCPU);
        Snapshot s = runner.gradcos(0, 0, *mae, nullptr, "");
        QVERIFY(s.arrays.empty());
        QVERIFY2(s.unavailable().find("no CL head") != std::string::npos, s.unavailable().c_str());
        auto conmim = makeObjective(r, "conmim", 1, d.mean, d.std);
        QVERIFY(runner.reconstruction(0, 0, *conmim, nullptr, "").unavailable().find("MAE decoder") != std::string::npos);
        // With the other head attached (as the CLI's --heads does) it runs.
        auto moco = makeObjective(r, "mocov3", 1, d.mean, d.std);
        Snapshot t = runner.gradcos(0, 0, *mae, moco.get(), "attached");
        QVERIFY2(t.unavailable().empty(), t.unavailable().c_str());
        QCOMPARE(t.meta["cl_head"].get<std::string>().rfind("attached's MoCo v3 heads", 0), size_t(0));
    }

    // MIM -> CL grafting: stage 1 (MAE) has no CL head (said once); stage 2 borrows stage 1's decoder.
    void graftingStageBorrowsThePreviousHead() {
        Recipe r = tinyMtl();
        StageConfig a, b;
        a.method = "mae";
        a.steps = 4;
        a.init = "random";
        b.method = "mocov3";
        b.steps = 4;
        r.stages = {a, b};
        r.probes.every = 2;
        r.train.logEvery = 2;
        Collect c;
        Trainer t(r, {});
        t.addObserver(&c);
        t.prepare();
        QCOMPARE(t.run(), TrainerState::Finished);
        auto grad = c.of("gradcos");
        QVERIFY(!grad.empty());
        QVERIFY(!grad.front()->unavailable().empty());
        QCOMPARE(grad.front()->stage, 0);
        int unavailableInStage1 = 0, availableInStage2 = 0;
        for (auto* s : grad) {
            if (s->stage == 0) unavailableInStage1 += !s->unavailable().empty();
            if (s->stage == 1 && s->unavailable().empty()) {
                ++availableInStage2;
                QVERIFY2(s->meta["mim_head"].get<std::string>().find("stage 1 (mae)") != std::string::npos,
                         s->meta["mim_head"].get<std::string>().c_str());
            }
        }
        QCOMPARE(unavailableInStage1, 1);
        QVERIFY(availableInStage2 >= 2);
        // Reconstructions continue in the CL stage with the MIM stage's decoder.
        auto rec = c.of("reconstruction");
        QVERIFY(std::any_of(rec.begin(), rec.end(), [](const Snapshot* s) { return s->stage == 1 && s->unavailable().empty(); }));
        // every image's masked-patch loss (the same number of masked patches each: their mean is the snapshot's loss)
        for (auto* s : rec) {
            if (!s->unavailable().empty()) continue;
            const SnapshotArray* per = s->find("loss_per_image");
            QVERIFY(per);
            QCOMPARE(per->shape, (std::vector<int64_t>{s->find("original")->shape[0]}));
            double mean = 0;
            for (float v : per->values) mean += v / double(per->values.size());
            QVERIFY2(std::abs(mean - s->meta["loss"].get<double>()) < 1e-4 * std::max(1.0, mean), qPrintable(QString::number(mean)));
            QVERIFY(*std::max_element(per->values.begin(), per->values.end()) > *std::min_element(per->values.begin(), per->values.end()));
        }
    }

    void attentionRowsSumToOneAndRolloutOfIdentityIsIdentity() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        auto obj = makeObjective(r, "mae", 1, d.mean, d.std);
        auto enc = obj->encoder();
        auto a = enc->blocks[0]->as<Block>()->attn;
        a->recordAttention = true;
        torch::NoGradGuard ng;
        enc->forward(normalizeImages(pickProbeImages(d, 3).images01, d.mean, d.std));
        auto sums = a->lastAttention.sum(-1);
        QVERIFY(torch::allclose(sums, torch::ones_like(sums), 1e-5, 1e-5));
        a->recordAttention = false;

        ProbeRunner runner(r, d, torch::kCPU);
        Snapshot s = runner.attention(0, 0, *obj);
        const SnapshotArray* cls = s.find("cls_attention");
        QVERIFY(cls);
        const int64_t L = r.numPatches();
        QCOMPARE(cls->shape, (std::vector<int64_t>{r.model.depth, 4, r.model.numHeads, L}));
        for (int64_t i = 0; i < 4; ++i) {  // class token to patches: the row without its own entry, < 1
            double rowSum = 0;
            for (int64_t l = 0; l < L; ++l) rowSum += cls->at({0, i, 0, l});
            QVERIFY(rowSum > 0.5 && rowSum < 1.0);
        }
        QVERIFY(!a->recordAttention && !a->lastAttention.defined());

        auto eye = torch::eye(5).expand({2, 5, 5});
        auto roll = attentionRollout({eye, eye, eye});
        QVERIFY(torch::allclose(roll, eye));
        auto uniform = torch::full({2, 5, 5}, 0.2);
        auto rollU = attentionRollout({uniform, eye});
        QVERIFY(torch::allclose(rollU.sum(-1), torch::ones({2, 5}), 1e-5, 1e-5));
    }

    void similarityOfAViewWithItselfPeaksOnTheDiagonal() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        r.method = "conmim";
        auto obj = makeObjective(r, "conmim", 1, d.mean, d.std);
        auto enc = obj->encoder();
        auto x = normalizeImages(pickProbeImages(d, 3).images01, d.mean, d.std);
        for (int block : {-1, 0}) {
            auto sim = patchCosineSimilarity(enc, x, block);
            auto diag = sim.diagonal(0, 1, 2);
            QVERIFY(torch::allclose(diag, torch::ones_like(diag), 1e-5, 1e-5));
            QVERIFY(torch::equal(std::get<0>(sim.max(-1)), diag) || (std::get<0>(sim.max(-1)) - diag).abs().max().item<float>() < 1e-6);
        }
        ProbeRunner runner(r, d, torch::kCPU);
        Snapshot s = runner.similarity(0, 0, *obj, 0, 0.1);
        QCOMPARE(s.meta["block"].get<int>(), 0);
        // every block is stored too; block 0 of it is the probe's block 0
        const SnapshotArray* blocks = s.find("cosine_blocks");
        QVERIFY(blocks);
        QCOMPARE(blocks->shape[0], int64_t(r.model.depth));
        const SnapshotArray* one = s.find("cosine");
        for (size_t k = 0; k < one->values.size(); ++k) QVERIFY(std::abs(blocks->values[k] - one->values[k]) < 1e-5);
        const SnapshotArray* lookup = s.find("lookup");
        QVERIFY(lookup);
        for (int64_t q = 0; q < lookup->shape[1]; ++q) {
            double rowSum = 0;
            for (int64_t k = 0; k < lookup->shape[2]; ++k) rowSum += lookup->at({0, q, k});
            QVERIFY(std::abs(rowSum - 1.0) < 1e-4);
        }
        auto mae = makeObjective(r, "mae", 1, d.mean, d.std);
        Snapshot m = runner.similarity(0, 0, *mae);
        QVERIFY(!m.find("lookup"));
        QVERIFY(m.meta.contains("lookup_unavailable"));
    }

    // ConMIM's look-up probe masks as training masks (block-wise by default, from the objective: methods/ConMim.h
    // trainingMask), not at random as it used to: the probe shows what training does.
    void conmimLookupMasksAsTrainingDoes() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        r.method = "conmim";
        for (bool masking : {true, false}) {
            r.conmim.masking = masking;
            QCOMPARE(r.conmim.maskStyle, std::string("blockwise"));
            auto obj = makeObjective(r, "conmim", 1, d.mean, d.std);
            auto* conmim = dynamic_cast<ConMimObjective*>(obj.get());
            QVERIFY(conmim);
            ProbeRunner runner(r, d, torch::kCPU);
            Snapshot s = runner.similarity(0, 0, *obj, 0, 0.1);
            const SnapshotArray* mask = s.find("lookup_mask");
            QVERIFY(mask);
            at::Generator gen = at::detail::createCPUGenerator(kProbeMaskSeed);
            auto want = conmim->trainingMask(mask->shape[0], gen, torch::kCPU).contiguous();
            QCOMPARE(int64_t(mask->values.size()), want.numel());
            QVERIFY(std::equal(mask->values.begin(), mask->values.end(), want.data_ptr<float>()));
            const double masked = want.sum().item<double>();
            QVERIFY(masking ? masked > 0 : masked == 0);
            const std::string note = s.meta["lookup_note"].get<std::string>();
            QVERIFY2(note.find(masking ? "blockwise mask as in training" : "no mask") != std::string::npos, note.c_str());
        }
    }

    void snapshotFileRoundTrip() {
        Snapshot s;
        s.kind = "gradcos";
        s.step = 42;
        s.stage = 1;
        s.meta["groups"] = {"embed", "blocks.0"};
        s.arrays.push_back({"cos", {2, 3}, {0.1f, -0.2f, 0.3f, 1.f, -1.f, NAN}});
        s.arrays.push_back({"scalar", {}, {7.f}});
        std::string dir = test::tempDir("snap");
        std::string path = dir + "/a.snap";
        writeSnapshotFile(path, s);
        Snapshot t = readSnapshotFile(path);
        QCOMPARE(t.kind, s.kind);
        QCOMPARE(t.step, s.step);
        QCOMPARE(t.stage, s.stage);
        QCOMPARE(t.meta, s.meta);
        QCOMPARE(t.arrays.size(), size_t(2));
        QCOMPARE(t.find("cos")->shape, s.arrays[0].shape);
        QCOMPARE(t.find("cos")->at({1, 0}), 1.f);
        QVERIFY(std::isnan(t.find("cos")->at({1, 2})));
        QCOMPARE(t.find("scalar")->values, std::vector<float>{7.f});

        std::string bytes = readFile(path);
        std::ofstream(dir + "/cut.snap", std::ios::binary) << bytes.substr(0, bytes.size() - 5);
        try {
            readSnapshotFile(dir + "/cut.snap");
            QFAIL("a truncated snapshot was accepted");
        } catch (const FileError& e) {
            QVERIFY(std::string(e.what()).find("cut.snap") != std::string::npos);
            QVERIFY(std::string(e.what()).find("truncated") != std::string::npos);
        }
        std::ofstream(dir + "/other.snap") << "hello\n";
        QVERIFY_THROWS_EXCEPTION(FileError, readSnapshotFile(dir + "/other.snap"));
    }

    // The summary's columns are read by name (CosineSummaryColumn) by the GUI, the depth profile, the table and the CLI.
    void cosineSummaryColumnsHoldWhatTheyAreNamed() {
        std::vector<float> v;
        for (int i = -2; i <= 7; ++i) v.push_back(float(i) / 10.0f);  // -0.2 ... 0.7
        v.push_back(NAN);
        auto s = cosineSummary(v);
        QCOMPARE(s.size(), kCosineSummaryColumns.size());
        QCOMPARE(kCosineSummaryColumns[kCosFracNegative], std::string("frac_negative"));
        QVERIFY(std::abs(s[kCosMean] - 0.25) < 1e-6);
        QVERIFY(std::abs(s[kCosQ10] - (-0.11)) < 1e-6);
        QVERIFY(std::abs(s[kCosMedian] - 0.25) < 1e-6);
        QVERIFY(std::abs(s[kCosQ90] - 0.61) < 1e-6);
        QVERIFY(std::abs(s[kCosFracNegative] - 0.2) < 1e-6);
        QVERIFY(s[kCosQ25] < s[kCosMedian] && s[kCosMedian] < s[kCosQ75]);
    }

    void thinningKeepsTheFirstTheLastAndAnEvenSpread() {
        std::vector<int64_t> steps;
        for (int64_t s = 0; s <= 1000; s += 10) steps.push_back(s);
        auto kept = thinSteps(steps, 11);
        QCOMPARE(kept.size(), size_t(11));
        QCOMPARE(kept.front(), int64_t(0));
        QCOMPARE(kept.back(), int64_t(1000));
        for (size_t i = 1; i < kept.size(); ++i) QCOMPARE(kept[i] - kept[i - 1], int64_t(100));
        QCOMPARE(thinSteps({1, 2, 3}, 5), (std::vector<int64_t>{1, 2, 3}));

        // The store: appended one by one with keep = 6, the spread stays even (no gap over twice the ideal).
        std::string dir = test::tempDir("thin") + "/snapshots";
        SnapshotStore store(dir, 6);
        for (int64_t step = 0; step <= 300; step += 10) {
            Snapshot s;
            s.kind = "attention";
            s.step = step;
            s.arrays.push_back({"v", {1}, {float(step)}});
            store.append(s);
            Snapshot other = s;
            other.kind = "gradcos";
            if (step == 0) store.append(other);  // another kind is not thinned by this one
        }
        auto entries = SnapshotStore::readIndex(dir);
        std::vector<int64_t> att;
        for (auto& e : entries)
            if (e.kind == "attention") att.push_back(e.step);
        QCOMPARE(att.size(), size_t(6));
        QCOMPARE(att.front(), int64_t(0));
        QCOMPARE(att.back(), int64_t(300));
        for (size_t i = 1; i < att.size(); ++i) QVERIFY(att[i] - att[i - 1] <= 2 * 300 / 5);
        size_t files = 0;
        for (auto& f : fs::directory_iterator(dir + "/attention")) files += f.path().extension() == ".snap";
        QCOMPARE(files, size_t(6));
        auto loaded = SnapshotStore::load(dir, "attention");
        QCOMPARE(loaded.size(), size_t(6));
        QCOMPARE(loaded.back().find("v")->values[0], 300.f);
        QCOMPARE(SnapshotStore::load(dir, "gradcos").size(), size_t(1));
        // A torn last index line (a writer killed mid-append) is ignored.
        { std::ofstream(dir + "/index.jsonl", std::ios::app) << "{\"kind\":\"attention\",\"st"; }
        QCOMPARE(SnapshotStore::load(dir, "attention").size(), size_t(6));
        store.truncateAfter(100);
        for (auto& s : SnapshotStore::load(dir, "")) QVERIFY(s.step <= 100);
    }

    // A run with probes: snapshots reach the observer and snapshots/, probe_share is in the metrics, and the
    // probes do not change training (same weights as without them).
    void probesDuringTrainingAreStoredTimedAndHarmless() {
        Recipe r = tinyMtl();
        r.train.steps = 6;
        r.train.logEvery = 2;
        r.probes.every = 3;
        std::string dir = test::tempDir("probe-run");
        TrainerOptions o;
        o.snapshotDir = dir + "/snapshots";
        Collect c;
        Trainer t(r, o);
        t.addObserver(&c);
        t.prepare();
        QCOMPARE(t.run(), TrainerState::Finished);
        // steps 0, 3, 6; four kinds each
        QCOMPARE(c.of("gradcos").size(), size_t(3));
        QCOMPARE(c.of("attention").size(), size_t(3));
        QCOMPARE(c.of("similarity").size(), size_t(3));
        QCOMPARE(c.of("reconstruction").size(), size_t(3));
        QCOMPARE(c.of("gradcos").back()->step, int64_t(6));
        auto stored = SnapshotStore::load(o.snapshotDir, "");
        QCOMPARE(stored.size(), size_t(12));
        for (const auto& row : c.rows) {
            double share = row.value("probe_share", -1);
            QVERIFY2(share >= 0 && share < 1, std::to_string(share).c_str());
        }
        QVERIFY(c.rows.back().value("probe_share") > 0);  // step 6 ran probes inside the window

        Recipe plain = r;
        plain.probes.every = 0;
        Collect c2;
        Trainer u(plain, {});
        u.addObserver(&c2);
        u.prepare();
        u.run();
        QVERIFY(c2.snaps.empty());
        QVERIFY(c2.rows.back().value("probe_share", -1) == -1);
        auto a = stateOf(t.objective()), b = stateOf(u.objective());
        for (auto& [k, v] : a) QVERIFY2(torch::equal(v, b[k]), k.c_str());
    }

    void exportsWriteCsvAndPng() {
        Recipe r = tinyMtl();
        Dataset d = tinyData(r);
        auto obj = makeObjective(r, "mtl", 1, d.mean, d.std);
        ProbeRunner runner(r, d, torch::kCPU);
        std::string dir = test::tempDir("export");
        std::vector<Snapshot> snaps = {runner.gradcos(1, 0, *obj, nullptr, ""), runner.attention(1, 0, *obj),
                                       runner.similarity(1, 0, *obj), runner.reconstruction(1, 0, *obj, nullptr, "")};
        for (const auto& s : snaps) {
            auto files = exportSnapshotCsv(s, dir + "/" + s.kind + ".csv");
            for (const auto& f : files) QVERIFY(fs::file_size(f) > 40);
            if (imageIoAvailable()) {
                exportSnapshotPng(s, dir + "/" + s.kind + ".png");
                QVERIFY(fs::file_size(dir + "/" + s.kind + ".png") > 1000);
                if (s.kind == "reconstruction") {  // the PNG's masked panel: masked patches magenta, visible ones the image
                    auto panel = reconstructionMaskedPanel(s, 0, 1);
                    const SnapshotArray& mask = *s.find("mask");
                    const int64_t H = panel.size(0), grid = int64_t(std::lround(std::sqrt(double(mask.shape[1])))), p = H / grid;
                    int maskedSeen = 0;
                    for (int64_t k = 0; k < mask.shape[1]; ++k) {
                        auto px = panel[(k / grid) * p + 1][(k % grid) * p + 1];
                        const int r = px[0].item<int>(), g = px[1].item<int>(), b = px[2].item<int>();
                        const bool magenta = (r == 220 && g == 0 && b == 150) || (r == 240 && g == 150 && b == 220);  // fill or hatch
                        QCOMPARE(magenta, mask.at({0, k}) > 0.5f);
                        maskedSeen += magenta;
                    }
                    QVERIFY(maskedSeen > 0);
                    // one rule (base/probes/MaskedPatch), the report's too: a damaged mask (fewer rows than images) gives none
                    QVERIFY(maskedInMagenta(*s.find("original"), mask));
                    SnapshotArray short_ = mask;
                    short_.shape[0] -= 1;
                    QVERIFY(!maskedInMagenta(*s.find("original"), short_));
                }
            }
        }
        std::string csv = readFile(dir + "/gradcos.csv");
        QVERIFY(csv.rfind("step,group,image_index,cos", 0) == 0);
        QVERIFY(csv.find(",blocks.1,") != std::string::npos);
        Snapshot unavailable = runner.gradcos(1, 0, *makeObjective(r, "mae", 1, d.mean, d.std), nullptr, "");
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, exportSnapshotCsv(unavailable, dir + "/x.csv"));
    }
};

GRAFTLAB_REGISTER_TEST(ProbeTest);
#include "test_probes.moc"
