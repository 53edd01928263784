#pragma once
// Bridge between the GUI thread and a Trainer on a worker QThread. The header stays free of torch: the GUI
// sees plain Qt values (metrics rows, QImages made on the worker with copy()), delivered by queued signals.
#include "RunTailer.h"
#include "base/run/Observer.h"  // MetricValues, Snapshot as a Qt meta type
#include "base/recipe/Recipe.h"

#include <QImage>
#include <QObject>
#include <QPair>
#include <QString>
#include <QVector>

#include <memory>

namespace graftlab {

class TrainingSession : public QObject {
    Q_OBJECT
public:
    explicit TrainingSession(QObject* parent = nullptr);
    ~TrainingSession() override;

    // Starts `recipe` in a new run directory `runDir` (or continues it from `resumeCheckpoint`).
    // Returns false with `error` set when a run is already going or the directory cannot be used.
    bool start(const Recipe& recipe, const QString& runDir, const QString& resumeCheckpoint, QString* error);
    void setPaused(bool paused);
    void stop();  // asks the trainer to stop after the current step (it writes a checkpoint); returns at once
    bool isRunning() const;
    bool wait(int milliseconds);  // for shutdown: true when the worker has ended
    QString runDir() const;
    // Overrides the recipe's probes.every for the next start (0 = keep the recipe's).
    void setProbeEvery(int steps);

signals:
    void runStarted(const QString& dataset, const QString& datasetNote, qint64 startStep,
                    qint64 totalSteps, qint64 parameters, const QString& device);
    void metricsRow(qint64 step, qint64 epoch, int stage, const graftlab::MetricValues& values);
    // A new stage of a grafted run begins at `step`.
    void stageStarted(int stage, const QString& name, qint64 step);
    // A probe result (reconstruction, attention, similarity, gradcos), or why a probe is unavailable.
    void snapshot(const graftlab::Snapshot& s);
    void stateChanged(graftlab::TrainerState state, const QString& detail);
    // The worker ended: Finished, Stopped or Failed; detail says why for a failure.
    void finished(graftlab::TrainerState state, const QString& detail);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

}  // namespace graftlab

Q_DECLARE_METATYPE(graftlab::TrainerState)
