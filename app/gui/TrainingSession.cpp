// Torch (through the core headers) comes before any Qt header: Qt's `slots` macro breaks ATen's ivalue_inl.h.
#include "data/Dataset.h"
#include "methods/Mae.h"
#include "probes/Reconstruction.h"
#include "train/RunSession.h"
#include "train/Trainer.h"
#include "base/util/Errors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "TrainingSession.h"

#include <QThread>

#include <atomic>
#include <mutex>

namespace graftlab {

struct TrainingSession::Impl {
    TrainingSession* q = nullptr;
    QThread* thread = nullptr;
    std::mutex mutex;
    Trainer* trainer = nullptr;  // valid while the worker runs, guarded by mutex
    std::atomic<bool> stopRequested{false};
    std::atomic<bool> paused{false};
    QString runDir;
    int probeEvery = 0;
};

namespace {

// Runs on the worker thread: turns trainer events into queued signals with plain values.
class Bridge : public TrainerObserver {
public:
    Bridge(TrainingSession* s, Trainer& t) : s_(s), trainer_(t) {}

    void onRunStarted(const RunInfo& i) override {
        emit s_->runStarted(QString::fromStdString(i.dataset), QString::fromStdString(i.datasetNote),
                            i.startStep, i.totalSteps, i.parameters, QString::fromStdString(i.device));
        stages_ = trainer_.recipe().effectiveStages();
        if (stages_.size() > 1) {
            int64_t start = 0;
            for (size_t k = 0; k < stages_.size(); ++k) {
                emit s_->stageStarted(int(k), QString::fromStdString(stages_[k].name), start);
                start += stages_[k].steps;
            }
        }
    }

    void onMetrics(const MetricsRow& row) override {
        MetricValues v;
        v.reserve(int(row.values.size()));
        for (const auto& [k, x] : row.values) v.append({QString::fromStdString(k), x});
        emit s_->metricsRow(row.step, row.epoch, row.stage, v);
    }

    void onStateChanged(TrainerState st, const std::string& detail) override {
        emit s_->stateChanged(st, QString::fromStdString(detail));
    }

    void onSnapshot(const Snapshot& snap) override { emit s_->snapshot(snap); }

private:
    TrainingSession* s_;
    Trainer& trainer_;
    std::vector<StageConfig> stages_;
};

}  // namespace

TrainingSession::TrainingSession(QObject* parent) : QObject(parent), d(new Impl) {
    d->q = this;
    qRegisterMetaType<graftlab::MetricValues>("graftlab::MetricValues");
    qRegisterMetaType<graftlab::Snapshot>("graftlab::Snapshot");
    qRegisterMetaType<graftlab::TrainerState>("graftlab::TrainerState");
}

TrainingSession::~TrainingSession() {
    stop();
    wait(-1);
}

void TrainingSession::setProbeEvery(int steps) { d->probeEvery = steps; }

bool TrainingSession::isRunning() const { return d->thread && d->thread->isRunning(); }

QString TrainingSession::runDir() const { return d->runDir; }

bool TrainingSession::wait(int ms) {
    if (!d->thread) return true;
    bool done = ms < 0 ? d->thread->wait() : d->thread->wait(QDeadlineTimer(ms));
    return done;
}

void TrainingSession::stop() {
    d->stopRequested = true;
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->trainer) d->trainer->requestStop();
}

void TrainingSession::setPaused(bool paused) {
    d->paused = paused;
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->trainer) d->trainer->setPaused(paused);
}

bool TrainingSession::start(const Recipe& recipe, const QString& runDir, const QString& resumeCheckpoint, QString* error) {
    if (isRunning()) {
        if (error) *error = tr("a run is already in progress");
        return false;
    }
    if (d->thread) {
        d->thread->wait();
        delete d->thread;
        d->thread = nullptr;
    }
    d->runDir = runDir;
    d->stopRequested = false;
    d->paused = false;
    std::string dirPath = runDir.toStdString();
    std::string resume = resumeCheckpoint.toStdString();

    Recipe runRecipe = recipe;
    if (d->probeEvery > 0) runRecipe.probes.every = d->probeEvery;
    d->thread = QThread::create([this, recipe = runRecipe, dirPath, resume] {
        TrainerState state = TrainerState::Failed;
        QString detail;
        try {
            // A new run, or the run continued from the checkpoint asked for (the session writes the directory).
            std::unique_ptr<RunSession> session = resume.empty() ? std::make_unique<RunSession>(recipe, dirPath, RunDirMode::Create)
                                                                 : std::make_unique<RunSession>(recipe, dirPath, resume, false);
            Trainer& trainer = session->trainer();
            Bridge bridge(this, trainer);
            session->addObserver(&bridge);
            {
                std::lock_guard<std::mutex> lock(d->mutex);
                d->trainer = &trainer;
                if (d->stopRequested) trainer.requestStop();
                if (d->paused) trainer.setPaused(true);
            }
            TrainerState s = TrainerState::Failed;
            try {
                s = trainer.run();
            } catch (...) {
                std::lock_guard<std::mutex> lock(d->mutex);
                d->trainer = nullptr;
                throw;
            }
            {
                std::lock_guard<std::mutex> lock(d->mutex);
                d->trainer = nullptr;
            }
            state = s;
            detail = QString::fromStdString(trainer.failure());
        } catch (const c10::Error& e) {
            detail = QString::fromStdString(e.what_without_backtrace());
        } catch (const std::exception& e) {
            detail = QString::fromStdString(e.what());
        }
        if (state == TrainerState::Failed) spdlog::error("training failed: {}", detail.toStdString());
        emit finished(state, detail);
    });
    d->thread->setObjectName("graftlab-trainer");
    d->thread->start();
    return true;
}

}  // namespace graftlab
