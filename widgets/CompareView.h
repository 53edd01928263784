#pragma once
// Evaluate and compare: runs side by side. Each run directory's checkpoints/eval.json (written by the GUI's
// Evaluate or by `graftlab-cli eval`) gives top-1 accuracy per protocol for its newest evaluated checkpoint;
// the table shows them and a grouped bar chart draws one bar per run for each protocol.
#include <QStringList>
#include <QWidget>

#include <optional>

class QCheckBox;
class QCustomPlot;
class QLabel;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QProgressBar;

namespace graftlab {

class CompareView : public QWidget {
    Q_OBJECT
public:
    static const QStringList& protocols();  // linear, fewshot, knn, finetune

    explicit CompareView(QWidget* parent = nullptr);

    // Adds a run directory (or re-reads it when already there); returns false with `error` when it holds no run.
    bool addRun(const QString& dir, QString* error = nullptr);
    void removeRun(const QString& dir);
    void reload(const QString& dir);
    QStringList runs() const;
    QStringList selectedRuns() const;  // all runs when none is selected
    int rowCount() const;
    // Top-1 accuracy in [0, 1] of a run for a protocol, when evaluated.
    std::optional<double> value(const QString& dir, const QString& protocol) const;
    QStringList checkedProtocols() const;
    int finetuneSteps() const;
    // While an evaluation runs: the Evaluate button is disabled and the text says what is being done.
    void setBusy(bool busy, const QString& text = QString());
    // While an evaluation runs: `done` of `total` evaluations (a run x protocol each) finished, in a progress bar
    // beside a Cancel button (cancelRequested; the runner stops after the evaluation in progress).
    void setProgress(int done, int total);
    QProgressBar* progressBar() const { return progress_; }
    QPushButton* cancelButton() const { return cancel_; }
    QCustomPlot* plot() const { return plot_; }
    QTableWidget* table() const { return table_; }
    // Runs named NAME-seedN (a table's or sweep's seeds) drawn as one bar per NAME: the mean, with whiskers of one
    // sample standard deviation (on by default; the table keeps every seed's row).
    QCheckBox* seedsTogetherBox() const { return seedsTogether_; }
    // Writes the table as CSV; returns an error message, empty on success.
    QString exportCsv(const QString& path) const;

signals:
    void evaluateRequested(const QStringList& runDirs, const QStringList& protocols, int finetuneSteps);
    void runsChanged();
    void cancelRequested();

private:
    struct Run {
        QString dir, name, method, dataset, checkpoint;
        qint64 step = -1;            // the evaluated checkpoint's step, else the newest checkpoint's (stepEvaluated false)
        bool stepEvaluated = false;
        QMap<QString, double> top1;
        QStringList warnings;  // eval.json's: results that cannot mean what they seem (one class, shared test images)
    };
    static Run readRun(const QString& dir);
    void refresh();

    QVector<Run> runs_;
    QTableWidget* table_;
    QCustomPlot* plot_;
    QLabel* status_;
    QProgressBar* progress_;
    QPushButton* cancel_;
    QPushButton *add_, *remove_, *evaluate_;
    QMap<QString, QCheckBox*> protocolBoxes_;
    QSpinBox* finetuneSteps_;
    QCheckBox* seedsTogether_;
};

}  // namespace graftlab
