#include "train/Optimizer.h"
#include "util/TorchVersion.h"
#include "util/Gemm.h"

#include <torch/torch.h>

#include <sstream>

#include <atomic>
#include <cmath>
#include <map>
#include <type_traits>

#define GRAFTLAB_FUSED_ADAMW_CUDA GRAFTLAB_TORCH_AT_LEAST(2, 0)
#define GRAFTLAB_FUSED_ADAMW_CPU GRAFTLAB_TORCH_AT_LEAST(2, 4)
#define GRAFTLAB_FOREACH_TENSOR_SCALAR GRAFTLAB_TORCH_AT_LEAST(2, 1)

namespace graftlab {

AdamwGroups adamwGroups(const std::vector<std::pair<std::string, torch::Tensor>>& namedParameters, const AdamwSettings& settings,
                        const std::function<double(const std::string&)>& multiplierOf) {
    std::map<std::pair<double, bool>, std::vector<torch::Tensor>> buckets;
    std::map<std::pair<double, bool>, std::string> firstName;
    for (const auto& [name, p] : namedParameters) {
        if (!p.requires_grad()) continue;
        const double m = multiplierOf(name);
        if (m == 0.0) {
            torch::Tensor frozen = p;
            frozen.set_requires_grad(false);  // no gradient is computed for it at all
            continue;
        }
        const bool isBias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
        const bool decay = !(p.dim() <= 1 || isBias || settings.noDecay.count(name));
        buckets[{-m, !decay}].push_back(p);  // largest multiplier first, decay before no-decay
        firstName.emplace(std::make_pair(-m, !decay), name);
    }
    AdamwGroups out;
    for (auto& [key, params] : buckets) {
        const double m = -key.first;
        const bool decay = !key.second;
        out.groups.emplace_back(params, std::make_unique<torch::optim::AdamWOptions>(
                                            torch::optim::AdamWOptions(settings.peakLr * m)
                                                .betas({settings.beta1, settings.beta2})
                                                .weight_decay(decay ? settings.weightDecay : 0.0)
                                                .eps(1e-8)));
        out.multipliers.push_back(m);
        out.firstNames.push_back(firstName[key]);
    }
    return out;
}

AdamwGroups adamwGroups(torch::nn::Module& model, const Recipe& recipe, const std::function<double(const std::string&)>& multiplierOf) {
    AdamwSettings s;
    s.peakLr = recipe.peakLr();
    s.beta1 = recipe.optim.beta1;
    s.beta2 = recipe.optim.beta2;
    s.weightDecay = recipe.optim.weightDecay;
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (const auto& p : model.named_parameters(true)) named.emplace_back(p.key(), p.value());
    return adamwGroups(named, s, multiplierOf);
}

namespace {

std::atomic<bool>& fusedFlag() {
    static std::atomic<bool> on{envSwitchOn("GRAFTLAB_FUSED_ADAMW")};
    return on;
}

// The key LibTorch's optimizers file a parameter's state under: the TensorImpl's address (2.x) or its decimal
// string (1.13).
template <class Map>
typename Map::key_type stateKeyOf(const Map&, const at::Tensor& p) {
    if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
        std::ostringstream os;  // as c10::guts::to_string wrote the address in LibTorch 1.13
        os << static_cast<const void*>(p.unsafeGetTensorImpl());
        return os.str();
    }
    else return p.unsafeGetTensorImpl();
}

}  // namespace

bool fusedAdamwAvailable(const torch::Device& device) {
    if (!fusedFlag().load(std::memory_order_relaxed)) return false;
    if (device.is_cuda()) return GRAFTLAB_FUSED_ADAMW_CUDA;
    if (device.is_cpu()) return GRAFTLAB_FUSED_ADAMW_CPU;
    return false;
}

void setFusedAdamwEnabled(bool on) { fusedFlag().store(on); }

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults)
    : torch::optim::AdamW(std::move(groups), std::move(defaults)) {
    for (auto& g : param_groups_)
        if (!g.params().empty()) {
            fused_ = fusedAdamwAvailable(g.params().front().device());
            break;
        }
}

at::Tensor AdamW::step(LossClosure closure) {
    TORCH_CHECK(!closure, "graftlab::AdamW takes no closure");
    stepWithFlag(at::Tensor());
    return {};
}

void AdamW::stepWithFlag(const at::Tensor& foundInf) {
    if (!fused_) {
        TORCH_CHECK(!foundInf.defined(), "AdamW: a found_inf flag needs the fused kernel");
        torch::optim::AdamW::step();
        return;
    }
#if GRAFTLAB_FUSED_ADAMW_CUDA
    torch::NoGradGuard ng;
    for (auto& group : param_groups_) {
        auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
        std::vector<at::Tensor> params, grads, expAvg, expAvgSq, maxExpAvgSq, steps;
        for (auto& p : group.params()) {
            if (!p.grad().defined()) continue;
            TORCH_CHECK(!p.grad().is_sparse(), "AdamW does not support sparse gradients");
            auto key = stateKeyOf(state_, p);
            auto it = state_.find(key);
            if (it == state_.end()) {
                auto st = std::make_unique<torch::optim::AdamWParamState>();
                st->step(0);
                st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
                st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
                if (o.amsgrad()) st->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
                it = state_.emplace(key, std::move(st)).first;
            }
            auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
            at::Tensor& count = deviceSteps_[p.unsafeGetTensorImpl()];
            if (!count.defined()) count = at::full({}, double(st.step()), p.options().dtype(at::kFloat));
            params.push_back(p);
            grads.push_back(p.grad());
            expAvg.push_back(st.exp_avg());
            expAvgSq.push_back(st.exp_avg_sq());
            if (o.amsgrad()) maxExpAvgSq.push_back(st.max_exp_avg_sq());
            steps.push_back(count);
        }
        if (params.empty()) continue;
        at::_foreach_add_(steps, 1);
        std::optional<at::Tensor> flag;
        if (foundInf.defined()) flag = foundInf.to(params.front().device(), at::kFloat);
        at::_fused_adamw_(params, grads, expAvg, expAvgSq, maxExpAvgSq, steps, o.lr(), std::get<0>(o.betas()),
                          std::get<1>(o.betas()), o.weight_decay(), o.eps(), o.amsgrad(), /*maximize=*/false,
                          /*grad_scale=*/std::nullopt, flag);
        // a skipped step is not counted (as torch.optim does after the kernel)
        if (flag) at::_foreach_sub_(steps, std::vector<at::Tensor>(steps.size(), *flag));
    }
#else
    TORCH_CHECK(false, "fused AdamW is not in this LibTorch");
#endif
}

void AdamW::syncStepsToState() const {
    if (deviceSteps_.empty()) return;
    auto& state = const_cast<std::remove_const_t<std::remove_reference_t<decltype(state_)>>&>(state_);
    for (const auto& group : param_groups_)
        for (const auto& p : group.params()) {
            auto d = deviceSteps_.find(p.unsafeGetTensorImpl());
            if (d == deviceSteps_.end()) continue;
            auto it = state.find(stateKeyOf(state, p));
            if (it == state.end()) continue;
            static_cast<torch::optim::AdamWParamState&>(*it->second).step(int64_t(std::llround(d->second.item<double>())));
        }
}

void AdamW::save(torch::serialize::OutputArchive& archive) const {
    syncStepsToState();
    torch::optim::AdamW::save(archive);
}

void AdamW::load(torch::serialize::InputArchive& archive) {
    torch::optim::AdamW::load(archive);
    deviceSteps_.clear();  // restarted from the loaded counts at the next step
}

at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm) {
    torch::NoGradGuard ng;
    std::vector<at::Tensor> grads;
    for (const auto& p : params)
        if (p.grad().defined()) grads.push_back(p.grad());
    if (grads.empty()) return at::zeros({});
    std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
    auto total = at::stack(norms).to(at::kFloat).norm(2);
    auto coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
#if GRAFTLAB_FOREACH_TENSOR_SCALAR
    at::_foreach_mul_(grads, coef);
#else
    for (auto& g : grads) g.mul_(coef.to(g.scalar_type()));
#endif
    return total;
}

}  // namespace graftlab
