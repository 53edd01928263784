// The benchmark: analytic FLOP counts against hand-counted values, and a tiny bench run that trains.
#include "TestRegistry.h"
#include "TestUtil.h"
#include "bench/Bench.h"
#include "util/CpuFeatures.h"
#include "base/util/Errors.h"

#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include <QtTest>

using namespace graftlab;
using namespace graftlab::test;

class BenchTest : public QObject {
    Q_OBJECT
private slots:
    // The bf16 instructions bench reports are the ones the kernel lists for this CPU (/proc/cpuinfo), read
    // independently of cpuid: AMX on the CI machine, AVX-512 BF16 on the AMD one, neither elsewhere.
    void cpuBf16InstructionsAsTheKernelListsThem() {
        std::ifstream in("/proc/cpuinfo");
        if (!in) QSKIP("no /proc/cpuinfo");
        std::string line, flags;
        while (std::getline(in, line))
            if (line.rfind("flags", 0) == 0) {
                flags = line.substr(line.find(':') + 1) + " ";
                break;
            }
        if (flags.empty()) QSKIP("no x86 flags line in /proc/cpuinfo");
        auto has = [&](const char* f) { return flags.find(" " + std::string(f) + " ") != std::string::npos; };
        CpuMatrixIsa isa = detectCpuMatrixIsa();
        QVERIFY(isa.known);
        QCOMPARE(isa.amxBf16, has("amx_bf16") && has("amx_tile"));
        QCOMPARE(isa.avx512Bf16, has("avx512_bf16"));
        qInfo("this CPU: %s", isa.describe().c_str());
    }
    void flopsOfTheHeadlineMaeConfiguration() {
        std::vector<RecipeIssue> issues;
        Recipe r = loadRecipeFile(sourceDir() + "/resources/recipes/bench_mae_tiny.json", {}, issues);
        QVERIFY(issues.empty());
        // 32x32 images, patch 4: 64 patches, 16 kept (+ class token); D 192, H 768, depth 12; decoder 128, 512, depth 2
        const double D = 192, H = 768, Dd = 128, Hd = 512;
        auto block = [](double T, double d, double h) { return T * 2 * (4 * d * d + 2 * d * h) + 4 * T * T * d; };
        double encoder = 2 * 64 * 16 * D + 12 * block(17, D, H);
        double decoder = 2 * 17 * D * Dd + 2 * block(65, Dd, Hd) + 2 * 65 * Dd * 16;
        FlopCount f = modelFlopsPerImage(r, 1);
        QVERIFY(std::abs(f.forward - (encoder + decoder)) < 1);
        QVERIFY(std::abs(f.trainStep - 3 * (encoder + decoder)) < 1);
        QVERIFY(f.trainStep > 0.7e9 && f.trainStep < 0.75e9);  // ~0.72 GFLOP per image
        // MoCo v3 runs two full views through the encoder (64 + 1 tokens) with gradients and two without
        r.method = "mocov3";
        FlopCount m = modelFlopsPerImage(r, 1);
        double full = 2 * 64 * 16 * D + 12 * block(65, D, H);
        QVERIFY(m.trainStep > 2 * 3 * full + 2 * full);
        QVERIFY(m.parts.contains("moco_momentum_2_views"));
        r.method = "conmim";
        QVERIFY(modelFlopsPerImage(r, 1).parts.contains("conmim_slow"));
        // the objective counts its own parts: ConMIM's projector as configured (the official 3-layer MLP, or simple)
        const double O = r.conmim.projDim, Hp = r.conmim.projHiddenDim, L = 64;
        for (const std::string projector : {"mlp_bn", "simple"}) {
            r.conmim.projector = projector;
            const double perPatch = projector == "mlp_bn" ? 2 * (D * Hp + Hp * Hp + Hp * O) : 2 * (D * D + D * O);
            const double slow = full + L * perPatch;
            FlopCount c = modelFlopsPerImage(r, 1);
            QVERIFY2(std::abs(c.parts["conmim_slow"]["forward_gflop"].get<double>() - slow / 1e9) < 1e-9, projector.c_str());
            QVERIFY(std::abs(c.forward - (slow + slow + 2 * L * L * O)) < 1);
        }
    }

    // `steps` timed steps after one warm-up on 2 threads, the roofline from a 128^3 product
    static BenchOptions quickBench(int steps) {
        BenchOptions o;
        o.steps = steps;
        o.warmup = 1;
        o.threads = 2;
        o.sgemmSize = 128;
        return o;
    }

    void benchRunsAndReportsEveryFigure() {
        for (const char* method : {"mae", "mocov3", "conmim"}) {
            Recipe r = tinyRecipe();
            r.method = method;
            r.moco.hiddenDim = 32;
            r.moco.outDim = 16;
            r.probes.every = 2;
            r.probes.samples = 2;
            BenchResult b = runBench(r, quickBench(4), "tiny");
            QCOMPARE(b.method, std::string(method));
            QCOMPARE(b.batch, r.optim.batchSize);
            QVERIFY(b.imagesPerSecond > 0);
            QVERIFY(b.gflopPerImage > 0);
            QVERIFY(b.sgemmGflops > 0);
            // the figures follow from one another: achieved = FLOP/image x images/s, MFU = achieved / measured sgemm
            QVERIFY(std::abs(b.achievedGflops - b.gflopPerImage * b.imagesPerSecond) <= 1e-9 * b.achievedGflops + 1e-12);
            QVERIFY(std::abs(b.mfu - b.achievedGflops / b.sgemmGflops) <= 1e-9 * b.mfu + 1e-12);
            // a tiny model's products are smaller than the 128^3 sgemm measured beside it: it cannot reach it twice over
            QVERIFY2(b.mfu > 0 && b.mfu < 2, std::to_string(b.mfu).c_str());
            QVERIFY(b.peakRssMb > 10);
            QVERIFY(b.probeShare > 0 && b.probeShare < 1);
            QVERIFY(b.forwardSeconds > 0 && b.backwardSeconds > 0 && b.optimizerSeconds > 0);
            QVERIFY(std::isfinite(b.firstLoss) && std::isfinite(b.lastLoss));
            auto j = b.toJson();
            for (const char* k : {"images_per_s", "gflop_per_image", "achieved_gflops", "sgemm_gflops", "mfu", "peak_rss_mb",
                                  "probe_share", "optimizer", "timing", "roofline", "roofline_gflops"})
                QVERIFY2(j.contains(k), k);
            QCOMPARE(b.timing, std::string("host clock"));
            QCOMPARE(b.cpuBf16, detectCpuMatrixIsa().describe());
            QCOMPARE(j.value("cpu_bf16", std::string()), b.cpuBf16);
            QCOMPARE(b.roofline, std::string("fp32 128^3 sgemm"));
            QCOMPARE(b.sgemmGflops, b.rooflineFp32);
        }
        {  // bf16 autocast: MFU against a bf16 product's rate, measured beside it
            Recipe r = tinyRecipe();
            r.train.precision = "bf16";
            BenchResult b = runBench(r, quickBench(2), "tiny");
            QCOMPARE(b.precision, std::string("bf16"));
            QCOMPARE(b.roofline, std::string("bf16 128^3 matmul"));
            QVERIFY(b.rooflineBf16 > 0 && b.rooflineFp32 > 0);
            QCOMPARE(b.sgemmGflops, b.rooflineBf16);
            QVERIFY(std::abs(b.mfu - b.achievedGflops / b.rooflineBf16) <= 1e-9 * b.mfu + 1e-12);
        }
        // the same fixed batch, trained: MAE's loss falls over a few steps
        Recipe r = tinyRecipe();
        r.optim.baseLr = 0.05;
        BenchOptions o;
        o.steps = 12;
        o.warmup = 0;
        o.threads = 2;
        o.sgemmSize = 64;
        BenchResult b = runBench(r, o, "tiny");
        QVERIFY2(b.lastLoss < b.firstLoss, qPrintable(QString("%1 -> %2").arg(b.firstLoss).arg(b.lastLoss)));
        o.steps = 0;
        QVERIFY_THROWS_EXCEPTION(RecipeError, runBench(r, o, "tiny"));
    }
};
GRAFTLAB_REGISTER_TEST(BenchTest);
#include "test_bench.moc"
