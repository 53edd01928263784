#include "model/Linear.h"
#include "util/Gemm.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <atomic>

namespace graftlab {
namespace {

std::atomic<bool>& fastLinearFlag() {
    static std::atomic<bool> on{envSwitchOn("GRAFTLAB_FAST_LINEAR")};
    return on;
}

at::Tensor linearForward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& bias) {
    const int64_t in = weight.size(1), out = weight.size(0);
    auto x2 = x.reshape({-1, in}).contiguous();
    auto w = weight.contiguous();
    const int64_t rows = x2.size(0);
    auto y = at::empty({rows, out}, x.options());
    float beta = 0.f;
    if (bias.defined()) {
        y.copy_(bias.reshape({1, out}).expand({rows, out}));  // the sgemm adds onto the broadcast bias
        beta = 1.f;
    }
    gemm(false, true, rows, out, in, 1.f, x2.data_ptr<float>(), in, w.data_ptr<float>(), in, beta, y.data_ptr<float>(), out);
    ctx->save_for_backward({x2, w});
    ctx->saved_data["in_shape"] = x.sizes().vec();
    auto shape = x.sizes().vec();
    shape.back() = out;
    return y.view(shape);
}

// {dx, dw, db}: only those asked for (db only with a bias)
torch::autograd::variable_list linearBackward(torch::autograd::AutogradContext* ctx, const at::Tensor& gradOut, bool hasBias) {
    auto saved = ctx->get_saved_variables();
    const auto& x2 = saved[0];
    const auto& w = saved[1];
    const int64_t in = w.size(1), out = w.size(0), rows = x2.size(0);
    at::Tensor dx, dw, db;
    if (!gradOut.defined()) return hasBias ? torch::autograd::variable_list{dx, dw, db} : torch::autograd::variable_list{dx, dw};
    auto g = gradOut.reshape({rows, out}).contiguous();
    if (ctx->needs_input_grad(0)) {
        dx = at::empty({rows, in}, g.options());
        gemm(false, false, rows, in, out, 1.f, g.data_ptr<float>(), out, w.data_ptr<float>(), in, 0.f, dx.data_ptr<float>(), in);
        dx = dx.view(ctx->saved_data["in_shape"].toIntVector());
    }
    if (ctx->needs_input_grad(1)) {
        dw = at::empty({out, in}, g.options());
        gemm(true, false, out, in, rows, 1.f, g.data_ptr<float>(), out, x2.data_ptr<float>(), in, 0.f, dw.data_ptr<float>(), in);
    }
    if (!hasBias) return {dx, dw};
    if (ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db};
}

// Two functions because LibTorch's custom functions take no undefined tensor as an input.
struct LinearFn : public torch::autograd::Function<LinearFn> {
    static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                  const at::Tensor& weight, const at::Tensor& bias) {
        return {linearForward(ctx, x, weight, bias)};
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        return linearBackward(ctx, grads[0], true);
    }
};

struct LinearNoBiasFn : public torch::autograd::Function<LinearNoBiasFn> {
    static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                  const at::Tensor& weight) {
        return {linearForward(ctx, x, weight, at::Tensor())};
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
        return linearBackward(ctx, grads[0], false);
    }
};

}  // namespace

bool fastLinearUsable(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    if (!fastLinearFlag().load(std::memory_order_relaxed) || !gemmAvailable()) return false;
    if (!x.device().is_cpu() || !weight.device().is_cpu() || x.scalar_type() != at::kFloat ||
        weight.scalar_type() != at::kFloat || x.layout() != at::kStrided || weight.layout() != at::kStrided)
        return false;
    if (bias.defined() && (!bias.device().is_cpu() || bias.scalar_type() != at::kFloat || bias.dim() != 1)) return false;
    if (at::autocast::is_cpu_enabled()) return false;  // autocast decides the dtype: at::linear
    return x.dim() >= 2 && weight.dim() == 2 && x.size(-1) == weight.size(1) && x.numel() > 0 && weight.numel() > 0 &&
           (!bias.defined() || bias.size(0) == weight.size(0));
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    if (!fastLinearUsable(x, weight, bias)) return at::linear(x, weight, bias);
    return bias.defined() ? LinearFn::apply(x, weight, bias)[0] : LinearNoBiasFn::apply(x, weight)[0];
}

void setFastLinearEnabled(bool on) { fastLinearFlag().store(on); }
bool fastLinearEnabled() { return fastLinearFlag().load(); }

}  // namespace graftlab
