#pragma once
// Time marks on the device that runs the work. On CUDA (LibTorch >= 2.6, where c10::Event has elapsedTime) a mark
// is an event recorded on the current stream with timing on: marking never waits for the GPU, and the intervals
// are read once at the end. On the CPU (and on CUDA with an older LibTorch) a mark is the host clock, after a
// device synchronisation where the device is asynchronous.
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <vector>

namespace graftlab {

class DeviceTimer {
public:
    explicit DeviceTimer(const c10::Device& device);
    ~DeviceTimer();
    void mark();
    // Milliseconds between mark i and mark i + 1 (waits for the device once). Clears the marks.
    std::vector<double> intervalsMs();
    // "cuda events" or "host clock" (+ " with a device sync per mark" where that is how it is timed)
    const char* method() const;

private:
    struct Events;
    c10::Device device_;
    bool events_ = false;
    std::unique_ptr<Events> ev_;
    std::vector<std::chrono::steady_clock::time_point> host_;
};

// The rate (GFLOP/s) of a large n x n x n matrix product on `device` in `dtype` (bf16, or float32: tf32 when
// `allowTf32`), the roofline a GPU benchmark is measured against. Times `reps` products after a warm-up.
double measureMatmulGflops(const c10::Device& device, c10::ScalarType dtype, bool allowTf32, int n = 8192, int reps = 10);

}  // namespace graftlab
