#pragma once
#include "TrainingSession.h"

#include <QElapsedTimer>
#include <QMainWindow>

class QAction;
class QLabel;
class QProgressBar;
class QTabWidget;

namespace graftlab {

class LogView;
class LossPlotView;
class ReconstructionView;
class RecipeForm;
class GradCosView;
class AttentionView;
class SimilarityView;

struct LaunchOptions {
    QString recipePath;
    QString outDir;          // run directory for the next Start; empty = <runs root>/<name>-<time>
    bool autostart = false;
    qint64 steps = -1;       // with --screenshot: stop after this many steps
    QString screenshot;      // render the window to this PNG after the run (or `steps`) and quit
    QString tab;             // tab to show first ("losses", "reconstructions", "gradient", "attention", "patch")
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const LaunchOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    bool loadRecipeFile(const QString& path);
    void openRun(const QString& dir);
    void startRun();
    RecipeForm* recipeForm() const { return form_; }
    TrainingSession* session() const { return session_; }
    LossPlotView* lossView() const { return lossView_; }
    ReconstructionView* reconstructionView() const { return reconView_; }
    GradCosView* gradCosView() const { return gradView_; }
    AttentionView* attentionView() const { return attnView_; }
    SimilarityView* similarityView() const { return simView_; }

protected:
    void closeEvent(QCloseEvent* e) override;

private:
    void buildActions();
    void buildMenus();
    void updateActions();
    void saveRecipeAs();
    void onMetrics(qint64 step, qint64 epoch, int stage, const MetricValues& values);
    void onFinished(const QString& state, const QString& detail);
    QString newRunDir() const;
    void takeScreenshotAndQuit();
    void onSnapshot(const Snapshot& s);
    void clearProbeViews();

    LaunchOptions options_;
    TrainingSession* session_;
    RecipeForm* form_;
    LossPlotView* lossView_;
    ReconstructionView* reconView_;
    GradCosView* gradView_;
    AttentionView* attnView_;
    SimilarityView* simView_;
    LogView* log_;
    QTabWidget* tabs_;
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
