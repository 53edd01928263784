#pragma once
// A tensor made on the CPU (masks drawn from the step's CPU generator, so that a run is the same on every
// device) moved to the training device without making the host wait: a copy from pageable memory blocks until the
// GPU has finished everything queued before it, a copy from pinned memory does not (PyTorch's pinned-memory
// allocator keeps the buffer until the copy is done).
#include <ATen/core/Tensor.h>

namespace graftlab {

inline at::Tensor toDeviceAsync(const at::Tensor& t, const c10::Device& device) {
    if (t.device() == device) return t;
    if (t.is_cpu() && device.is_cuda()) return t.pin_memory().to(device, /*non_blocking=*/true);
    return t.to(device);
}

}  // namespace graftlab
