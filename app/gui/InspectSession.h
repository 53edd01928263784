#pragma once
// The model behind File > Open model… and the Inspect window: opens a checkpoint (a GraftLab run, an imported model,
// or a file another project published, imported on the way: import/ImportModel.h) and runs the probes on the user's
// own images, on one worker thread (the GUI thread never waits on it). Torch-free header; results are plain
// Snapshots, the same the training-time probes produce, so the same views show them.
#include "RunTailer.h"  // Q_DECLARE_METATYPE(graftlab::Snapshot)
#include "base/probes/Snapshot.h"

#include <QObject>
#include <QStringList>
#include <QVector>

#include <memory>

namespace graftlab {

struct InspectModelInfo {
    QString checkpoint;   // the GraftLab checkpoint in use
    QString modelDir;     // its directory (an imported model's, or a run's)
    QStringList summary;  // what was found, one line each (import's report, or the run's recipe)
    bool imported = false;
    bool hasDecoder = false, hasClHeads = false;
    int imageSize = 0, channels = 0, heads = 0, depth = 0;
};

class InspectSession : public QObject {
    Q_OBJECT
public:
    explicit InspectSession(QObject* parent = nullptr);
    ~InspectSession() override;

    // Where files of other projects are imported to (default ~/GraftLab/models); one folder a file, reused when the
    // same file (by SHA-256) was imported there before.
    void setModelsRoot(const QString& dir);
    QString modelsRoot() const;
    // A GraftLab checkpoint or run/model directory is opened as it is; any other file is imported first.
    void openModel(const QString& fileOrDir);
    // Probes on the images (PNG, JPEG, ...): reconstruction (mask ratio, seed), attention, patch similarity, gradient
    // cosines. The newest request wins: one still waiting is replaced.
    void inspect(const QStringList& images, double maskRatio, quint64 maskSeed);
    bool busy() const;
    bool wait(int ms = -1);
    const InspectModelInfo& model() const;

signals:
    void working(const QString& what);
    void modelOpened(const graftlab::InspectModelInfo& info);
    void snapshotsReady(const QVector<graftlab::Snapshot>& snapshots);
    void failed(const QString& message);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

}  // namespace graftlab

Q_DECLARE_METATYPE(graftlab::InspectModelInfo)
