#include "model/FusedAttention.h"
#include "util/Gemm.h"
#include "util/TorchVersion.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace graftlab {
namespace {

std::atomic<bool>& fusedAttentionFlag() {
    static std::atomic<bool> on{envSwitchOn("GRAFTLAB_FUSED_ATTENTION")};
    return on;
}

SdpaMode sdpaModeFromEnvironment() {
    const char* e = std::getenv("GRAFTLAB_SDPA");
    if (!e || !*e || std::strcmp(e, "auto") == 0) return SdpaMode::CudaOnly;
    if (std::strcmp(e, "all") == 0) return SdpaMode::Everywhere;
    return envSwitchOn("GRAFTLAB_SDPA") ? SdpaMode::CudaOnly : SdpaMode::Off;
}

std::atomic<SdpaMode>& sdpaFlag() {
    static std::atomic<SdpaMode> mode{sdpaModeFromEnvironment()};
    return mode;
}

struct Shape {
    int64_t B, N, C3, C, heads, d;
};

Shape shapeOf(const at::Tensor& qkv, int64_t heads) {
    Shape s{qkv.size(0), qkv.size(1), qkv.size(2), qkv.size(2) / 3, heads, 0};
    TORCH_CHECK(s.C3 % 3 == 0 && s.C % heads == 0, "fusedAttention: qkv width ", s.C3, " is not 3 x heads (", heads,
                ") x head size");
    s.d = s.C / heads;
    return s;
}

// qkv contiguous (B, N, 3C) -> {out (B, N, C), P (B, heads, N, N)}
std::pair<at::Tensor, at::Tensor> forwardImpl(const at::Tensor& qkv, int64_t heads, double scale) {
    const Shape s = shapeOf(qkv, heads);
    const int N = static_cast<int>(s.N), d = static_cast<int>(s.d), C = static_cast<int>(s.C), C3 = static_cast<int>(s.C3);
    const float* src = qkv.data_ptr<float>();
    auto scores = at::empty({s.B, heads, s.N, s.N}, qkv.options());
    float* S = scores.data_ptr<float>();
    forEachIndependent(s.B * heads, [&](int64_t i) {
        const int64_t b = i / heads, h = i % heads;
        const float* q = src + b * s.N * s.C3 + h * s.d;
        gemm(false, true, N, N, d, static_cast<float>(scale), q, C3, q + s.C, C3, 0.f, S + i * s.N * s.N, N);
    });
    auto probs = at::_softmax(scores, -1, false);
    scores.reset();
    auto out = at::empty({s.B, s.N, s.C}, qkv.options());
    const float* P = probs.data_ptr<float>();
    float* O = out.data_ptr<float>();
    forEachIndependent(s.B * heads, [&](int64_t i) {
        const int64_t b = i / heads, h = i % heads;
        const float* v = src + b * s.N * s.C3 + 2 * s.C + h * s.d;
        gemm(false, false, N, d, N, 1.f, P + i * s.N * s.N, N, v, C3, 0.f, O + b * s.N * s.C + h * s.d, C);
    });
    return {out, probs};
}

at::Tensor backwardImpl(const at::Tensor& qkv, const at::Tensor& probs, const at::Tensor& gradOut, int64_t heads,
                        double scale) {
    const Shape s = shapeOf(qkv, heads);
    const int N = static_cast<int>(s.N), d = static_cast<int>(s.d), C = static_cast<int>(s.C), C3 = static_cast<int>(s.C3);
    const float* src = qkv.data_ptr<float>();
    const float* P = probs.data_ptr<float>();
    const float* G = gradOut.data_ptr<float>();
    auto dqkv = at::empty_like(qkv);
    float* D = dqkv.data_ptr<float>();
    auto dprobs = at::empty_like(probs);
    float* dP = dprobs.data_ptr<float>();
    forEachIndependent(s.B * heads, [&](int64_t i) {
        const int64_t b = i / heads, h = i % heads;
        const int64_t base = b * s.N * s.C3 + h * s.d;
        const float* g = G + b * s.N * s.C + h * s.d;
        // dP = dO v^T ; dV = P^T dO
        gemm(false, true, N, N, d, 1.f, g, C, src + base + 2 * s.C, C3, 0.f, dP + i * s.N * s.N, N);
        gemm(true, false, N, d, N, 1.f, P + i * s.N * s.N, N, g, C, 0.f, D + base + 2 * s.C, C3);
    });
    auto dscores = at::_softmax_backward_data(dprobs, probs, -1, at::kFloat);
    dprobs.reset();
    const float* dS = dscores.data_ptr<float>();
    const float sc = static_cast<float>(scale);
    forEachIndependent(s.B * heads, [&](int64_t i) {
        const int64_t b = i / heads, h = i % heads;
        const int64_t base = b * s.N * s.C3 + h * s.d;
        // S = scale q k^T: dQ = scale dS k ; dK = scale dS^T q
        gemm(false, false, N, d, N, sc, dS + i * s.N * s.N, N, src + base + s.C, C3, 0.f, D + base, C3);
        gemm(true, false, N, d, N, sc, dS + i * s.N * s.N, N, src + base, C3, 0.f, D + base + s.C, C3);
    });
    return dqkv;
}

struct FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn> {
    static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkvIn,
                                                  int64_t heads, double scale) {
        auto qkv = qkvIn.contiguous();
        auto [out, probs] = forwardImpl(qkv, heads, scale);
        ctx->save_for_backward({qkv, probs});
        ctx->saved_data["heads"] = heads;
        ctx->saved_data["scale"] = scale;
        ctx->mark_non_differentiable({probs});
        return {out, probs};
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        auto saved = ctx->get_saved_variables();
        if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
        auto dqkv = backwardImpl(saved[0], saved[1], grads[0].contiguous(), ctx->saved_data["heads"].toInt(),
                                 ctx->saved_data["scale"].toDouble());
        return {dqkv, at::Tensor(), at::Tensor()};
    }
};

}  // namespace

bool fusedAttentionUsable(const at::Tensor& qkv) {
    return fusedAttentionFlag().load(std::memory_order_relaxed) && gemmAvailable() && qkv.device().is_cpu() &&
           qkv.scalar_type() == at::kFloat && qkv.dim() == 3 && qkv.size(1) > 0 &&
           qkv.size(1) * qkv.size(2) < (int64_t(1) << 31) && !qkv.is_mkldnn() && qkv.layout() == at::kStrided;
}

at::Tensor fusedAttention(const at::Tensor& qkv, int64_t heads, double scale, at::Tensor* probs) {
    auto outs = FusedAttentionFn::apply(qkv, heads, scale);
    if (probs) *probs = outs[1];
    return outs[0];
}

void setFusedAttentionEnabled(bool on) { fusedAttentionFlag().store(on); }
bool fusedAttentionEnabled() { return fusedAttentionFlag().load(); }

const char* fusedAttentionDescription() {
    if (!fusedAttentionFlag().load()) return "eager (GRAFTLAB_FUSED_ATTENTION=0)";
    switch (gemmBackend()) {
    case GemmBackend::OneDnn: return "fused (per-head oneDNN sgemm on strided qkv, pairs spread over threads)";
    case GemmBackend::Blas: return "fused (per-head BLAS sgemm on strided qkv, pairs spread over threads)";
    case GemmBackend::None: break;
    }
    return "eager (no sgemm found in this process)";
}

bool sdpaAvailable() {
#if GRAFTLAB_TORCH_AT_LEAST(2, 1)
    return sdpaFlag().load(std::memory_order_relaxed) != SdpaMode::Off;
#else
    return false;
#endif
}

void setSdpaMode(SdpaMode mode) { sdpaFlag().store(mode); }
SdpaMode sdpaMode() { return sdpaFlag().load(); }

bool sdpaUsable(const at::Tensor& qkv) {
    const SdpaMode mode = sdpaFlag().load(std::memory_order_relaxed);
    return sdpaAvailable() && (mode == SdpaMode::Everywhere || (mode == SdpaMode::CudaOnly && qkv.is_cuda()));
}

at::Tensor sdpaAttention(const at::Tensor& qkv, int64_t heads, double scale) {
#if GRAFTLAB_TORCH_AT_LEAST(2, 1)
    const Shape s = shapeOf(qkv, heads);
    // (B, N, 3, heads, d) -> 3 x (B, heads, N, d): strided views, no copy; the kernels take them as they are
    auto t = qkv.view({s.B, s.N, 3, heads, s.d}).permute({2, 0, 3, 1, 4});
    auto out = at::scaled_dot_product_attention(t[0], t[1], t[2], /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false, scale);
    return out.transpose(1, 2).reshape({s.B, s.N, s.C});
#else
    TORCH_CHECK(false, "sdpaAttention needs LibTorch >= 2.1 (this build: ", TORCH_VERSION, ")");
#endif
}

std::string attentionPathFor(const at::Tensor& qkv) {
    if (fusedAttentionUsable(qkv)) return fusedAttentionDescription();
    if (sdpaUsable(qkv)) return qkv.is_cuda() ? "sdpa (at::scaled_dot_product_attention: flash / memory-efficient kernels)"
                                              : "sdpa (at::scaled_dot_product_attention; GRAFTLAB_SDPA=all)";
#if GRAFTLAB_TORCH_AT_LEAST(2, 1)
    const char* why = sdpaAvailable() ? "SDPA is slower on a CPU; GRAFTLAB_SDPA=all takes it" : "GRAFTLAB_SDPA=0";
#else
    const char* why = "LibTorch < 2.1 has no scaled_dot_product_attention";
#endif
    return std::string("eager (softmax(q k^T) v; ") + why + ")";
}

}  // namespace graftlab
