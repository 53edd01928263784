#pragma once
// Runs the evaluation protocols on the newest checkpoint of run directories, on a worker QThread (the GUI
// thread never waits on it). Torch-free header. Results are merged into each run's checkpoints/eval.json,
// exactly as `graftlab-cli eval` does, one protocol at a time; Cancel takes effect at once (see cancel()).
#include <QObject>
#include <QStringList>

#include <memory>

namespace graftlab {

class EvalRunner : public QObject {
    Q_OBJECT
public:
    explicit EvalRunner(QObject* parent = nullptr);
    ~EvalRunner() override;

    bool start(const QStringList& runDirs, const QStringList& protocols, int finetuneSteps, QString* error);
    // At once: before the next protocol, a fine-tuning at its next step with its state kept beside the checkpoint
    // (fineTuneStatePathBeside), so the same evaluation started again continues it.
    void cancel();
    // How `finished`'s detail starts when the evaluation was cancelled.
    static QString cancelledPrefix();
    bool isRunning() const;
    bool wait(int milliseconds);  // -1 = until it ends

    // The newest readable checkpoint of a run directory; empty when it has none.
    static QString latestCheckpoint(const QString& runDir);
    // Writes the encoder of a checkpoint for Python (torch.load reads it; timm parameter names). Returns an
    // error message naming the file at fault, empty on success; `summary` says what was written.
    static QString exportEncoder(const QString& checkpoint, const QString& outPath, QString* summary = nullptr);

signals:
    void progress(const QString& text, int done, int total);
    void runEvaluated(const QString& runDir);
    // ok = every protocol of every run finished; detail lists what failed or says it was cancelled, then the warnings
    // of results that cannot mean what they seem (one class, test images also in the training split).
    void finished(bool ok, const QString& detail);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

}  // namespace graftlab
