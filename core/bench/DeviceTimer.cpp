#include "bench/DeviceTimer.h"
#include "util/TorchVersion.h"

#include <torch/torch.h>

#define GRAFTLAB_DEVICE_EVENTS GRAFTLAB_TORCH_AT_LEAST(2, 6)
#if GRAFTLAB_DEVICE_EVENTS
#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#endif

namespace graftlab {

struct DeviceTimer::Events {
#if GRAFTLAB_DEVICE_EVENTS
    std::vector<c10::Event> marks;
#endif
};

DeviceTimer::DeviceTimer(const c10::Device& device) : device_(device), ev_(std::make_unique<Events>()) {
#if GRAFTLAB_DEVICE_EVENTS
    events_ = device.is_cuda();
#endif
}

DeviceTimer::~DeviceTimer() = default;

void DeviceTimer::mark() {
#if GRAFTLAB_DEVICE_EVENTS
    if (events_) {
        const auto* impl = c10::impl::getDeviceGuardImpl(device_.type());
        c10::Device d = device_.has_index() ? device_ : impl->getDevice();
        ev_->marks.emplace_back(device_.type(), c10::EventFlag::BACKEND_DEFAULT);  // BACKEND_DEFAULT: timing on
        ev_->marks.back().record(impl->getStream(d));
        return;
    }
#endif
    if (device_.is_cuda()) torch::cuda::synchronize();
    host_.push_back(std::chrono::steady_clock::now());
}

std::vector<double> DeviceTimer::intervalsMs() {
    std::vector<double> out;
#if GRAFTLAB_DEVICE_EVENTS
    if (events_) {
        if (!ev_->marks.empty()) ev_->marks.back().synchronize();
        for (size_t i = 0; i + 1 < ev_->marks.size(); ++i) out.push_back(ev_->marks[i].elapsedTime(ev_->marks[i + 1]));
        ev_->marks.clear();
        return out;
    }
#endif
    for (size_t i = 0; i + 1 < host_.size(); ++i)
        out.push_back(std::chrono::duration<double, std::milli>(host_[i + 1] - host_[i]).count());
    host_.clear();
    return out;
}

const char* DeviceTimer::method() const {
    if (events_) return "cuda events";
    return device_.is_cuda() ? "host clock with a device sync per mark (LibTorch < 2.6: no event timing)" : "host clock";
}

double measureMatmulGflops(const c10::Device& device, c10::ScalarType dtype, bool allowTf32, int n, int reps) {
    torch::NoGradGuard ng;
    auto& ctx = at::globalContext();
    const auto previous = ctx.float32MatmulPrecision();
    ctx.setFloat32MatmulPrecision(allowTf32 ? "high" : "highest");
    auto opts = torch::TensorOptions().device(device).dtype(dtype);
    auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
    auto c = torch::mm(a, b);  // warm-up (cuBLAS handle, heuristics)
    DeviceTimer t(device);
    t.mark();
    for (int i = 0; i < reps; ++i) torch::mm_out(c, a, b);
    t.mark();
    double ms = t.intervalsMs().at(0);
    ctx.setFloat32MatmulPrecision(previous);
    return 2.0 * double(n) * n * n * reps / (ms * 1e-3) / 1e9;
}

}  // namespace graftlab
