// Data-parallel training on c10d (Gloo): ranks as threads of this process on loopback. Collectives, the
// MoCo v3 negatives of every rank, SyncBatchNorm against one big batch, MAE masks of a shard, shards of an epoch.
#include "TestRegistry.h"
#include "TestUtil.h"
#include "data/Dataset.h"
#include "data/Loader.h"
#include "dist/Distributed.h"
#include "methods/MocoV3.h"
#include "model/Vit.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <QtTest>

#include <functional>
#include <set>
#include <thread>

using namespace graftlab;
using namespace graftlab::test;

namespace {
int g_port = 29700 + (getpid() % 500) * 2;

// Runs fn(rank, ctx) on `world` threads, each a rank of one group; rethrows the first failure.
void runRanks(int world, const std::function<void(int, DistContext&)>& fn) {
    DistConfig c;
    c.worldSize = world;
    c.masterPort = g_port++;
    c.timeout = std::chrono::milliseconds(30000);
    std::vector<std::thread> threads;
    std::vector<std::string> errors(static_cast<size_t>(world));
    for (int r = 0; r < world; ++r)
        threads.emplace_back([&, r] {
            try {
                DistConfig mine = c;
                mine.rank = r;
                DistContext ctx(mine);
                setActiveDist(&ctx);
                fn(r, ctx);
                ctx.barrier();
                setActiveDist(nullptr);
            } catch (const std::exception& e) {
                errors[size_t(r)] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (int r = 0; r < world; ++r)
        if (!errors[size_t(r)].empty()) throw std::runtime_error("rank " + std::to_string(r) + ": " + errors[size_t(r)]);
}
}  // namespace

class DistTest : public QObject {
    Q_OBJECT
private slots:
    void environmentIsReadLikeTorchrun() {
        qputenv("WORLD_SIZE", "4");
        qputenv("RANK", "2");
        qputenv("MASTER_ADDR", "10.0.0.1");
        qputenv("MASTER_PORT", "1234");
        DistConfig c = distConfigFromEnv();
        QCOMPARE(c.worldSize, 4);
        QCOMPARE(c.rank, 2);
        QCOMPARE(c.localRank, 2);
        QCOMPARE(c.masterAddr, std::string("10.0.0.1"));
        QCOMPARE(c.masterPort, 1234);
        qputenv("RANK", "4");
        try {
            distConfigFromEnv();
            QFAIL("RANK outside WORLD_SIZE accepted");
        } catch (const std::invalid_argument& e) {
            QVERIFY(std::string(e.what()).find("RANK=4") != std::string::npos);
        }
        qputenv("RANK", "x");
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, distConfigFromEnv());
        for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) qunsetenv(v);
        QCOMPARE(distConfigFromEnv().worldSize, 1);
    }

    void shardsOfAnEpochAreDisjointAndCoverIt() {
        auto data = std::make_shared<Dataset>(makeSynthetic(96, 8, 1, Split::Train));
        auto views = [](const torch::Tensor& x, uint64_t) { return std::vector<torch::Tensor>{x}; };
        Loader r0(data, 8, 7, views, 0, 3), r1(data, 8, 7, views, 1, 3), r2(data, 8, 7, views, 2, 3);
        QCOMPARE(r0.stepsPerEpoch(), int64_t(4));  // 96 images / (3 ranks x 8)
        std::set<int64_t> seen;
        for (int64_t step = 0; step < r0.stepsPerEpoch(); ++step)
            for (Loader* l : {&r0, &r1, &r2}) {
                auto idx = l->indicesForStep(step);
                for (int64_t i = 0; i < idx.size(0); ++i) QVERIFY2(seen.insert(idx[i].item<int64_t>()).second, "an image in two shards");
            }
        QCOMPARE(int64_t(seen.size()), int64_t(96));
        // the next epoch is shuffled differently, the same on every rank
        QVERIFY(!torch::equal(r0.indicesForStep(0), r0.indicesForStep(4)));
        Loader again(data, 8, 7, views, 1, 3);
        QVERIFY(torch::equal(again.indicesForStep(5), r1.indicesForStep(5)));
    }

    void collectivesAverageGatherAndBroadcast() {
        runRanks(2, [](int rank, DistContext& d) {
            auto w = torch::full({3, 2}, double(rank + 1));
            d.broadcastFromRoot({w});
            if (!torch::equal(w, torch::ones({3, 2}))) throw std::runtime_error("broadcast did not give rank 0's values");
            auto p = torch::zeros({5}, torch::requires_grad());
            p.mutable_grad() = torch::full({5}, double(rank * 2));  // 0 and 2: mean 1
            auto q = torch::zeros({2, 2}, torch::requires_grad());
            q.mutable_grad() = torch::full({2, 2}, double(rank));
            d.averageGradients({p, q}, /*bucketBytes=*/8);  // several buckets
            if (!torch::allclose(p.grad(), torch::ones({5})) || !torch::allclose(q.grad(), torch::full({2, 2}, 0.5)))
                throw std::runtime_error("gradients not averaged");
            auto g = d.allGather(torch::full({2, 3}, double(rank)));
            if (g.size(0) != 4 || g[0][0].item<double>() != 0 || g[3][0].item<double>() != 1) throw std::runtime_error("all-gather order");
        });
    }

    void cudaTensorsTravelByNcclCpuTensorsByGloo() {
        // Each tensor goes by the group for its device: Gloo for CPU tensors everywhere; on a CUDA build NCCL for
        // CUDA tensors (world size 1: one GPU cannot hold two NCCL ranks), with the same results.
        runRanks(1, [](int, DistContext& d) {
            if (std::string(d.backendFor(torch::zeros({1}))) != "gloo") throw std::runtime_error("a CPU tensor not by Gloo");
        });
        if (!torch::cuda::is_available()) QSKIP("no CUDA device: every tensor goes by Gloo");
        QVERIFY2(ncclCompiledIn(), "a CUDA build without NCCL: see the 'GraftLab: NCCL for CUDA tensors' line of CMake");
        runRanks(1, [](int, DistContext& d) {
            const torch::Device cuda(torch::kCUDA, 0);
            auto w = torch::arange(6, torch::TensorOptions().dtype(torch::kFloat32).device(cuda)).view({3, 2});
            if (std::string(d.backendFor(w)) != "nccl") throw std::runtime_error("a CUDA tensor not by NCCL");
            auto before = w.clone();
            d.broadcastFromRoot({w});
            auto p = torch::zeros({5}, torch::TensorOptions().device(cuda).requires_grad(true));
            p.mutable_grad() = torch::full({5}, 3.0, torch::TensorOptions().device(cuda));
            d.averageGradients({p}, /*bucketBytes=*/8);
            auto g = d.allGather(torch::ones({2, 3}, torch::TensorOptions().device(cuda)));
            auto s = torch::full({2}, 2.0, torch::TensorOptions().device(cuda));
            d.allReduceSum(s, "test sum");
            if (!torch::equal(w, before) || !torch::allclose(p.grad(), torch::full_like(p.grad(), 3.0)) ||
                g.size(0) != 2 || !g.is_cuda() || !torch::allclose(s, torch::full_like(s, 2.0)))
                throw std::runtime_error("a collective of CUDA tensors at world size 1 changed its values");
        });
    }

    void mocoNegativesComeFromEveryRank() {
        // 2 ranks with B = 4 queries each: the loss of each rank is that of its queries against all 8 keys.
        torch::manual_seed(5);
        auto q = torch::randn({8, 16}), k = torch::randn({8, 16});
        double single = 0;
        {
            // one process, B = 8: the mean over both ranks' losses must equal it
            single = mocoContrastiveLoss(q, k, 0.2).item<double>();
        }
        std::vector<double> perRank(2);
        runRanks(2, [&](int rank, DistContext&) {
            auto lq = q.slice(0, rank * 4, rank * 4 + 4), lk = k.slice(0, rank * 4, rank * 4 + 4);
            perRank[size_t(rank)] = mocoContrastiveLoss(lq, lk, 0.2).item<double>();
        });
        QVERIFY2(std::abs((perRank[0] + perRank[1]) / 2 - single) < 1e-5,
                 qPrintable(QString("%1 %2 vs %3").arg(perRank[0]).arg(perRank[1]).arg(single)));
        // without the gather each rank would see only its 4 keys: a different (smaller) loss
        double local = mocoContrastiveLoss(q.slice(0, 0, 4), k.slice(0, 0, 4), 0.2).item<double>();
        QVERIFY(std::abs(local - perRank[0]) > 1e-3);
    }

    void syncBatchNormIsBatchNormOfTheGlobalBatch() {
        torch::manual_seed(6);
        auto x = torch::randn({8, 5}) * 3 + 1;
        auto w = torch::rand({5}) + 0.5, b = torch::randn({5});
        auto gy = torch::randn({8, 5});
        // reference: one batch of 8 (upstream gradient of the mean of both ranks' losses = gy / 2 per rank's sum)
        auto xr = x.clone().requires_grad_(true);
        auto wr = w.clone().requires_grad_(true), br = b.clone().requires_grad_(true);
        auto rm = torch::zeros({5}), rv = torch::ones({5});
        auto yr = torch::batch_norm(xr, wr, br, rm, rv, true, 0.1, 1e-5, false);
        (yr * gy).sum().backward();
        std::vector<torch::Tensor> ys(2), dxs(2), dws(2), rms(2), rvs(2);
        runRanks(2, [&](int rank, DistContext& d) {
            auto xl = x.slice(0, rank * 4, rank * 4 + 4).clone().requires_grad_(true);
            auto wl = w.clone().requires_grad_(true), bl = b.clone().requires_grad_(true);
            auto lrm = torch::zeros({5}), lrv = torch::ones({5});
            auto y = syncBatchNorm(xl, wl, bl, lrm, lrv, true, 0.1, 1e-5);
            (y * gy.slice(0, rank * 4, rank * 4 + 4)).sum().backward();
            // data-parallel: parameter gradients are summed over ranks here (the trainer averages the mean losses)
            auto dw = wl.grad().clone();
            d.allReduceSum(dw, "test");
            ys[size_t(rank)] = y.detach();
            dxs[size_t(rank)] = xl.grad();
            dws[size_t(rank)] = dw;
            rms[size_t(rank)] = lrm;
            rvs[size_t(rank)] = lrv;
        });
        QVERIFY(torch::allclose(torch::cat(ys), yr.detach(), 1e-5, 1e-5));
        QVERIFY(torch::allclose(torch::cat(dxs), xr.grad(), 1e-4, 1e-5));
        QVERIFY(torch::allclose(dws[0], wr.grad(), 1e-4, 1e-5));
        QVERIFY(torch::allclose(rms[0], rm, 1e-5, 1e-6));
        QVERIFY(torch::allclose(rvs[1], rv, 1e-5, 1e-6));  // the unbiased variance of the global batch, as batch_norm's
        // without affine parameters (MoCo v3's last BatchNorm)
        std::vector<torch::Tensor> plainYs(2);
        runRanks(2, [&](int rank, DistContext&) {
            auto xl = x.slice(0, rank * 4, rank * 4 + 4).clone().requires_grad_(true);
            auto y = syncBatchNorm(xl, torch::Tensor(), torch::Tensor(), torch::zeros({5}), torch::ones({5}), true, 0.1, 1e-5);
            y.sum().backward();
            plainYs[size_t(rank)] = y.detach();
        });
        auto ref = torch::batch_norm(x, {}, {}, torch::zeros({5}), torch::ones({5}), true, 0.1, 1e-5, false);
        QVERIFY(torch::allclose(torch::cat(plainYs), ref, 1e-5, 1e-5));
        // without a group it is plain batch norm
        auto plain = syncBatchNorm(x, w, b, torch::zeros({5}), torch::ones({5}), true, 0.1, 1e-5);
        QVERIFY(torch::allclose(plain, yr.detach(), 1e-5, 1e-5));
    }

    void maeMasksOfShardsAreTheGlobalMasks() {
        auto g1 = at::detail::createCPUGenerator(11);
        auto global = randomMasking(8, 16, 0.75, g1, torch::kCPU);
        for (int shard = 0; shard < 2; ++shard) {
            auto g = at::detail::createCPUGenerator(11);
            auto part = randomMasking(4, 16, 0.75, g, torch::kCPU, shard, 2);
            QVERIFY(torch::equal(part.mask, global.mask.slice(0, shard * 4, shard * 4 + 4)));
            QVERIFY(torch::equal(part.idsKeep, global.idsKeep.slice(0, shard * 4, shard * 4 + 4)));
        }
    }

    void aMissingPeerEndsTheWaitWithAMessage() {
        DistConfig c;
        c.worldSize = 2;
        c.rank = 0;
        c.masterPort = g_port++;
        c.timeout = std::chrono::milliseconds(1500);
        auto t0 = std::chrono::steady_clock::now();
        try {
            DistContext lonely(c);
            QFAIL("joined a group whose second rank never came");
        } catch (const std::exception& e) {
            QVERIFY2(std::string(e.what()).find("cannot join the process group") != std::string::npos, e.what());
        }
        QVERIFY(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
    }
};
GRAFTLAB_REGISTER_TEST(DistTest);
#include "test_dist.moc"
