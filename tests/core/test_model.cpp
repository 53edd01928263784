#include "methods/Mae.h"
#include "model/FusedAttention.h"
#include "train/Device.h"
#include "util/TorchVersion.h"
#include "model/Linear.h"
#include "util/Gemm.h"
#include "base/util/ThreadEnv.h"

#include <ATen/autocast_mode.h>
#include "model/Patchify.h"
#include "model/PosEmbed.h"
#include "model/Vit.h"
#include "probes/Reconstruction.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <QtTest>

using namespace graftlab;

class ModelTest : public QObject {
    Q_OBJECT
    static std::vector<GemmBackend> availableBackends() {
        std::vector<GemmBackend> b;
        for (GemmBackend k : {GemmBackend::OneDnn, GemmBackend::Blas})
            if (gemmBackendAvailable(k)) b.push_back(k);
        return b;
    }
private slots:
    // The fused linear path (at::linear: addmm on a flat view) against the C++ frontend's matmul + add, on a
    // transformer block: outputs and every gradient agree to 1e-5 (float32 summation order only).
    // The one reader of a block number in a parameter name (MAE's get_layer_id_for_vit).
    void vitLayerIdsAreMaesLayerIds() {
        const int depth = 12;
        QCOMPARE(vitLayerId("patch_embed.proj.weight", depth), 0);
        QCOMPARE(vitLayerId("cls_token", depth), 0);
        QCOMPARE(vitLayerId("pos_embed", depth), 0);
        QCOMPARE(vitLayerId("blocks.0.attn.qkv.weight", depth), 1);
        QCOMPARE(vitLayerId("blocks.11.mlp.fc2.bias", depth), 12);
        QCOMPARE(vitLayerId("norm.weight", depth), 13);
        QCOMPARE(vitLayerId("blocksX.1.w", depth), 13);   // not a block
        QCOMPARE(vitLayerId("blocks.x1.w", depth), 13);   // not a numbered block
        // every parameter of a real encoder falls in 0 .. depth + 1, the blocks in order
        VitConfig cfg;
        cfg.depth = 3;
        cfg.embedDim = 16;
        cfg.numHeads = 2;
        VisionTransformer vit(cfg);
        for (const auto& p : vit->named_parameters(true)) {
            const int id = vitLayerId(p.key(), cfg.depth);
            QVERIFY(id >= 0 && id <= cfg.depth + 1);
            if (p.key().rfind("blocks.2.", 0) == 0) QCOMPARE(id, 3);
        }
    }

    void fusedLinearMatchesTheFrontendPath() {
        torch::manual_seed(3);
        Block block(48, 3, 4.0);
        auto x = torch::randn({4, 17, 48}, torch::requires_grad());
        auto y = block->forward(x);
        auto gy = torch::randn_like(y);
        y.backward(gy);
        std::vector<torch::Tensor> fusedGrads;
        for (auto& p : block->parameters()) fusedGrads.push_back(p.grad().clone());
        auto fusedGx = x.grad().clone();
        // the same block through torch::nn::Linear's own forward (matmul, then the bias added)
        for (auto& p : block->parameters()) p.mutable_grad() = torch::Tensor();
        x.mutable_grad() = torch::Tensor();
        auto a = block->attn;
        auto h = block->norm1(x);
        const int64_t B = h.size(0), N = h.size(1), C = h.size(2);
        auto t = a->qkv(h).reshape({B, N, 3, a->numHeads, C / a->numHeads}).permute({2, 0, 3, 1, 4});
        auto attn = torch::matmul(t[0] * a->scale, t[1].transpose(-2, -1)).softmax(-1);
        auto r = x + a->proj(torch::matmul(attn, t[2]).transpose(1, 2).reshape({B, N, C}));
        auto ref = r + block->mlp->fc2(torch::gelu(block->mlp->fc1(block->norm2(r))));
        QVERIFY(torch::allclose(y, ref, 1e-5, 1e-5));
        ref.backward(gy);
        QVERIFY(torch::allclose(x.grad(), fusedGx, 1e-5, 1e-5));
        auto params = block->parameters();
        for (size_t i = 0; i < params.size(); ++i) QVERIFY(torch::allclose(params[i].grad(), fusedGrads[i], 1e-4, 1e-5));
    }

    // The fused attention core (per-head sgemm on strided qkv, model/FusedAttention.h) against timm's eager
    // code, at the benchmark's shape (65 tokens, 3 heads of 64) and an odd small one: output, attention weights
    // and the gradient of qkv agree to float rounding (1e-5 relative and absolute, 2e-5 for the gradient),
    // with one and with two intra-op threads; switched off, the block takes the eager path.
    void fusedAttentionMatchesEager() {
        QVERIFY2(fusedAttentionUsable(torch::zeros({1, 2, 6})), fusedAttentionDescription());
        const int prevThreads = torch::get_num_threads();
        struct Case { int64_t B, N, heads, d; };
        const GemmBackend prevBackend = gemmBackend();
        for (GemmBackend backend : availableBackends())
        for (int threads : {1, 2}) {
            setGemmBackend(backend);
            torch::set_num_threads(threads);
            for (Case c : {Case{6, 65, 3, 64}, Case{3, 17, 2, 5}}) {
                torch::manual_seed(11);
                const int64_t C = c.heads * c.d;
                const double scale = 1.0 / std::sqrt(double(c.d));
                // a non-contiguous input too (a slice of a wider tensor), as a caller might pass
                auto wide = torch::randn({c.B, c.N, 3 * C + 7});
                auto qkv = wide.slice(2, 0, 3 * C).detach().requires_grad_(true);
                torch::Tensor probs;
                auto out = fusedAttention(qkv, c.heads, scale, &probs);
                auto g = torch::randn_like(out);
                out.backward(g);
                auto gFused = qkv.grad().clone();
                qkv.mutable_grad() = torch::Tensor();
                auto t = qkv.reshape({c.B, c.N, 3, c.heads, c.d}).permute({2, 0, 3, 1, 4});
                auto attn = torch::matmul(t[0] * scale, t[1].transpose(-2, -1)).softmax(-1);
                auto ref = torch::matmul(attn, t[2]).transpose(1, 2).reshape({c.B, c.N, C});
                ref.backward(g);
                QCOMPARE(out.sizes(), ref.sizes());
                QVERIFY(!probs.requires_grad());
                QVERIFY(torch::allclose(out, ref, 1e-5, 1e-5));
                QVERIFY(torch::allclose(probs, attn, 1e-5, 1e-6));
                QVERIFY2(torch::allclose(gFused, qkv.grad(), 2e-5, 2e-5),
                         qPrintable(QString("max |d grad| %1").arg((gFused - qkv.grad()).abs().max().item<double>())));
            }
        }
        torch::set_num_threads(prevThreads);
        setGemmBackend(prevBackend);
        // the switch: off means the eager path (no fused node in the graph)
        Attention a(48, 3);
        auto x = torch::randn({2, 9, 48}, torch::requires_grad());
        auto yFused = a->forward(x);
        setFusedAttentionEnabled(false);
        auto yEager = a->forward(x);
        setFusedAttentionEnabled(true);
        QVERIFY(torch::allclose(yFused, yEager, 1e-5, 1e-5));
        auto hasFusedNode = [](const torch::Tensor& y) {
            std::vector<torch::autograd::Node*> pending{y.grad_fn().get()};
            std::set<torch::autograd::Node*> seen;
            while (!pending.empty()) {
                auto* n = pending.back();
                pending.pop_back();
                if (!n || !seen.insert(n).second) continue;
                if (n->name().find("FusedAttention") != std::string::npos) return true;
                for (const auto& e : n->next_edges()) pending.push_back(e.function.get());
            }
            return false;
        };
        QVERIFY(hasFusedNode(yFused));
        QVERIFY(!hasFusedNode(yEager));
    }

    // LibTorch >= 2.1: on CUDA (and on every device with GRAFTLAB_SDPA=all) an attention layer runs
    // at::scaled_dot_product_attention on strided views of qkv; it must give timm's explicit softmax(q k^T * scale) v
    // (output and gradients to float rounding), leave the explicit path to steps that record the weights, and take
    // bf16 under autocast. By default a CPU tensor never takes it (2.4x slower than the explicit path in bf16 on
    // LibTorch 2.6). With LibTorch 1.13 it is compiled out (and this skips).
    void sdpaMatchesExplicitAttention() {
        QCOMPARE(sdpaAvailable(), bool(GRAFTLAB_TORCH_AT_LEAST(2, 1)));  // on by default where it exists
        if (!sdpaAvailable()) QSKIP("LibTorch < 2.1: scaled_dot_product_attention is compiled out");
        QCOMPARE(sdpaMode(), SdpaMode::CudaOnly);
        // the CPU, by default: float32 the fused core, bf16 the explicit path, never SDPA
        QVERIFY(!sdpaUsable(torch::zeros({1, 1, 12})));
        QVERIFY(!sdpaUsable(torch::zeros({1, 1, 12}, torch::kBFloat16)));
        QVERIFY(QString::fromStdString(attentionPathFor(torch::zeros({1, 1, 12}, torch::kBFloat16))).startsWith("eager"));
        setFusedAttentionEnabled(false);
        setSdpaMode(SdpaMode::Everywhere);
        for (auto [dim, heads, tokens] : {std::tuple{48, 3, 9}, std::tuple{20, 2, 17}}) {
            torch::manual_seed(5);
            Attention a(dim, heads);
            auto x = torch::randn({3, tokens, dim}, torch::requires_grad());
            auto g = torch::randn({3, tokens, dim});
            auto run = [&](bool sdpa) {
                setSdpaMode(sdpa ? SdpaMode::Everywhere : SdpaMode::Off);
                a->zero_grad();
                x.mutable_grad() = torch::Tensor();
                auto y = a->forward(x);
                y.backward(g);
                setSdpaMode(SdpaMode::Everywhere);
                return std::make_tuple(y.detach(), x.grad().clone(), a->qkv->weight.grad().clone());
            };
            auto [ys, gxs, gws] = run(true);
            auto [ye, gxe, gwe] = run(false);
            QVERIFY2(torch::allclose(ys, ye, 1e-5, 1e-6), qPrintable(QString("max |d y| %1").arg((ys - ye).abs().max().item<double>())));
            QVERIFY(torch::allclose(gxs, gxe, 1e-4, 1e-6));
            QVERIFY(torch::allclose(gws, gwe, 1e-4, 1e-6));
            QVERIFY(!torch::equal(ys, ye) || !torch::equal(gws, gwe));  // two different computations
            QVERIFY(QString::fromStdString(attentionPathFor(torch::zeros({1, 1, 3 * dim}))).startsWith("sdpa"));
            // a probe step records the weights: the explicit path, whose weights are softmax rows
            a->recordAttention = true;
            auto yr = a->forward(x);
            a->recordAttention = false;
            QVERIFY(torch::allclose(yr, ye, 1e-5, 1e-6));
            QCOMPARE(a->lastAttention.sizes(), (std::vector<int64_t>{3, heads, tokens, tokens}));
            QVERIFY(torch::allclose(a->lastAttention.sum(-1), torch::ones({3, heads, tokens}), 1e-5, 1e-5));
        }
        // bf16 autocast on the CPU, close to float32: through SDPA when forced, through the explicit path by default
        auto bf16CloseToFloat32 = [] {
            torch::manual_seed(6);
            Attention a(48, 3);
            auto x = torch::randn({2, 9, 48});
            auto y32 = a->forward(x);
            AutocastScope autocast(true, torch::kCPU);
            auto y16 = a->forward(x);
            QCOMPARE(y16.scalar_type(), torch::kBFloat16);
            QVERIFY(torch::allclose(y16.to(torch::kFloat32), y32, 5e-2, 5e-2));
        };
        bf16CloseToFloat32();
        setFusedAttentionEnabled(true);
        // the CPU float32 core stays first where it applies
        QVERIFY(QString::fromStdString(attentionPathFor(torch::zeros({1, 1, 12}))).startsWith("fused"));
        setSdpaMode(SdpaMode::CudaOnly);
        bf16CloseToFloat32();
    }

    // util/Gemm.h: every transpose combination, strided leading dimensions, alpha and beta, through each
    // backend this process has, against torch::mm.
    void gemmMatchesTorchMm() {
        QVERIFY2(gemmAvailable(), "no sgemm found: Debian's LibTorch loads libdnnl.so.2 and libblas.so.3");
        const GemmBackend prev = gemmBackend();
        torch::manual_seed(5);
        for (GemmBackend backend : availableBackends()) {
            setGemmBackend(backend);
            QCOMPARE(gemmBackend(), backend);
            for (bool ta : {false, true})
                for (bool tb : {false, true}) {
                    const int64_t m = 37, n = 23, k = 70;
                    // stored with 5 spare columns, so lda/ldb/ldc exceed the logical widths
                    auto A = torch::randn({ta ? k : m, (ta ? m : k) + 5});
                    auto B = torch::randn({tb ? n : k, (tb ? k : n) + 5});
                    auto C = torch::randn({m, n + 5});
                    auto a = A.slice(1, 0, ta ? m : k), b = B.slice(1, 0, tb ? k : n);
                    auto opA = ta ? a.t() : a, opB = tb ? b.t() : b;
                    auto expected = 0.5 * torch::mm(opA, opB) + 2.0 * C.slice(1, 0, n);
                    gemm(ta, tb, m, n, k, 0.5f, A.data_ptr<float>(), A.size(1), B.data_ptr<float>(), B.size(1), 2.0f,
                         C.data_ptr<float>(), C.size(1));
                    QVERIFY2(torch::allclose(C.slice(1, 0, n), expected, 1e-4, 1e-4),
                             qPrintable(QString("%1 ta=%2 tb=%3").arg(gemmBackendName(backend)).arg(ta).arg(tb)));
                }
            QVERIFY(measureGemmGflops(backend, 64, 0.01) > 0);
        }
        setGemmBackend(prev);
    }

    // model/Linear.h against at::linear: 3-D and 2-D inputs, a non-contiguous input, no bias, a frozen weight
    // (no weight gradient asked); outputs and gradients to 1e-5 (float32 summation order). Under autocast and
    // for non-float inputs the layer defers to at::linear.
    void fastLinearMatchesAtLinear() {
        const GemmBackend prev = gemmBackend();
        torch::manual_seed(9);
        for (GemmBackend backend : availableBackends()) {
            setGemmBackend(backend);
            for (int variant = 0; variant < 4; ++variant) {
                auto w = torch::randn({40, 24}, torch::requires_grad(variant != 3));
                auto b = variant == 2 ? torch::Tensor() : torch::randn({40}, torch::requires_grad());
                auto x = variant == 1 ? torch::randn({24, 30}).t().detach().requires_grad_(true)  // (30, 24), strided
                                      : torch::randn({3, 11, 24}, torch::requires_grad());
                QVERIFY(fastLinearUsable(x, w, b));
                auto y = graftlab::linear(x, w, b);
                auto g = torch::randn_like(y);
                std::vector<torch::Tensor> inputs{x};
                if (w.requires_grad()) inputs.push_back(w);
                if (b.defined()) inputs.push_back(b);
                auto mine = torch::autograd::grad({y}, inputs, {g});
                auto ref = at::linear(x, w, b);
                auto theirs = torch::autograd::grad({ref}, inputs, {g});
                QCOMPARE(y.sizes(), ref.sizes());
                QVERIFY(y.grad_fn() && y.grad_fn()->name().find("CppNode<graftlab::") != std::string::npos);
                QVERIFY2(torch::allclose(y, ref, 1e-5, 1e-5), qPrintable(QString("variant %1").arg(variant)));
                for (size_t i = 0; i < inputs.size(); ++i)
                    QVERIFY2(torch::allclose(mine[i], theirs[i], 1e-5, 1e-5), qPrintable(QString("variant %1 grad %2").arg(variant).arg(i)));
            }
        }
        setGemmBackend(prev);
        auto x = torch::randn({4, 24}), w = torch::randn({8, 24}), b = torch::randn({8});
        QVERIFY(!fastLinearUsable(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble)));
        at::autocast::set_cpu_enabled(true);
        QVERIFY(!fastLinearUsable(x, w, b));
        at::autocast::set_cpu_enabled(false);
        setFastLinearEnabled(false);
        QVERIFY(!fastLinearUsable(x, w, b));
        QVERIFY(torch::allclose(graftlab::linear(x, w, b), at::linear(x, w, b)));
        setFastLinearEnabled(true);
    }

    // base/util/ThreadEnv.h: what the programs set before re-running themselves.
    void threadEnvironmentPlan() {
        QByteArray keep = qgetenv("GRAFTLAB_KEEP_THREAD_ENV"), omp = qgetenv("OMP_WAIT_POLICY"), ob = qgetenv("OPENBLAS_THREAD_TIMEOUT"),
                   spin = qgetenv("GOMP_SPINCOUNT");
        qunsetenv("GRAFTLAB_KEEP_THREAD_ENV");
        qunsetenv("OMP_WAIT_POLICY");
        qunsetenv("OPENBLAS_THREAD_TIMEOUT");
        qunsetenv("GOMP_SPINCOUNT");
        using Changes = std::vector<std::pair<std::string, std::string>>;
        QVERIFY((threadEnvironmentChanges(true) == Changes{{"GOMP_SPINCOUNT", "3000"}, {"OPENBLAS_THREAD_TIMEOUT", "4"}}));
        QVERIFY((threadEnvironmentChanges(false) == Changes{{"OMP_WAIT_POLICY", "PASSIVE"}, {"OPENBLAS_THREAD_TIMEOUT", "4"}}));
        qputenv("OMP_WAIT_POLICY", "ACTIVE");  // the user's choice stands
        qputenv("OPENBLAS_THREAD_TIMEOUT", "20");
        QVERIFY(threadEnvironmentChanges(false).empty());
        QVERIFY(threadEnvironmentChanges(true).empty());
        qunsetenv("OMP_WAIT_POLICY");
        qputenv("GOMP_SPINCOUNT", "100");
        QVERIFY(threadEnvironmentChanges(true).empty());
        qunsetenv("GOMP_SPINCOUNT");
        qunsetenv("OMP_WAIT_POLICY");
        qunsetenv("OPENBLAS_THREAD_TIMEOUT");
        qputenv("GRAFTLAB_KEEP_THREAD_ENV", "1");
        QVERIFY(threadEnvironmentChanges(false).empty());
        auto restore = [](const char* name, const QByteArray& v) { v.isNull() ? qunsetenv(name) : qputenv(name, v); };
        restore("GRAFTLAB_KEEP_THREAD_ENV", keep);
        restore("OMP_WAIT_POLICY", omp);
        restore("OPENBLAS_THREAD_TIMEOUT", ob);
        restore("GOMP_SPINCOUNT", spin);
        QCOMPARE(oneDnnGemmsExpected(), gemmBackendAvailable(GemmBackend::OneDnn) && qgetenv("GRAFTLAB_GEMM") != "blas");
    }

    void patchifyRoundTrip() {
        auto x = torch::randn({3, 2, 12, 12});
        auto p = patchify(x, 4);
        QCOMPARE(p.size(1), int64_t(9));
        QCOMPARE(p.size(2), int64_t(4 * 4 * 2));
        QVERIFY(torch::equal(unpatchify(p, 4, 2), x));
        // patch (0,1) holds rows 0..3, cols 4..7, pixels in (row, col, channel) order
        QCOMPARE(p[0][1][0].item<float>(), x[0][0][0][4].item<float>());
        QCOMPARE(p[0][1][1].item<float>(), x[0][1][0][4].item<float>());
        QCOMPARE(p[0][1][2].item<float>(), x[0][0][0][5].item<float>());
    }

    void maskingKeepsExactCountAndRestores() {
        for (double ratio : {0.75, 0.5, 0.9, 0.3}) {
            auto gen = at::detail::createCPUGenerator(7);
            const int64_t L = 49;
            MaskSample m = randomMasking(5, L, ratio, gen, torch::kCPU);
            int64_t keep = static_cast<int64_t>(L * (1.0 - ratio));
            QCOMPARE(m.idsKeep.size(1), keep);
            QVERIFY(torch::equal(m.mask.sum(1), torch::full({5}, double(L - keep))));
            // visible positions are exactly those kept
            auto visible = torch::zeros({5, L}).scatter_(1, m.idsKeep, 1.0);
            QVERIFY(torch::equal(visible, 1 - m.mask));
            // ids_restore inverts the shuffle: gathering [kept..., masked...] by ids_restore gives 0..L-1
            auto noiseOrder = torch::argsort(m.idsRestore, 1, false);
            auto restored = torch::gather(noiseOrder, 1, m.idsRestore);
            QVERIFY(torch::equal(restored, torch::arange(L).expand({5, L})));
        }
    }

    void lossIgnoresVisiblePredictions() {
        Recipe r = test::tinyRecipe();
        torch::manual_seed(0);
        MaeObjective mae(r, 1, {0.5f}, {0.25f});
        auto imgs = torch::randn({4, 1, 16, 16});
        auto gen = at::detail::createCPUGenerator(3);
        MaeForward f = mae.forward(imgs, 0.75, gen);
        auto loss1 = mae.loss(imgs, f.pred, f.mask.mask);
        auto changed = f.pred + (1 - f.mask.mask).unsqueeze(-1) * 100.0;  // only visible patches change
        auto loss2 = mae.loss(imgs, changed, f.mask.mask);
        QCOMPARE(loss1.item<float>(), loss2.item<float>());
        auto changedMasked = f.pred + f.mask.mask.unsqueeze(-1) * 1.0;
        QVERIFY(mae.loss(imgs, changedMasked, f.mask.mask).item<float>() != loss1.item<float>());
    }

    void normPixTargets() {
        Recipe r = test::tinyRecipe();
        r.mae.normPixLoss = true;
        MaeObjective mae(r, 1, {0.5f}, {0.25f});
        auto imgs = torch::rand({2, 1, 16, 16});
        auto t = mae.targets(imgs);
        QVERIFY(torch::allclose(t.mean(-1), torch::zeros({2, 16}), 1e-4, 1e-4));
        QVERIFY(torch::allclose(t.var(-1), torch::ones({2, 16}), 1e-2, 1e-2));
    }

    void sincosMatchesHandComputed() {
        // 1-D, D = 4: omega = [1, 1/100]; row p = [sin p, sin(p/100), cos p, cos(p/100)]
        auto e1 = sincos1d(4, torch::tensor({0.0, 1.0, 2.0}));
        auto expect1 = torch::tensor({0.f, 0.f, 1.f, 1.f,
                                      std::sin(1.f), std::sin(0.01f), std::cos(1.f), std::cos(0.01f),
                                      std::sin(2.f), std::sin(0.02f), std::cos(2.f), std::cos(0.02f)}).view({3, 4});
        QVERIFY(torch::allclose(e1, expect1, 1e-6, 1e-6));
        // 2-D, D = 4, grid 2, with class token: each half is a D=2 1-D embedding (omega = [1]);
        // first half encodes the column (MAE's meshgrid(w, h)), second the row.
        auto e2 = sincos2d(4, 2, true);
        QCOMPARE(e2.size(0), int64_t(5));
        QVERIFY(torch::equal(e2[0], torch::zeros({4})));
        auto row = [](float col, float rowi) {
            return torch::tensor({std::sin(col), std::cos(col), std::sin(rowi), std::cos(rowi)});
        };
        QVERIFY(torch::allclose(e2[1], row(0, 0), 1e-6, 1e-6));
        QVERIFY(torch::allclose(e2[2], row(1, 0), 1e-6, 1e-6));  // patch (row 0, col 1)
        QVERIFY(torch::allclose(e2[3], row(0, 1), 1e-6, 1e-6));  // patch (row 1, col 0)
        QVERIFY(torch::allclose(e2[4], row(1, 1), 1e-6, 1e-6));
    }

    void patchEmbedEqualsConvolution() {
        PatchEmbed pe(4, 3, 8);
        auto x = torch::randn({2, 3, 12, 12});
        auto viaConv = pe->proj->forward(x).flatten(2).transpose(1, 2);
        QVERIFY(torch::allclose(pe->forward(x), viaConv, 1e-5, 1e-5));
    }

    void encoderShapesAndNames() {
        VitConfig c;
        c.imageSize = 16;
        c.embedDim = 32;
        c.depth = 2;
        c.numHeads = 2;
        VisionTransformer vit(c);
        auto out = vit->forward(torch::randn({3, 1, 16, 16}));
        QCOMPARE(out.sizes().vec(), (std::vector<int64_t>{3, 17, 32}));
        auto params = vit->named_parameters();
        for (const char* name : {"patch_embed.proj.weight", "cls_token", "blocks.0.attn.qkv.weight",
                                 "blocks.1.mlp.fc1.weight", "blocks.0.norm1.weight", "norm.bias"})
            QVERIFY2(params.contains(name), name);
        QVERIFY(!params.contains("pos_embed"));  // fixed, a buffer
    }

    void reconstructionPastesVisiblePatches() {
        Recipe r = test::tinyRecipe();
        MaeObjective mae(r, 1, {0.4f}, {0.3f});
        auto imgs = torch::rand({3, 1, 16, 16});
        auto p = reconstruct(mae, imgs, 11);
        auto visible = (1 - p.mask).unsqueeze(-1).expand({-1, -1, 16});
        auto diff = (patchify(p.pasted, 4) - patchify(p.original, 4)).abs() * visible;
        QVERIFY(diff.max().item<float>() < 1e-5);
        QVERIFY(!p.pixelNote.empty());
        auto grid = panelsToGrid(p, 2);
        QCOMPARE(grid.dim(), int64_t(3));
        QCOMPARE(grid.size(2), int64_t(3));
    }
};
GRAFTLAB_REGISTER_TEST(ModelTest);
#include "test_model.moc"
