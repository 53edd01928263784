#pragma once
// y = x W^T + b, as at::linear, for every linear layer of the models (ViT blocks, patch embedding, MAE decoder,
// ConMIM projector). On CPU float32 outside autocast the products run through util/Gemm.h (oneDNN's sgemm:
// ~2x OpenBLAS's rate on this machine) in a small autograd function: forward = one sgemm onto the broadcast
// bias; backward = dX = dY W, dW = dY^T X (only the gradients needed), db = column sums of dY. The input is
// used as a flat (rows x in) view, so a contiguous 3-D activation is never copied. Anything else (CUDA, bf16
// autocast, no sgemm found, GRAFTLAB_FAST_LINEAR=0) calls at::linear. tests/core/test_model.cpp compares
// both paths' outputs and gradients.
#include <ATen/core/Tensor.h>

namespace graftlab {

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

bool fastLinearUsable(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
void setFastLinearEnabled(bool on);  // default on unless GRAFTLAB_FAST_LINEAR=0
bool fastLinearEnabled();

}  // namespace graftlab
