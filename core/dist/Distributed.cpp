// c10d's ProcessGroupGloo is compiled only with USE_C10D_GLOO (Debian's LibTorch has it, with libgloo-dev).
#define USE_C10D_GLOO 1
#include "dist/Distributed.h"
#if GRAFTLAB_HAVE_NCCL
#include "dist/NcclGroup.h"
#endif
#include "base/util/Errors.h"
#include "util/TorchVersion.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace graftlab {

namespace {
// Per thread: the trainer's thread trains; tests run several ranks as threads of one process.
thread_local DistContext* g_active = nullptr;

int envInt(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    try {
        size_t used = 0;
        int x = std::stoi(v, &used);
        if (used != std::strlen(v)) throw std::invalid_argument("");
        return x;
    } catch (const std::exception&) {
        throw std::invalid_argument(std::string("environment variable ") + name + "=\"" + v + "\" is not an integer");
    }
}

bool isLoopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }
}  // namespace

DistConfig distConfigFromEnv() {
    DistConfig c;
    c.worldSize = envInt("WORLD_SIZE", 1);
    c.rank = envInt("RANK", 0);
    c.localRank = envInt("LOCAL_RANK", c.rank);
    if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.masterAddr = a;
    c.masterPort = envInt("MASTER_PORT", 29500);
    c.timeout = std::chrono::milliseconds(int64_t(envInt("GRAFTLAB_DIST_TIMEOUT", 60)) * 1000);
    if (c.worldSize < 1) throw std::invalid_argument("WORLD_SIZE must be >= 1");
    if (c.rank < 0 || c.rank >= c.worldSize)
        throw std::invalid_argument("RANK=" + std::to_string(c.rank) + " is outside [0, WORLD_SIZE=" + std::to_string(c.worldSize) + ")");
    if (c.masterPort <= 0 || c.masterPort > 65535) throw std::invalid_argument("MASTER_PORT must be a TCP port (1-65535)");
    return c;
}

struct DistContext::Impl {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
#if GRAFTLAB_HAVE_NCCL
    c10::intrusive_ptr<c10d::Backend> nccl;  // made at the first collective of CUDA tensors (the same on every rank)
#endif
    // f(group) on the group that carries `t`: NCCL for CUDA tensors where compiled in, Gloo otherwise. The second
    // argument says whether waiting may take a timeout: NCCL's work waits on the GPU's stream, and a timeout would
    // make the host spin until the collective ends (NCCL's own watchdog ends a hung collective).
    template <class F>
    auto on(const torch::Tensor& t, const DistConfig& cfg, F f) {
#if GRAFTLAB_HAVE_NCCL
        if (t.is_cuda()) {
            if (!nccl) nccl = makeNcclBackend(store, cfg.rank, cfg.worldSize, cfg.timeout);
            return f(*nccl, false);
        }
#endif
        return f(*pg, true);
    }
};

bool ncclCompiledIn() {
#if GRAFTLAB_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

const char* DistContext::backendFor(const torch::Tensor& t) const { return ncclCompiledIn() && t.is_cuda() ? "nccl" : "gloo"; }

DistContext::DistContext(const DistConfig& c) : cfg_(c), d(new Impl) {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(c.masterPort);
    so.isServer = c.rank == 0;
    so.numWorkers = size_t(c.worldSize);
    so.waitWorkers = true;
    so.timeout = c.timeout;
    try {
#if GRAFTLAB_TORCH_AT_LEAST(2, 3)
        try {
            d->store = c10::make_intrusive<c10d::TCPStore>(c.masterAddr, so);
        } catch (const std::exception& e) {
            // LibTorch >= 2.4 asks for the libuv store by default; a build without libuv (Debian's 2.6) has only the
            // classic one
            if (std::string(e.what()).find("libuv") == std::string::npos) throw;
            so.useLibUV = false;
            d->store = c10::make_intrusive<c10d::TCPStore>(c.masterAddr, so);
        }
#else
        d->store = c10::make_intrusive<c10d::TCPStore>(c.masterAddr, so);
#endif
        auto opts = c10d::ProcessGroupGloo::Options::create(c.timeout);
        if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (isLoopback(c.masterAddr))
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        opts->threads = 2;
        d->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(d->store, c.rank, c.worldSize, opts);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot join the process group at " + c.masterAddr + ":" + std::to_string(c.masterPort) +
                                 " as rank " + std::to_string(c.rank) + " of " + std::to_string(c.worldSize) + " within " +
                                 std::to_string(c.timeout.count() / 1000) + " s: " + e.what());
    }
}

DistContext::~DistContext() {
    if (g_active == this) g_active = nullptr;
}

namespace {
void waitFor(const c10::intrusive_ptr<c10d::Work>& work, const DistConfig& cfg, const char* what, bool withTimeout = true) {
    try {
        if (withTimeout) work->wait(cfg.timeout);
        else work->wait();
    } catch (const std::exception& e) {
        std::string msg = e.what();
        auto nl = msg.find('\n');
        if (nl != std::string::npos) msg = msg.substr(0, nl);
        throw std::runtime_error(std::string("distributed ") + what + " failed on rank " + std::to_string(cfg.rank) + " of " +
                                 std::to_string(cfg.worldSize) + " (a peer died, hangs, or the " +
                                 std::to_string(cfg.timeout.count() / 1000) + " s timeout passed): " + msg);
    }
}
}  // namespace

void DistContext::allReduceSum(torch::Tensor& t, const char* what) {
    std::vector<torch::Tensor> v{t};
    d->on(t, cfg_, [&](auto& g, bool timed) { waitFor(g.allreduce(v), cfg_, what, timed); });
}

void DistContext::averageGradients(const std::vector<torch::Tensor>& params, size_t bucketBytes) {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> bucket;
    size_t bytes = 0;
    const double scale = 1.0 / cfg_.worldSize;
    auto flush = [&] {
        if (bucket.empty()) return;
        std::vector<torch::Tensor> flat;
        for (auto& g : bucket) flat.push_back(g.reshape({-1}));
        auto buf = torch::cat(flat);
        allReduceSum(buf, "gradient all-reduce");
        buf.mul_(scale);
        int64_t off = 0;
        for (auto& g : bucket) {
            int64_t n = g.numel();
            g.copy_(buf.slice(0, off, off + n).view_as(g));
            off += n;
        }
        bucket.clear();
        bytes = 0;
    };
    for (const auto& p : params) {
        if (!p.defined() || !p.requires_grad() || !p.grad().defined()) continue;
        bucket.push_back(p.grad());
        bytes += size_t(p.grad().numel()) * p.grad().element_size();
        if (bytes >= bucketBytes) flush();
    }
    flush();
}

void DistContext::broadcastFromRoot(const std::vector<torch::Tensor>& tensors) {
    torch::NoGradGuard ng;
    for (const auto& t : tensors) {
        if (!t.defined()) continue;
        std::vector<torch::Tensor> v{t.is_contiguous() ? t : t.contiguous()};
        d->on(t, cfg_, [&](auto& g, bool timed) { waitFor(g.broadcast(v), cfg_, "broadcast of the initial weights", timed); });
        if (!t.is_contiguous()) const_cast<torch::Tensor&>(t).copy_(v[0]);
    }
}

torch::Tensor DistContext::allGather(const torch::Tensor& t) {
    torch::NoGradGuard ng;
    auto in = t.detach().contiguous();
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < cfg_.worldSize; ++r) out[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> inputs{in};
    d->on(in, cfg_, [&](auto& g, bool timed) { waitFor(g.allgather(out, inputs), cfg_, "all-gather", timed); });
    return torch::cat(out[0], 0);
}

void DistContext::barrier() {
    // An all-reduce of one number: Gloo's barrier takes no timeout of its own.
    auto t = torch::zeros({1});
    allReduceSum(t, "barrier");
}

DistContext* activeDist() { return g_active; }
void setActiveDist(DistContext* ctx) { g_active = ctx; }

namespace {
// BatchNorm with the statistics of the global batch (all ranks); see syncBatchNorm.
struct SyncBnFunction : public torch::autograd::Function<SyncBnFunction> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                 torch::Tensor runningMean, torch::Tensor runningVar, double momentum, double eps) {
        DistContext* dist = activeDist();
        const int64_t C = x.size(1);
        auto stats = torch::cat({x.sum(0), (x * x).sum(0), torch::full({1}, double(x.size(0)), x.options())});
        if (dist) dist->allReduceSum(stats, "BatchNorm statistics");
        // the global count stays a tensor: reading it on the host would make every step wait for the GPU
        auto count = stats.slice(0, 2 * C, 2 * C + 1);
        auto mean = stats.slice(0, 0, C) / count;
        auto var = (stats.slice(0, C, 2 * C) / count - mean * mean).clamp_min(0);
        auto invstd = (var + eps).rsqrt();
        auto xhat = (x - mean) * invstd;
        if (runningMean.defined()) {
            torch::NoGradGuard ng;
            runningMean.mul_(1 - momentum).add_(mean, momentum);
            runningVar.mul_(1 - momentum).add_(var * (count / (count - 1).clamp_min(1)), momentum);
        }
        ctx->save_for_backward({xhat, invstd, weight, count});
        ctx->saved_data["affine"] = weight.defined();
        auto y = weight.defined() ? xhat * weight + bias : xhat;
        return y;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        auto saved = ctx->get_saved_variables();
        auto xhat = saved[0], invstd = saved[1], weight = saved[2], count = saved[3];
        const bool affine = ctx->saved_data["affine"].toBool();
        auto dy = grads[0];
        auto dxhat = affine ? dy * weight : dy;
        const int64_t C = xhat.size(1);
        auto sums = torch::cat({dxhat.sum(0), (dxhat * xhat).sum(0)});
        if (DistContext* dist = activeDist()) dist->allReduceSum(sums, "BatchNorm gradients");
        auto meanDxhat = sums.slice(0, 0, C) / count, meanDxhatXhat = sums.slice(0, C, 2 * C) / count;
        auto dx = (dxhat - meanDxhat - xhat * meanDxhatXhat) * invstd;
        torch::Tensor dw, db;
        if (affine) {
            dw = (dy * xhat).sum(0);
            db = dy.sum(0);
        }
        return {dx, dw, db, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
};
}  // namespace

torch::Tensor syncBatchNorm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, torch::Tensor runningMean,
                            torch::Tensor runningVar, bool training, double momentum, double eps) {
    if (!training || !activeDist())
        return torch::batch_norm(x, weight, bias, runningMean, runningVar, training, momentum, eps, /*cudnn_enabled=*/false);
    // Autograd functions take no undefined tensors: without affine parameters, a constant scale 1 and shift 0;
    // without running statistics, scratch ones that are dropped.
    auto opts = x.options();
    auto w = weight.defined() ? weight : torch::ones({x.size(1)}, opts);
    auto b = bias.defined() ? bias : torch::zeros({x.size(1)}, opts);
    if (!runningMean.defined()) runningMean = torch::zeros({x.size(1)}, opts);
    if (!runningVar.defined()) runningVar = torch::ones({x.size(1)}, opts);
    return SyncBnFunction::apply(x, w, b, runningMean, runningVar, momentum, eps);
}

}  // namespace graftlab
