// Running a trainer from the command line: progress on a terminal (or log lines), Ctrl-C / SIGTERM stop it
// after the current step with a checkpoint.
#include "CliCommon.h"
#include "base/util/StopSignals.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "train/RunSession.h"
#include "train/Trainer.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {


class ProgressPrinter : public TrainerObserver {
public:
    explicit ProgressPrinter(bool tty) : tty_(tty) {}
    void onRunStarted(const RunInfo& info) override {
        total_ = info.totalSteps;
        start_ = info.startStep;
        t0_ = std::chrono::steady_clock::now();
        spdlog::info("training {} on {} ({} images, device {}), {} parameters, steps {}..{}",
                     info.recipe.value("name", "?"), info.dataset, info.trainImages, info.device, info.parameters,
                     info.startStep, info.totalSteps);
    }
    void onMetrics(const MetricsRow& row) override {
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        double done = double(row.step - start_);
        double eta = done > 0 ? elapsed / done * double(total_ - row.step) : 0;
        char etaBuf[32];
        std::snprintf(etaBuf, sizeof etaBuf, "%02d:%02d", int(eta) / 60, int(eta) % 60);
        if (tty_) {
            const int width = 28;
            int filled = int(width * double(row.step) / double(std::max<int64_t>(1, total_)));
            std::string bar(size_t(filled), '#');
            bar += std::string(size_t(width - filled), '.');
            std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  %.0f img/s  ETA %s   ", bar.c_str(),
                         (long long)row.step, (long long)total_, row.value("loss"), row.value("images_per_s"), etaBuf);
            std::fflush(stderr);
            lineOpen_ = true;
        } else {
            spdlog::info("step {}/{} loss {:.4f} lr {:.3g} {:.0f} img/s ETA {}", row.step, total_, row.value("loss"),
                         row.value("lr"), row.value("images_per_s"), etaBuf);
        }
    }
    void onCheckpoint(const std::string& path, int64_t step) override {
        closeLine();
        spdlog::debug("checkpoint {} (step {})", path, step);
    }
    void onStateChanged(TrainerState s, const std::string& detail) override {
        if (s == TrainerState::Running || s == TrainerState::Paused) return;
        closeLine();
    }
    void closeLine() {
        if (lineOpen_) std::fputc('\n', stderr);
        lineOpen_ = false;
    }

private:
    bool tty_;
    bool lineOpen_ = false;
    int64_t total_ = 0, start_ = 0;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace

int runTraining(RunSession& session, bool tty) {
    Trainer& trainer = session.trainer();
    const std::string& path = session.path();
    ProgressPrinter progress(tty);
    session.addObserver(&progress);
    // Ctrl-C, kill, a logout or a cluster's preemption: stop after the step with a checkpoint (the GUI does the same).
    StopSignalRoute route([&trainer](int) { trainer.requestStop(); });
    if (stopSignalReceived()) trainer.requestStop();  // while the data and the model were being prepared (main's route)
    TrainerState s;
    try {
        s = session.run();
    } catch (...) {
        progress.closeLine();
        throw;
    }
    if (s == TrainerState::Failed) {
        std::cerr << "error: " << trainer.failure() << "\n";
        return kExitFailure;
    }
    if (s == TrainerState::Stopped)
        spdlog::info("stopped at step {}; continue with: graftlab-cli resume {}", trainer.step(), path);
    else
        spdlog::info("finished {} steps; run directory {}", trainer.step(), path);
    return kExitOk;
}

// Data-parallel rank of this process when the environment describes one (RANK, WORLD_SIZE, MASTER_ADDR,

}  // namespace graftlab::cli
