#pragma once
#include "TrainingSession.h"

#include <QElapsedTimer>
#include <QMainWindow>

class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QTabWidget;
class QTimer;

namespace graftlab {

class LogView;
class LossPlotView;
class ReconstructionView;
class RecipeForm;
class GradCosView;
class AttentionView;
class SimilarityView;
class CompareView;
class RunOverlayView;
class RunTailer;
class EvalRunner;
class InspectWindow;

struct LaunchOptions {
    QString recipePath;
    QString outDir;          // run directory for the next Start; empty = <runs root>/<name>-<time>
    bool autostart = false;
    qint64 steps = -1;       // with --screenshot: stop after this many steps
    QString screenshot;      // render the window to this PNG after the run (or `steps`) and quit
    QString tab;             // tab to show first ("losses", "reconstructions", "gradient", "attention", "patch", "evaluate", "runs")
    QStringList overlayRuns; // runs (or folders of runs) to list in the Runs tab
    QStringList compareRuns; // runs (or folders of runs) to add to Evaluate & compare
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const LaunchOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    bool loadRecipeFile(const QString& path);
    // Shows a run directory in the views and follows it while it is being written (e.g. by graftlab-cli).
    void openRun(const QString& dir);
    void startRun();
    // File > Open model…: the Inspect window on a checkpoint (another project's file is imported first), or on
    // nothing yet when `fileOrDir` is empty (it then asks for a file).
    InspectWindow* openModel(const QString& fileOrDir);
    InspectWindow* inspectWindow() const { return inspect_; }
    // Continues the shown run (stopped or killed) from its newest checkpoint.
    void continueRun();
    QString currentRunDir() const { return currentRunDir_; }
    // Help: the README's GUI sections as markdown (compiled in), and every menu shortcut as a markdown table.
    static QString guideMarkdown();
    QString shortcutList() const;
    // The window's size at the first start on a screen with `available` room.
    static QSize firstStartSize(const QSize& available);
    // The status bar's line when another process stops writing the run in `dir`: finished, or stopped at a step.
    static QString endedRunStatus(const QString& dir);
    QString statusText() const;
    QAction* continueAction() const { return continueAct_; }
    RecipeForm* recipeForm() const { return form_; }
    TrainingSession* session() const { return session_; }
    LossPlotView* lossView() const { return lossView_; }
    ReconstructionView* reconstructionView() const { return reconView_; }
    GradCosView* gradCosView() const { return gradView_; }
    AttentionView* attentionView() const { return attnView_; }
    SimilarityView* similarityView() const { return simView_; }
    CompareView* compareView() const { return compareView_; }
    RunOverlayView* overlayView() const { return overlayView_; }
    RunTailer* tailer() const { return tailer_; }
    EvalRunner* evalRunner() const { return evalRunner_; }
    // Writes the HTML report of a run (File > Export > Run report); returns an error message or "".
    static QString writeReport(const QString& runDir, const QString& path);

protected:
    void closeEvent(QCloseEvent* e) override;

private:
    // The constructor's parts, in order.
    void buildViews();
    void buildDocks();
    void buildStatusBar();
    void buildActions();
    void buildMenus();
    void connectTraining();
    void connectFollowing();
    void connectEvaluation();
    void restoreWindow();
    void showHelpText(const QString& title, const QString& markdown, QSize size = {});
    void updateActions();
    void saveRecipeAs();
    void onMetrics(qint64 step, qint64 epoch, int stage, const MetricValues& values);
    void onFinished(TrainerState state, const QString& detail);
    QString newRunDir() const;
    void takeScreenshotAndQuit();
    void onSnapshot(const Snapshot& s);
    void clearProbeViews();
    void markStages(const Recipe& r);
    void setCurrentRunDir(const QString& dir);
    void addRecentRun(const QString& dir);
    void rebuildRecentMenu();
    void exportMetricsCsv();
    void exportEncoder();
    void exportCheckpointCopy();
    void exportReport();
    void exportReconstructionGrid();
    void evaluate(const QStringList& dirs, const QStringList& protocols, int finetuneSteps);

    LaunchOptions options_;
    TrainingSession* session_;
    RecipeForm* form_;
    LossPlotView* lossView_;
    ReconstructionView* reconView_;
    GradCosView* gradView_;
    AttentionView* attnView_;
    SimilarityView* simView_;
    CompareView* compareView_;
    RunOverlayView* overlayView_;
    QString overlayListed_;  // the current run, once listed in the Runs tab
    void listCurrentRun();
    RunTailer* tailer_;
    EvalRunner* evalRunner_;
    InspectWindow* inspect_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QAction *continueAct_ = nullptr, *exportCsvAct_ = nullptr, *exportEncoderAct_ = nullptr, *exportCkptAct_ = nullptr, *exportReportAct_ = nullptr,
            *exportGridAct_ = nullptr;
    QString currentRunDir_;
    bool continuable_ = false;
    // Another process writing the run shown ("PID 123: graftlab-cli train ..."; empty when none): Continue waits for
    // it, and the status says when it ends (checked every 2 s while it writes).
    QString writer_;
    QTimer* writerTimer_ = nullptr;
    void checkWriter();
    LogView* log_;
    QTabWidget* tabs_;
    QDockWidget* logDock_ = nullptr;
    QProgressBar* progress_;
    QLabel* statusLabel_;
    QAction *startAct_, *pauseAct_, *stopAct_, *openRecipeAct_, *saveRecipeAct_, *openRunAct_, *quitAct_;
    qint64 totalSteps_ = 0, startStep_ = 0;
    int stageCount_ = 1;
    QElapsedTimer runClock_;
    QString currentRecipePath_;
    bool closing_ = false;
};

}  // namespace graftlab
