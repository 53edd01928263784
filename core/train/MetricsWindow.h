#pragma once
// What the trainer keeps between two metrics rows: the window of steps since the last row (the mean of each loss
// over the steps that took an optimizer step, their wall time, the probes' share of it), the same sums kept on the
// device when the loss is checked there (DeviceWindow: nothing waits for the device until a row is due), and the
// rule for non-finite losses (NonFiniteGuard: skip or stop, and at most kMaxSkippedInARow skipped in a row).
#include "methods/Objective.h"
#include "base/run/Observer.h"

#include <ATen/Tensor.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

class MetricsWindow {
public:
    explicit MetricsWindow(int64_t step) { restart(step); }
    // A new window from `step`, its clock starting now (after a row, or after a pause).
    void restart(int64_t step);
    // One host-checked step's losses: `loss` and every part as "loss/<name>".
    void addStep(double loss, const std::vector<std::pair<std::string, at::Tensor>>& parts);
    // `steps` finite steps whose mean values are `means` (read back from a DeviceWindow).
    void addMeans(const std::map<std::string, double>& means, int steps);
    void addProbeSeconds(double seconds) { probeSeconds_ += seconds; }
    // Whether no step of the window had a finite loss (nothing to log).
    bool empty() const { return steps_ == 0; }

    struct RowInfo {
        int64_t step = 0, epoch = 0;
        int stage = 0;
        std::vector<std::pair<std::string, double>> lr;     // "lr" and "lr/<group>"
        double imagesPerStep = 0;                            // of every rank
        bool probes = false;                                 // the run probes: "probe_share" is logged
        std::vector<std::pair<std::string, double>> extra;  // the objective's own values ("momentum")
    };
    // The row for the window ending at `info.step`: "loss" first, then each part, the lr, images_per_s over the
    // window's wall time, probe_share and the extras. Starts a new window at `info.step`.
    MetricsRow close(const RowInfo& info);

private:
    std::map<std::string, double> sums_;
    int steps_ = 0;  // steps whose losses are in sums_ (finite ones)
    int64_t startStep_ = 0;
    double probeSeconds_ = 0;
    std::chrono::steady_clock::time_point start_;
};

// What a run of steps leaves for the host to read when the loss is checked on the device (TrainerOptions::
// deviceChecks): the sums of finite losses and parts, how many steps had a finite loss, the first step whose loss
// was not, and the longest run of non-finite losses in a row. Nothing here waits for the device; read() does.
class DeviceWindow {
public:
    void add(const LossOutput& out, const at::Tensor& loss, const at::Tensor& bad, int64_t step);
    int steps() const { return steps_; }

    struct Read {
        std::map<std::string, double> means;  // over the steps with a finite loss
        int good = 0, bad = 0;
        int64_t firstBad = -1;
        int longestBadRun = 0;
        int currentBadRun = 0;  // non-finite losses in a row up to the last step
        int64_t longestBadRunStart = -1;
    };
    // Reads the window back (one device sync) and starts a new one; the current run of non-finite losses carries on.
    Read read();

private:
    std::map<std::string, at::Tensor> sums_;
    at::Tensor good_, run_, runStart_, maxRun_, maxRunStart_, firstBad_;  // run_ and runStart_ outlive a window
    int steps_ = 0;
};

// train.on_nonfinite: "stop" ends the run at a non-finite loss, "skip" skips the batch (no optimizer step) up to
// kMaxSkippedInARow - 1 in a row. Each check returns the failure to report, or nothing when training goes on.
class NonFiniteGuard {
public:
    static constexpr int kMaxSkippedInARow = 10;
    explicit NonFiniteGuard(bool skip) : skip_(skip) {}
    // Host-checked: a step whose loss `loss` was not finite (logs the skip when it is allowed).
    std::optional<std::string> skippedStep(double loss, int64_t step);
    void finiteStep() { inARow_ = 0; }
    // Device-checked: what a DeviceWindow read back, up to step `step` (logs the skips when they are allowed).
    std::optional<std::string> deviceWindow(const DeviceWindow::Read& w, int64_t step) const;

private:
    bool skip_;
    int inARow_ = 0;
};

}  // namespace graftlab
