// Where and how a model runs: the device a recipe asks for, bf16 autocast, LibTorch's thread count.
#include "train/Device.h"
#include "base/util/Errors.h"
#include "base/util/ThreadEnv.h"
#include "util/TorchVersion.h"

#include <torch/torch.h>

#include <ATen/autocast_mode.h>

namespace graftlab {

torch::Device resolveDevice(const std::string& device) {
    if (device == "cpu") return torch::kCPU;
    bool cuda = torch::cuda::is_available();
    if (device == "cuda") {
        if (!cuda) throw RecipeError("device", "cuda requested but this LibTorch has no CUDA device available");
        return torch::kCUDA;
    }
    return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

bool useBf16Autocast(const std::string& precision, const torch::Device& device) {
    return precision == "bf16" || (precision == "auto" && device.is_cuda());
}

bool augmentOnDevice(const std::string& augmentOn, const torch::Device& device) {
    if (device.is_cpu()) return false;  // the same thing
    return augmentOn == "device" || (augmentOn == "auto" && device.is_cuda());
}

AutocastScope::AutocastScope(bool enabled, const torch::Device& device) : enabled_(enabled), cuda_(device.is_cuda()) {
    if (!enabled_) return;
#if GRAFTLAB_TORCH_AT_LEAST(2, 4)
    // one API for every device type (the per-device calls below are deprecated from 2.4)
    const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
    previous_ = at::autocast::is_autocast_enabled(type);
    previousDtype_ = at::autocast::get_autocast_dtype(type);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
#else
    if (cuda_) {
        previous_ = at::autocast::is_enabled();
        previousDtype_ = at::autocast::get_autocast_gpu_dtype();
        at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
        at::autocast::set_enabled(true);
    } else {
        previous_ = at::autocast::is_cpu_enabled();
        previousDtype_ = at::autocast::get_autocast_cpu_dtype();
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if GRAFTLAB_TORCH_AT_LEAST(2, 4)
    const at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, previous_);
    at::autocast::set_autocast_dtype(type, previousDtype_);
#else
    if (cuda_) {
        at::autocast::set_enabled(previous_);
        at::autocast::set_autocast_gpu_dtype(previousDtype_);
    } else {
        at::autocast::set_cpu_enabled(previous_);
        at::autocast::set_autocast_cpu_dtype(previousDtype_);
    }
#endif
}

void applyThreadSetting(int threads) {
    tuneAllocator();  // every training or benchmark path passes here (base/util/ThreadEnv.h explains why)
    int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(n);
}

}  // namespace graftlab
