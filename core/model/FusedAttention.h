#pragma once
// The core of multi-head self-attention, softmax(q k^T * scale) v for every (image, head), computed straight
// from the fused qkv projection (B x N x 3C, timm's layout: [q heads | k heads | v heads] along the last axis).
//
// Why: LibTorch's eager path (timm's code in C++) permutes qkv, copies q*scale, k^T and v into contiguous
// (B*heads) x N x d tensors, and its bmm on a CPU without MKL loops over B*heads tiny products (65 x 64 x 65
// for the benchmark model), each of which OpenBLAS splits over both threads with a barrier: ~35 GFLOP/s on a
// machine where a 512^3 sgemm runs at ~170. Here every per-(image, head) product is one single-threaded sgemm
// on strided views of qkv (leading dimension 3C, no copies), the (image, head) pairs are spread over the
// intra-op threads, the scale rides in sgemm's alpha, and the head merge is the output's leading dimension.
// The backward pass is written out the same way (dP = dO v^T, dV = P^T dO, dS = softmax', dQ = dS k, dK = dS^T q).
//
// Used for float32 CPU tensors when util/Gemm.h finds an sgemm (Debian's LibTorch loads oneDNN and the system
// libblas.so.3); everything else (CUDA, bf16 autocast, no BLAS symbol) takes the eager path. Both paths agree
// to float rounding (tests/core/test_model.cpp compares outputs and gradients).
#include <ATen/core/Tensor.h>

#include <string>

namespace graftlab {

// True when fusedAttention can run on this tensor: CPU, float32, 3-D, sgemm_ found, and not switched off.
bool fusedAttentionUsable(const at::Tensor& qkv);

// Attention output (B x N x C, heads merged) from qkv (B x N x 3C); differentiable with respect to qkv. When
// probs is given it receives the attention weights (B x heads x N x N, no gradient).
at::Tensor fusedAttention(const at::Tensor& qkv, int64_t heads, double scale, at::Tensor* probs = nullptr);

// Switch for comparisons (benchmark A/B, tests). Default: on, unless GRAFTLAB_FUSED_ATTENTION=0 at start.
void setFusedAttentionEnabled(bool on);
bool fusedAttentionEnabled();

// What the benchmark prints: "fused (per-head sgemm, N threads)" or why the eager path is used.
const char* fusedAttentionDescription();

// LibTorch >= 2.1: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA). Chosen by device,
// not by the LibTorch version alone: on CUDA it is the fastest path; on a CPU it loses to the others (measured on
// LibTorch 2.6, MAE tiny, bf16 autocast: 138-180 img/s through SDPA, 433 through the explicit softmax(q k^T) v;
// float32 takes the fused core above), so by default a CPU tensor never takes it. Steps that need the attention
// weights (probe steps record them) take the explicit path everywhere.
// GRAFTLAB_SDPA at start: unset or "auto" = CUDA only; "0"/"off" = never; "all" = every device (comparisons).
enum class SdpaMode { Off, CudaOnly, Everywhere };
void setSdpaMode(SdpaMode mode);
SdpaMode sdpaMode();
// True when compiled against LibTorch >= 2.1 and the mode is not Off.
bool sdpaAvailable();
// Whether an attention layer takes SDPA for this qkv (compiled in, and the mode allows its device).
bool sdpaUsable(const at::Tensor& qkv);
// Same contract as fusedAttention without probs: qkv (B x N x 3C) -> (B x N x C).
at::Tensor sdpaAttention(const at::Tensor& qkv, int64_t heads, double scale);

// The attention core a layer would take for this qkv (what the benchmark prints): "fused ...", "sdpa ..." or
// "eager ...".
std::string attentionPathFor(const at::Tensor& qkv);

}  // namespace graftlab
