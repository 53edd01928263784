// Torch (through the core headers) comes before any Qt header: Qt's `slots` macro breaks ATen's ivalue_inl.h.
#include "data/Dataset.h"
#include "methods/Mae.h"
#include "probes/Reconstruction.h"
#include "train/RunDir.h"
#include "train/Trainer.h"
#include "util/Errors.h"

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
    int reconstructionEvery = 0;
};

namespace {

// Runs on the worker thread: turns trainer events into queued signals with plain values.
class Bridge : public TrainerObserver {
public:
    Bridge(TrainingSession* s, Trainer& t, int every) : s_(s), trainer_(t), every_(every) {}

    void prepareProbes() {
        Dataset test = loadDataset(trainer_.recipe().data, Split::Test, uint64_t(trainer_.recipe().seed));
        auto gen = at::detail::createCPUGenerator(0);
        auto idx = torch::randperm(test.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).slice(0, 0, 6);
        probeImages_ = test.images.index_select(0, idx).to(torch::kFloat32).div(255.f);
    }

    void onRunStarted(const RunInfo& i) override {
        emit s_->runStarted(QString(), QString::fromStdString(i.dataset), QString::fromStdString(i.datasetNote),
                            i.startStep, i.totalSteps, i.parameters, QString::fromStdString(i.device));
        total_ = i.totalSteps;
        stages_ = trainer_.recipe().effectiveStages();
        if (stages_.size() > 1) {
            int64_t start = 0;
            for (size_t k = 0; k < stages_.size(); ++k) {
                emit s_->stageStarted(int(k), QString::fromStdString(stages_[k].name), start);
                start += stages_[k].steps;
            }
        }
        emitReconstruction(i.startStep);
    }

    void onMetrics(const MetricsRow& row) override {
        MetricValues v;
        v.reserve(int(row.values.size()));
        for (const auto& [k, x] : row.values) v.append({QString::fromStdString(k), x});
        emit s_->metricsRow(row.step, row.epoch, row.stage, v);
        if (row.step % every_ == 0 || row.step == total_) emitReconstruction(row.step);
    }

    void onCheckpoint(const std::string& path, int64_t step) override {
        emit s_->checkpointWritten(QString::fromStdString(path), step);
    }

    void onStateChanged(TrainerState st, const std::string& detail) override {
        emit s_->stateChanged(QString::fromLatin1(toString(st)), QString::fromStdString(detail));
    }

private:
    void emitReconstruction(int64_t step) {
        // Asked anew each time: a multi-stage run replaces the objective at every stage boundary.
        auto* mae = dynamic_cast<MaeImpl*>(&trainer_.objective());
        if (!mae || !probeImages_.defined() || step == lastRecon_) return;
        lastRecon_ = step;
        ReconstructionPanels p = reconstruct(*mae, probeImages_, 12345);
        int scale = std::max(1, 84 / int(probeImages_.size(-1)));
        torch::Tensor grid = panelsToGrid(p, scale).contiguous();
        QImage img(grid.data_ptr<uint8_t>(), int(grid.size(1)), int(grid.size(0)), int(grid.size(1)) * 3,
                   QImage::Format_RGB888);
        emit s_->reconstruction(step, img.copy(), p.loss, QString::fromStdString(p.pixelNote));
    }

    TrainingSession* s_;
    Trainer& trainer_;
    int every_;
    int64_t total_ = 0;
    int64_t lastRecon_ = -1;
    std::vector<StageConfig> stages_;
    torch::Tensor probeImages_;
};

}  // namespace

TrainingSession::TrainingSession(QObject* parent) : QObject(parent), d(new Impl) {
    d->q = this;
    qRegisterMetaType<graftlab::MetricValues>("graftlab::MetricValues");
}

TrainingSession::~TrainingSession() {
    stop();
    wait(-1);
}

void TrainingSession::setReconstructionEvery(int steps) { d->reconstructionEvery = steps; }

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
    int every = d->reconstructionEvery > 0 ? d->reconstructionEvery : recipe.train.logEvery * 5;
    std::string dirPath = runDir.toStdString();
    std::string resume = resumeCheckpoint.toStdString();

    d->thread = QThread::create([this, recipe, every, dirPath, resume] {
        QString state = "failed", detail;
        try {
            RunDir dir(dirPath, resume.empty() ? RunDirMode::Create : RunDirMode::Resume);
            TrainerOptions opts;
            opts.checkpointDir = dir.checkpointDir();
            Trainer trainer(recipe, opts);
            trainer.prepare();
            if (resume.empty()) dir.writeRecipe(recipe);
            else {
                trainer.resumeFrom(resume);
                dir.truncateMetricsAfter(trainer.step());
            }
            Bridge bridge(this, trainer, std::max(1, every));
            bridge.prepareProbes();
            trainer.addObserver(&dir);
            trainer.addObserver(&bridge);
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
            state = QString::fromLatin1(toString(s));
            detail = QString::fromStdString(trainer.failure());
        } catch (const c10::Error& e) {
            detail = QString::fromStdString(e.what_without_backtrace());
        } catch (const std::exception& e) {
            detail = QString::fromStdString(e.what());
        }
        if (state == "failed") spdlog::error("training failed: {}", detail.toStdString());
        emit finished(state, detail);
    });
    d->thread->setObjectName("graftlab-trainer");
    d->thread->start();
    return true;
}

}  // namespace graftlab
