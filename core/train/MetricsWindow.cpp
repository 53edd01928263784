#include "train/MetricsWindow.h"

#include <torch/torch.h>
#include <spdlog/spdlog.h>

#include <cmath>

namespace graftlab {

void MetricsWindow::restart(int64_t step) {
    sums_.clear();
    steps_ = 0;
    probeSeconds_ = 0;
    startStep_ = step;
    start_ = std::chrono::steady_clock::now();
}

void MetricsWindow::addStep(double loss, const std::vector<std::pair<std::string, at::Tensor>>& parts) {
    sums_["loss"] += loss;
    for (const auto& [name, t] : parts) sums_["loss/" + name] += t.item<double>();
    ++steps_;
}

void MetricsWindow::addMeans(const std::map<std::string, double>& means, int steps) {
    for (const auto& [k, v] : means) sums_[k] += v * steps;
    steps_ += steps;
}

MetricsRow MetricsWindow::close(const RowInfo& info) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    MetricsRow row;
    row.step = info.step;
    row.epoch = info.epoch;
    row.stage = info.stage;
    const double n = steps_;
    row.values.emplace_back("loss", sums_["loss"] / n);
    for (const auto& [k, v] : sums_)
        if (k != "loss") row.values.emplace_back(k, v / n);
    for (const auto& lr : info.lr) row.values.push_back(lr);
    const int64_t steps = info.step - startStep_;
    row.values.emplace_back("images_per_s", seconds > 0 ? steps * info.imagesPerStep / seconds : 0.0);
    if (info.probes) row.values.emplace_back("probe_share", seconds > 0 ? probeSeconds_ / seconds : 0.0);
    for (const auto& e : info.extra) row.values.push_back(e);
    restart(info.step);
    return row;
}

namespace {
void accumulate(at::Tensor& acc, const at::Tensor& v) { acc = acc.defined() ? acc + v : v.clone(); }
}  // namespace

void DeviceWindow::add(const LossOutput& out, const at::Tensor& loss, const at::Tensor& bad, int64_t step) {
    torch::NoGradGuard ng;
    auto zero = at::zeros_like(loss);
    auto keep = [&](const at::Tensor& v) { return at::where(bad, zero, v.detach().to(at::kFloat)); };
    accumulate(sums_["loss"], keep(loss));
    for (const auto& [name, t] : out.parts) accumulate(sums_["loss/" + name], keep(t));
    auto badF = bad.to(at::kFloat);
    accumulate(good_, 1.0 - badF);
    auto stepT = at::full({}, double(step), loss.options());
    auto none = at::full({}, -1.0, loss.options());
    run_ = run_.defined() ? (run_ + 1.0) * badF : badF;
    runStart_ = at::where(bad.logical_and(run_.eq(1.0)), stepT, runStart_.defined() ? runStart_ : none);
    if (!maxRun_.defined()) {
        maxRun_ = run_.clone();
        maxRunStart_ = runStart_.clone();
    } else {
        maxRunStart_ = at::where(run_.gt(maxRun_), runStart_, maxRunStart_);
        maxRun_ = at::maximum(maxRun_, run_);
    }
    firstBad_ = firstBad_.defined() ? at::where(firstBad_.lt(0).logical_and(bad), stepT, firstBad_) : at::where(bad, stepT, none);
    ++steps_;
}

DeviceWindow::Read DeviceWindow::read() {
    Read r;
    if (steps_ == 0) return r;
    r.good = int(std::lround(good_.item<double>()));
    r.bad = steps_ - r.good;
    r.firstBad = int64_t(std::llround(firstBad_.item<double>()));
    r.longestBadRun = int(std::lround(maxRun_.item<double>()));
    r.longestBadRunStart = int64_t(std::llround(maxRunStart_.item<double>()));
    r.currentBadRun = int(std::lround(run_.item<double>()));
    for (auto& [k, v] : sums_) r.means[k] = r.good > 0 ? v.item<double>() / r.good : std::nan("");
    sums_.clear();
    good_ = firstBad_ = maxRun_ = maxRunStart_ = at::Tensor();
    steps_ = 0;
    return r;
}

std::optional<std::string> NonFiniteGuard::skippedStep(double loss, int64_t step) {
    std::string what = "loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " + std::to_string(step);
    if (skip_ && ++inARow_ < kMaxSkippedInARow) {
        spdlog::warn("{}: batch skipped, no optimizer step (train.on_nonfinite = skip)", what);
        return std::nullopt;
    }
    return what + (inARow_ >= kMaxSkippedInARow ? " (" + std::to_string(kMaxSkippedInARow) + " batches in a row)" : "");
}

std::optional<std::string> NonFiniteGuard::deviceWindow(const DeviceWindow::Read& w, int64_t step) const {
    if (w.bad == 0) return std::nullopt;
    std::string what = "loss is not finite (NaN or infinite) at step " + std::to_string(w.firstBad);
    if (!skip_)
        return what + " (checked on the device: steps up to " + std::to_string(step) +
               " ran, none with a non-finite loss took an optimizer step)";
    if (w.longestBadRun >= kMaxSkippedInARow)
        return "loss is not finite (NaN or infinite) at steps " + std::to_string(w.longestBadRunStart) + " to " +
               std::to_string(w.longestBadRunStart + w.longestBadRun - 1) + " (" + std::to_string(w.longestBadRun) +
               " batches in a row; at most " + std::to_string(kMaxSkippedInARow - 1) + " are skipped)";
    spdlog::warn("{}: {} batch{} skipped up to step {}, no optimizer step for them (train.on_nonfinite = skip)", what, w.bad,
                 w.bad == 1 ? "" : "es", step);
    return std::nullopt;
}

}  // namespace graftlab
