#include "MainWindow.h"
#include "base/recipe/Presets.h"
#include "LogView.h"
#include "LossPlotView.h"
#include "PlotExport.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"
#include "GradCosView.h"
#include "ProbeImageViews.h"
#include "SnapshotImages.h"
#include "CompareView.h"
#include "RunTailer.h"
#include "RunOverlayView.h"
#include "EvalRunner.h"
#include "InspectWindow.h"
#include "base/export/Report.h"
#include "base/run/RunLayout.h"
#include "base/run/RunLock.h"
#include "train/Checkpoint.h"
#include "train/RunWriter.h"
#include "base/util/AtomicFile.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QFile>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QScreen>
#include <QSettings>
#include <QStatusBar>
#include <QStyle>
#include <QTabWidget>
#include <QTimer>
#include <QToolBar>

#include <algorithm>
#include <map>
#include <mutex>

namespace graftlab {

namespace {

// spdlog sink that hands each line to the log dock on the GUI thread.
class QtLogSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit QtLogSink(LogView* view) : view_(view) {}
    void detach() {
        std::lock_guard<std::mutex> lock(mutex_);
        view_ = nullptr;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (!view_) return;
        QString level = QString::fromLatin1(spdlog::level::to_string_view(msg.level).data());
        QString text = QString::fromUtf8(msg.payload.data(), int(msg.payload.size()));
        QMetaObject::invokeMethod(view_, "appendLine", Qt::QueuedConnection, Q_ARG(QString, level), Q_ARG(QString, text));
    }
    void flush_() override {}

private:
    LogView* view_;
};

// Each window's own sink (a test or a second window may create several; each removes exactly its own).
std::map<const QObject*, std::shared_ptr<QtLogSink>> g_sinks;

}  // namespace

MainWindow::MainWindow(const LaunchOptions& options, QWidget* parent) : QMainWindow(parent), options_(options) {
    setWindowTitle(tr("GraftLab — self-supervised ViT pretraining"));
    session_ = new TrainingSession(this);
    buildViews();
    tailer_ = new RunTailer(this);
    evalRunner_ = new EvalRunner(this);
    writerTimer_ = new QTimer(this);
    connect(writerTimer_, &QTimer::timeout, this, &MainWindow::checkWriter);

    buildDocks();
    buildStatusBar();
    auto sink = std::make_shared<QtLogSink>(log_);
    sink->set_level(spdlog::level::info);
    g_sinks[this] = sink;
    spdlog::default_logger()->sinks().push_back(sink);

    buildActions();
    buildMenus();
    connectTraining();
    connectFollowing();
    connectEvaluation();
    restoreWindow();
}

// The tabs: losses, reconstructions, gradient cosines, attention, patch similarity, evaluate & compare.
void MainWindow::buildViews() {
    tabs_ = new QTabWidget(this);
    lossView_ = new LossPlotView;
    reconView_ = new ReconstructionView;
    tabs_->addTab(lossView_, tr("Losses && schedule"));
    tabs_->addTab(reconView_, tr("Reconstructions"));
    gradView_ = new GradCosView;
    attnView_ = new AttentionView;
    simView_ = new SimilarityView;
    tabs_->addTab(gradView_, tr("Gradient cosines"));
    tabs_->addTab(attnView_, tr("Attention"));
    tabs_->addTab(simView_, tr("Patch similarity"));
    compareView_ = new CompareView;
    tabs_->addTab(compareView_, tr("Evaluate && compare"));
    overlayView_ = new RunOverlayView;
    tabs_->addTab(overlayView_, tr("Runs on one plot"));
    for (int i = 0; i < tabs_->count(); ++i) tabs_->setTabToolTip(i, tr("Alt+%1").arg(i + 1));
    setCentralWidget(tabs_);
}

// The recipe form on the left, the log below.
void MainWindow::buildDocks() {
    form_ = new RecipeForm;
    auto* recipeDock = new QDockWidget(tr("Recipe"), this);
    recipeDock->setObjectName("recipeDock");
    recipeDock->setWidget(form_);
    addDockWidget(Qt::LeftDockWidgetArea, recipeDock);

    log_ = new LogView;
    logDock_ = new QDockWidget(tr("Log"), this);
    logDock_->setObjectName("logDock");
    logDock_->setWidget(log_);
    addDockWidget(Qt::BottomDockWidgetArea, logDock_);

}

void MainWindow::buildStatusBar() {
    progress_ = new QProgressBar;
    progress_->setMinimumWidth(200);
    progress_->setFormat("step %v of %m");
    progress_->setVisible(false);
    statusLabel_ = new QLabel(tr("Ready. Edit the recipe, then Start (Ctrl+R)."));
    statusBar()->addWidget(statusLabel_, 1);
    statusBar()->addPermanentWidget(progress_);

}

// A run trained here: its start, rows, stages, snapshots, states and end.
void MainWindow::connectTraining() {
    connect(form_, &RecipeForm::validityChanged, this, [this] { updateActions(); });
    connect(session_, &TrainingSession::runStarted, this,
            [this](const QString& dataset, const QString& note, qint64 start, qint64 total, qint64 params,
                   const QString& device) {
                startStep_ = start;
                totalSteps_ = total;
                stageCount_ = int(form_->recipe().effectiveStages().size());
                progress_->setRange(0, int(total));
                progress_->setValue(int(start));
                progress_->setVisible(true);
                runClock_.start();
                statusLabel_->setText(tr("Training on %1 (%2), %3 M parameters…").arg(dataset, device).arg(params / 1e6, 0, 'f', 2));
                if (!note.isEmpty()) statusBar()->showMessage(note, 15000);
            });
    connect(session_, &TrainingSession::metricsRow, this, &MainWindow::onMetrics);
    connect(session_, &TrainingSession::stageStarted, lossView_,
            [this](int, const QString& name, qint64 step) { lossView_->markStage(step, name); });
    connect(session_, &TrainingSession::snapshot, this, &MainWindow::onSnapshot);
    connect(session_, &TrainingSession::stateChanged, this, [this](TrainerState state, const QString&) {
        pauseAct_->setChecked(state == TrainerState::Paused);
        if (state == TrainerState::Paused) statusLabel_->setText(tr("Paused at step %1.").arg(progress_->value()));
    });
    connect(session_, &TrainingSession::finished, this, &MainWindow::onFinished);

}

// A run followed on disk (opened, or written by another process).
void MainWindow::connectFollowing() {
    connect(tailer_, &RunTailer::metricsRow, this, [this](qint64 step, qint64, int, const MetricValues& values) {
        lossView_->addRow(step, values);
    });
    connect(tailer_, &RunTailer::snapshot, this, &MainWindow::onSnapshot);
    connect(tailer_, &RunTailer::restarted, this, [this] {
        lossView_->clear();
        clearProbeViews();
        markStages(form_->recipe());
        statusBar()->showMessage(tr("The run was resumed from a checkpoint: its history is read again."), 8000);
    });
    connect(tailer_, &RunTailer::warning, this, [](const QString& w) { spdlog::warn("{}", w.toStdString()); });

}

void MainWindow::connectEvaluation() {
    connect(compareView_, &CompareView::evaluateRequested, this, &MainWindow::evaluate);
    connect(evalRunner_, &EvalRunner::progress, this, [this](const QString& text, int done, int total) {
        compareView_->setBusy(!text.isEmpty(), text);
        compareView_->setProgress(done, total);
        if (!text.isEmpty()) statusLabel_->setText(text);
    });
    connect(compareView_, &CompareView::cancelRequested, evalRunner_, &EvalRunner::cancel);
    connect(evalRunner_, &EvalRunner::runEvaluated, compareView_, &CompareView::reload);
    connect(evalRunner_, &EvalRunner::finished, this, [this](bool ok, const QString& detail) {
        const bool cancelled = detail.startsWith(EvalRunner::cancelledPrefix());
        compareView_->setBusy(false, cancelled         ? tr("Evaluation %1").arg(detail)  // "cancelled after …", then where
                                     : !ok               ? tr("Evaluation ended with problems:\n%1").arg(detail)
                                     : detail.isEmpty() ? tr("Evaluation finished.")
                                                        : tr("Evaluation finished, with warnings:\n%1").arg(detail));
        statusLabel_->setText(cancelled          ? tr("Evaluation cancelled (see the Evaluate & compare tab).")
                              : !ok               ? tr("Evaluation ended with problems (see the Evaluate & compare tab).")
                              : detail.isEmpty() ? tr("Evaluation finished; results are in each run's checkpoints/eval.json.")
                                                 : tr("Evaluation finished with warnings (see the Evaluate & compare tab)."));
    });

}

// The saved geometry and docks (or a first-start size), the tab asked for, the last or default recipe, and what the
// command line asked to do first.
QSize MainWindow::firstStartSize(const QSize& available) {
    // 90 % of the screen, no larger than 1800 x 1100 (plots stretched wider say no more); at least 1280 x 800 where
    // the screen has room for it.
    QSize s(std::min(int(available.width() * 0.9), 1800), std::min(int(available.height() * 0.9), 1100));
    s = s.expandedTo(QSize(1280, 800)).boundedTo(available);
    return s;
}

void MainWindow::restoreWindow() {
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
    if (!settings.contains("window/geometry")) {  // the first start: most of the screen, centred
        const QRect avail = screen() ? screen()->availableGeometry() : QRect(0, 0, 1280, 800);
        const QSize size = firstStartSize(avail.size());
        setGeometry(QStyle::alignedRect(Qt::LeftToRight, Qt::AlignCenter, size, avail));
        resizeDocks({logDock_}, {140}, Qt::Vertical);
    }
    overlayView_->restoreRuns();
    for (const QString& dir : options_.overlayRuns)
        if (overlayView_->addRunsUnder(dir) == 0) spdlog::warn("--overlay {}: no run there (no recipe.json in it or its folders)", dir.toStdString());
    for (const QString& dir : options_.compareRuns) {
        QString err;
        if (!compareView_->addRun(dir, &err)) spdlog::warn("--compare {}: {}", dir.toStdString(), err.toStdString());
    }
    if (!options_.tab.isEmpty())
        for (int i = 0; i < tabs_->count(); ++i)
            if (tabs_->tabText(i).toLower().startsWith(options_.tab.toLower())) tabs_->setCurrentIndex(i);

    QString recipe = options_.recipePath;
    if (recipe.isEmpty()) recipe = settings.value("recipe/last").toString();
    if (recipe.isEmpty() || !QFileInfo::exists(recipe)) recipe = QString::fromStdString(findPreset("mae"));
    if (!recipe.isEmpty()) loadRecipeFile(recipe);
    updateActions();
    if (options_.autostart) QTimer::singleShot(0, this, &MainWindow::startRun);
    else if (!options_.screenshot.isEmpty()) QTimer::singleShot(800, this, &MainWindow::takeScreenshotAndQuit);
}

MainWindow::~MainWindow() {
    if (auto it = g_sinks.find(this); it != g_sinks.end()) {
        it->second->detach();
        auto& sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), it->second), sinks.end());
        g_sinks.erase(it);
    }
}

void MainWindow::buildActions() {
    auto* tb = addToolBar(tr("Run"));
    tb->setObjectName("runToolbar");
    tb->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    auto icon = [this](QStyle::StandardPixmap p) { return style()->standardIcon(p); };

    startAct_ = new QAction(icon(QStyle::SP_MediaPlay), tr("&Start"), this);
    startAct_->setShortcut(QKeySequence("Ctrl+R"));
    startAct_->setToolTip(tr("Train the recipe into a new run directory (Ctrl+R)"));
    connect(startAct_, &QAction::triggered, this, &MainWindow::startRun);

    pauseAct_ = new QAction(icon(QStyle::SP_MediaPause), tr("&Pause"), this);
    pauseAct_->setCheckable(true);
    pauseAct_->setShortcut(QKeySequence("Ctrl+P"));
    pauseAct_->setToolTip(tr("Pause after the current step; press again to resume (Ctrl+P)"));
    connect(pauseAct_, &QAction::toggled, this, [this](bool on) { session_->setPaused(on); });

    stopAct_ = new QAction(icon(QStyle::SP_MediaStop), tr("S&top"), this);
    stopAct_->setShortcut(QKeySequence("Ctrl+."));
    stopAct_->setToolTip(tr("Stop after the current step and write a checkpoint; `graftlab-cli resume DIR` continues (Ctrl+.)"));
    connect(stopAct_, &QAction::triggered, this, [this] {
        statusLabel_->setText(tr("Stopping after the current step…"));
        session_->stop();
    });

    openRecipeAct_ = new QAction(icon(QStyle::SP_DialogOpenButton), tr("&Open recipe…"), this);
    openRecipeAct_->setShortcut(QKeySequence::Open);
    connect(openRecipeAct_, &QAction::triggered, this, [this] {
        QString path = QFileDialog::getOpenFileName(this, tr("Open recipe"), QFileInfo(currentRecipePath_).absolutePath(),
                                                    tr("Recipes (*.json)"));
        if (!path.isEmpty()) loadRecipeFile(path);
    });
    saveRecipeAct_ = new QAction(icon(QStyle::SP_DialogSaveButton), tr("&Save recipe as…"), this);
    saveRecipeAct_->setShortcut(QKeySequence("Ctrl+Shift+S"));  // QKeySequence::SaveAs is empty on some platforms
    connect(saveRecipeAct_, &QAction::triggered, this, &MainWindow::saveRecipeAs);

    openRunAct_ = new QAction(tr("Open &run…"), this);
    openRunAct_->setShortcut(QKeySequence("Ctrl+Shift+O"));
    openRunAct_->setToolTip(tr("Show the metrics of a run directory, e.g. one trained with graftlab-cli"));
    connect(openRunAct_, &QAction::triggered, this, [this] {
        QString dir = QFileDialog::getExistingDirectory(this, tr("Open run directory"));
        if (!dir.isEmpty()) openRun(dir);
    });
    continueAct_ = new QAction(icon(QStyle::SP_MediaSeekForward), tr("&Continue run"), this);
    continueAct_->setShortcut(QKeySequence("Ctrl+Shift+R"));
    connect(continueAct_, &QAction::triggered, this, &MainWindow::continueRun);

    exportCsvAct_ = new QAction(tr("&Metrics as CSV…"), this);
    exportCsvAct_->setShortcut(QKeySequence("Ctrl+Shift+E"));
    connect(exportCsvAct_, &QAction::triggered, this, &MainWindow::exportMetricsCsv);
    exportGridAct_ = new QAction(tr("&Reconstruction grid as PNG…"), this);
    connect(exportGridAct_, &QAction::triggered, this, &MainWindow::exportReconstructionGrid);
    exportEncoderAct_ = new QAction(tr("&Encoder for PyTorch…"), this);
    connect(exportEncoderAct_, &QAction::triggered, this, &MainWindow::exportEncoder);
    exportReportAct_ = new QAction(tr("Run &report (HTML)…"), this);
    exportReportAct_->setShortcut(QKeySequence("Ctrl+Shift+H"));
    exportReportAct_->setToolTip(tr("One self-contained HTML page of the run: curves, recipe, evaluation, reconstructions, gradient cosines"));
    connect(exportReportAct_, &QAction::triggered, this, &MainWindow::exportReport);
    exportCkptAct_ = new QAction(tr("&Checkpoint copy…"), this);
    connect(exportCkptAct_, &QAction::triggered, this, &MainWindow::exportCheckpointCopy);

    quitAct_ = new QAction(tr("&Quit"), this);
    quitAct_->setShortcut(QKeySequence::Quit);
    connect(quitAct_, &QAction::triggered, this, &QWidget::close);

    tb->addAction(startAct_);
    tb->addAction(pauseAct_);
    tb->addAction(stopAct_);
    tb->addAction(continueAct_);
    tb->addSeparator();
    tb->addAction(openRecipeAct_);
    tb->addAction(saveRecipeAct_);
}

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(openRecipeAct_);
    auto* presets = file->addMenu(tr("&Presets"));
    for (const auto& [name, file] : listPresets()) {
        QString path = QString::fromStdString(file);
        presets->addAction(QString::fromStdString(name), this, [this, path] { loadRecipeFile(path); });
    }
    presets->setEnabled(!presets->isEmpty());
    file->addAction(saveRecipeAct_);
    file->addSeparator();
    file->addAction(openRunAct_);
    auto* openModelAct = file->addAction(tr("Open &model…"), this, [this] { openModel(QString()); });
    openModelAct->setShortcut(QKeySequence("Ctrl+M"));
    openModelAct->setToolTip(tr("Look inside a model on your own images: a checkpoint of MAE, MoCo v3, Layer Grafted, DINO or timm\n"
                                "(imported without running any of its code), or one GraftLab trained"));
    recentMenu_ = file->addMenu(tr("Recent &runs"));
    rebuildRecentMenu();
    auto* exportMenu = file->addMenu(tr("&Export"));
    auto* exportPlot = exportMenu->addAction(tr("&Loss plot…"));
    exportPlot->setToolTip(tr("Every plot also exports from its right-click menu"));
    connect(exportPlot, &QAction::triggered, this, [this] {
        QString path = QFileDialog::getSaveFileName(this, tr("Export loss plot"), "losses.png", tr("PNG (*.png);;PDF (*.pdf);;SVG (*.svg)"));
        if (path.isEmpty()) return;
        QString err = graftlab::exportPlot(lossView_->plot(), path);
        if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
    });
    exportMenu->addAction(exportGridAct_);
    exportMenu->addAction(exportCsvAct_);
    exportMenu->addAction(exportEncoderAct_);
    exportMenu->addAction(exportReportAct_);
    exportMenu->addAction(exportCkptAct_);
    exportMenu->addAction(saveRecipeAct_);
    file->addSeparator();
    file->addAction(quitAct_);
    auto* run = menuBar()->addMenu(tr("&Run"));
    run->addAction(startAct_);
    run->addAction(pauseAct_);
    run->addAction(stopAct_);
    run->addAction(continueAct_);
    auto* view = menuBar()->addMenu(tr("&View"));
    for (auto* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());
    view->addSeparator();
    for (int i = 0; i < tabs_->count(); ++i) {
        auto* a = view->addAction(tabs_->tabText(i) /* "&&" shows one & in a menu too */, this, [this, i] { tabs_->setCurrentIndex(i); });
        a->setShortcut(QKeySequence(Qt::ALT | Qt::Key(Qt::Key_1 + i)));
    }
    auto* help = menuBar()->addMenu(tr("&Help"));
    auto* guide = help->addAction(tr("GraftLab &guide"), this, [this] { showHelpText(tr("GraftLab guide"), guideMarkdown()); });
    guide->setShortcut(QKeySequence::HelpContents);
    auto* keys = help->addAction(tr("&Keyboard shortcuts"), this,
                                 [this] { showHelpText(tr("Keyboard shortcuts"), shortcutList(), QSize(460, 600)); });
    keys->setShortcut(QKeySequence("Ctrl+/"));
    help->addSeparator();
    help->addAction(tr("&About GraftLab"), this, [this] {
        QMessageBox::about(this, tr("About GraftLab"),
                           tr("<b>GraftLab %1</b><p>Self-supervised pretraining of Vision Transformers, and what it does "
                              "inside them: MAE (He et al., CVPR 2022), MoCo v3 (Chen et al., ICCV 2021), their MTL "
                              "combination, MIM→CL / CL→MIM grafting and Layer Grafted Pretraining (Jia et al., ICLR 2023), "
                              "and ConMIM (Yi et al., ICLR 2023).</p>")
                               .arg(QApplication::applicationVersion()));
    });
}

QString MainWindow::guideMarkdown() {
    // The README's GUI section, compiled in (app/CMakeLists.txt: the "guide" resource), so the guide is the one the
    // README shows; its images live beside the README, not in the program, and are left out.
    QFile f(":/guide/README.md");
    if (!f.open(QIODevice::ReadOnly)) return tr("The guide is missing from this build.");
    const QString readme = QString::fromUtf8(f.readAll());
    QString out;
    bool inGui = false;
    for (const QString& line : readme.split('\n')) {
        if (line.startsWith("## ")) inGui = line == "## The GUI" || line == "## Open the models you already have" ||
                                           line == "## When something goes wrong";
        if (!inGui || line.trimmed().startsWith("![")) continue;
        out += line + '\n';
    }
    return out + tr("\n\nThe whole guide, the CLI and the findings: README.md and docs/ in GraftLab's sources.");
}

QString MainWindow::shortcutList() const {
    // Every menu action that has a shortcut, from the menus themselves (so the list is never out of date).
    QString out = tr("| Action | Shortcut |\n|---|---|\n");
    std::function<void(const QMenu*, const QString&)> walk = [&](const QMenu* menu, const QString& path) {
        for (QAction* a : menu->actions()) {
            QString name = a->text();
            name.replace("&&", "\x01").remove('&').replace("\x01", "&").remove(QString::fromUtf8("…"));
            if (a->menu()) walk(a->menu(), path + name + " > ");
            else if (!a->shortcut().isEmpty())
                out += "| " + path + name + " | " + a->shortcut().toString(QKeySequence::NativeText) + " |\n";
        }
    };
    for (QAction* top : menuBar()->actions())
        if (top->menu()) walk(top->menu(), top->text().remove('&') + " > ");
    return out;
}

void MainWindow::showHelpText(const QString& title, const QString& markdown, QSize size) {
    auto* dialog = new QDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->setWindowTitle(title);
    auto* text = new QTextBrowser;
    text->setOpenExternalLinks(true);
    text->setMarkdown(markdown);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::close);
    auto* layout = new QVBoxLayout(dialog);
    layout->addWidget(text);
    layout->addWidget(buttons);
    if (!size.isValid()) size = QSize(900, 700);
    dialog->resize(std::min(size.width(), width() - 80), std::min(size.height(), height() - 80));
    dialog->show();
}

void MainWindow::updateActions() {
    bool running = session_->isRunning();
    startAct_->setEnabled(!running && form_->isValid());
    startAct_->setToolTip(form_->isValid() ? tr("Train the recipe into a new run directory (Ctrl+R)")
                                           : tr("The recipe has problems:\n%1").arg(form_->issuesText()));
    pauseAct_->setEnabled(running);
    stopAct_->setEnabled(running);
    form_->setEnabled(!running);
    openRecipeAct_->setEnabled(!running);
    openRunAct_->setEnabled(!running);
    if (recentMenu_) recentMenu_->setEnabled(!running && !recentMenu_->isEmpty());
    continueAct_->setEnabled(!running && continuable_ && writer_.isEmpty());
    continueAct_->setToolTip(!writer_.isEmpty() ? tr("%1 is being written by %2: Continue when it ends").arg(currentRunDir_, writer_)
                             : continuable_     ? tr("Continue %1 from its newest checkpoint (Ctrl+Shift+R)").arg(currentRunDir_)
                                                : tr("Continues a stopped run from its newest checkpoint; the run shown has none to continue"));
    bool hasRun = !currentRunDir_.isEmpty();
    exportCsvAct_->setEnabled(hasRun);
    exportReportAct_->setEnabled(hasRun);
    exportEncoderAct_->setEnabled(hasRun && !running);
    exportCkptAct_->setEnabled(hasRun && !running);
    exportGridAct_->setEnabled(reconView_->snapshotCount() > 0);
    for (auto* a : {exportCsvAct_, exportEncoderAct_, exportCkptAct_, exportReportAct_})
        a->setToolTip(hasRun ? QString() : tr("Start a run or open a run directory first"));
    exportGridAct_->setToolTip(reconView_->snapshotCount() ? QString() : tr("No reconstruction shown yet"));
}

bool MainWindow::loadRecipeFile(const QString& path) {
    std::vector<RecipeIssue> issues;
    Recipe r;
    try {
        r = graftlab::loadRecipeFile(path.toStdString(), {}, issues);
    } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Cannot open recipe"), QString::fromStdString(e.what()));
        return false;
    }
    if (!issues.empty()) {
        QMessageBox::warning(this, tr("Recipe has errors"),
                             tr("%1:\n%2").arg(path, QString::fromStdString(formatIssues(issues))));
        if (issues.front().field.empty()) return false;  // malformed JSON: nothing to show
    }
    form_->setRecipe(r);
    currentRecipePath_ = path;
    QSettings().setValue("recipe/last", QFileInfo(path).absoluteFilePath());
    setWindowTitle(tr("GraftLab — %1").arg(QFileInfo(path).fileName()));
    spdlog::info("recipe {}", path.toStdString());
    return true;
}

void MainWindow::saveRecipeAs() {
    QString path = QFileDialog::getSaveFileName(this, tr("Save recipe"), currentRecipePath_, tr("Recipes (*.json)"));
    if (path.isEmpty()) return;
    try {
        writeFileAtomically(path.toStdString(), form_->recipe().toJson().dump(2) + "\n");
        currentRecipePath_ = path;
    } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Cannot save recipe"), QString::fromStdString(e.what()));
    }
}

QString MainWindow::newRunDir() const {
    if (!options_.outDir.isEmpty()) return options_.outDir;
    QString root = QSettings().value("runs/root", QDir::home().filePath("GraftLab/runs")).toString();
    QString name = QString::fromStdString(form_->recipe().name);
    return QDir(root).filePath(name + "-" + QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss"));
}

void MainWindow::startRun() {
    std::vector<RecipeIssue> issues;
    Recipe r = form_->recipe(&issues);
    if (!issues.empty()) {
        QMessageBox::warning(this, tr("Recipe has errors"), form_->issuesText());
        return;
    }
    tailer_->close();
    lossView_->clear();
    clearProbeViews();
    QString dir = newRunDir();
    // A short screenshot run (--steps N) probes a few times so that every view has a history to show.
    if (options_.steps > 0 && !options_.screenshot.isEmpty() && r.probes.every > 0)
        session_->setProbeEvery(int(std::max<qint64>(1, std::min<qint64>(r.probes.every, options_.steps / 4))));
    QString error;
    if (!session_->start(r, dir, QString(), &error)) {
        QMessageBox::warning(this, tr("Cannot start"), error);
        return;
    }
    statusLabel_->setText(tr("Loading data and building the model…"));
    spdlog::info("run directory {}", dir.toStdString());
    currentRunDir_ = dir;
    continuable_ = false;
    updateActions();
}

void MainWindow::continueRun() {
    QString dir = currentRunDir_;
    if (dir.isEmpty() || session_->isRunning()) return;
    QString ckpt = EvalRunner::latestCheckpoint(dir);
    if (ckpt.isEmpty()) {
        QMessageBox::warning(this, tr("Cannot continue"), tr("%1/checkpoints holds no readable checkpoint").arg(dir));
        return;
    }
    std::vector<RecipeIssue> issues;
    Recipe r;
    try {
        r = graftlab::loadRecipeFile(RunLayout(dir.toStdString()).recipe(), {}, issues);
    } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Cannot continue"), QString::fromStdString(e.what()));
        return;
    }
    if (!issues.empty()) {
        QMessageBox::warning(this, tr("Cannot continue"), QString::fromStdString(formatIssues(issues)));
        return;
    }
    // The history up to the checkpoint stays; what came after it is dropped by the trainer, as on disk.
    auto listed = listCheckpoints(RunLayout(dir.toStdString()).checkpoints());
    qint64 ckptStep = -1;
    for (const auto& [step, path] : listed)
        if (QString::fromStdString(path) == ckpt) ckptStep = step;
    tailer_->close();
    lossView_->clear();
    clearProbeViews();
    form_->setRecipe(r);
    markStages(r);
    for (const auto& row : RunWriter::readMetrics(RunLayout(dir.toStdString()).metrics())) {
        if (ckptStep >= 0 && row.step > ckptStep) continue;
        MetricValues v;
        for (const auto& [k, x] : row.values) v.append({QString::fromStdString(k), x});
        lossView_->addRow(row.step, v);
    }
    for (const auto& snap : SnapshotStore::load(RunLayout(dir.toStdString()).snapshots(), ""))
        if (ckptStep < 0 || snap.step <= ckptStep) onSnapshot(snap);
    QString error;
    if (!session_->start(r, dir, ckpt, &error)) {
        QMessageBox::warning(this, tr("Cannot continue"), error);
        return;
    }
    statusLabel_->setText(tr("Continuing %1 from %2…").arg(dir, QFileInfo(ckpt).fileName()));
    spdlog::info("continuing {} from {}", dir.toStdString(), ckpt.toStdString());
    continuable_ = false;
    updateActions();
}

QString MainWindow::statusText() const { return statusLabel_->text(); }

QString MainWindow::endedRunStatus(const QString& dir) {
    // What the process that wrote the run left: its newest readable checkpoint against the recipe's steps.
    int64_t total = -1, step = -1;
    try {
        std::vector<RecipeIssue> issues;
        total = graftlab::loadRecipeFile(RunLayout(dir.toStdString()).recipe(), {}, issues).totalSteps();
        const QString ckpt = EvalRunner::latestCheckpoint(dir);
        if (!ckpt.isEmpty()) step = readCheckpointMeta(ckpt.toStdString()).step;
    } catch (const std::exception&) {
    }
    if (step >= 0 && total > 0 && step >= total)
        return tr("The run in %1 finished: step %2 of %2. No process writes it any more.").arg(dir).arg(total);
    if (step >= 0 && total > 0)
        return tr("The run in %1 stopped at step %2 of %3 (its newest checkpoint); Continue run (Ctrl+Shift+R) goes on from there.")
            .arg(dir)
            .arg(step)
            .arg(total);
    return tr("The run in %1 has ended: no process writes it any more, and it has no readable checkpoint.").arg(dir);
}

void MainWindow::checkWriter() {
    QString holder;
    if (!currentRunDir_.isEmpty() && !session_->isRunning()) {
        holder = QString::fromStdString(RunLock::holder(currentRunDir_.toStdString()));
        if (holder.startsWith(QStringLiteral("PID %1:").arg(QCoreApplication::applicationPid()))) holder.clear();  // this window's run
    }
    const bool ended = !writer_.isEmpty() && holder.isEmpty();
    writer_ = holder;
    if (writer_.isEmpty()) writerTimer_->stop();
    else if (!writerTimer_->isActive()) writerTimer_->start(2000);
    if (ended) {
        statusLabel_->setText(endedRunStatus(currentRunDir_));
        setCurrentRunDir(currentRunDir_);  // continuable now?
        return;
    }
    updateActions();
}

void MainWindow::setCurrentRunDir(const QString& dir) {
    currentRunDir_ = dir;
    continuable_ = false;
    listCurrentRun();
    if (!dir.isEmpty()) {
        auto listed = listCheckpoints(RunLayout(dir.toStdString()).checkpoints());
        std::vector<RecipeIssue> issues;
        try {
            Recipe r = graftlab::loadRecipeFile(RunLayout(dir.toStdString()).recipe(), {}, issues);
            continuable_ = issues.empty() && !listed.empty() && listed.front().first < r.totalSteps();
        } catch (const std::exception&) {
            continuable_ = false;
        }
    }
    updateActions();
}

void MainWindow::markStages(const Recipe& r) {
    auto stages = r.effectiveStages();
    if (stages.size() <= 1) return;
    qint64 start = 0;
    for (const auto& st : stages) {
        lossView_->markStage(start, QString::fromStdString(st.name));
        start += st.steps;
    }
}

// The run shown joins the Runs tab's list, ticked, once it holds a run (a new run writes recipe.json as it starts).
void MainWindow::listCurrentRun() {
    if (currentRunDir_.isEmpty() || overlayListed_ == currentRunDir_) return;
    if (overlayView_->addRun(currentRunDir_, true)) overlayListed_ = currentRunDir_;
}

void MainWindow::addRecentRun(const QString& dir) {
    QSettings settings;
    QStringList runs = settings.value("runs/recent").toStringList();
    QString abs = QDir(dir).absolutePath();
    runs.removeAll(abs);
    runs.prepend(abs);
    while (runs.size() > 10) runs.removeLast();
    settings.setValue("runs/recent", runs);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    if (!recentMenu_) return;
    recentMenu_->clear();
    int n = 0;
    for (const auto& d : QSettings().value("runs/recent").toStringList()) {
        if (!RunLayout(d.toStdString()).holdsRun()) continue;
        auto* a = recentMenu_->addAction(QStringLiteral("&%1 %2").arg(++n % 10).arg(d), this, [this, d] { openRun(d); });
        a->setToolTip(d);
    }
    recentMenu_->setEnabled(!recentMenu_->isEmpty() && !session_->isRunning());
}

void MainWindow::exportMetricsCsv() {
    if (currentRunDir_.isEmpty()) return;
    QString path = QFileDialog::getSaveFileName(this, tr("Export metrics"), QDir(currentRunDir_).filePath("metrics.csv"), tr("CSV (*.csv)"));
    if (path.isEmpty()) return;
    QString err = RunTailer::exportMetricsCsv(currentRunDir_, path);
    if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
    else statusBar()->showMessage(tr("Metrics written to %1").arg(path), 8000);
}

void MainWindow::exportReconstructionGrid() {
    QString path = QFileDialog::getSaveFileName(this, tr("Export reconstructions"), "reconstructions.png", tr("PNG (*.png)"));
    if (path.isEmpty()) return;
    QString err = reconView_->exportCurrent(path);
    if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
}

void MainWindow::exportEncoder() {
    QString ckpt = EvalRunner::latestCheckpoint(currentRunDir_);
    if (ckpt.isEmpty()) {
        QMessageBox::warning(this, tr("Export failed"), tr("%1/checkpoints holds no readable checkpoint").arg(currentRunDir_));
        return;
    }
    QString filter;
    QString path = QFileDialog::getSaveFileName(this, tr("Export encoder for PyTorch"), QDir(currentRunDir_).filePath("encoder.safetensors"),
                                                tr("safetensors, timm loads it (*.safetensors);;PyTorch tensors, torch.load (*.pt)"), &filter);
    if (path.isEmpty()) return;
    // The format follows the extension; a name typed without one takes the chosen filter's.
    if (!path.endsWith(".safetensors") && !path.endsWith(".pt")) path += filter.contains("*.pt") ? ".pt" : ".safetensors";
    QApplication::setOverrideCursor(Qt::WaitCursor);
    QString summary, err = EvalRunner::exportEncoder(ckpt, path, &summary);
    QApplication::restoreOverrideCursor();
    if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
    else {
        spdlog::info("{}", summary.toStdString());
        statusBar()->showMessage(summary, 10000);
    }
}

void MainWindow::exportReport() {
    QString path = QFileDialog::getSaveFileName(this, tr("Export run report"), QString::fromStdString(RunLayout(currentRunDir_.toStdString()).report()),
                                                tr("HTML (*.html)"));
    if (path.isEmpty()) return;
    QString err = writeReport(currentRunDir_, path);
    if (!err.isEmpty()) QMessageBox::warning(this, tr("Run report"), err);
    else statusBar()->showMessage(tr("Report written to %1 (one file: open it in a browser, mail or attach it)").arg(path), 10000);
}

QString MainWindow::writeReport(const QString& runDir, const QString& path) {
    try {
        ReportSummary sum = graftlab::writeRunReport(runDir.toStdString(), path.toStdString());
        if (sum.problems.empty()) return {};
        QString text = tr("%1 was written, but it is missing what could not be read:").arg(path);
        for (const auto& p : sum.problems) text += "\n  " + QString::fromStdString(p);
        return text;
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
}

void MainWindow::exportCheckpointCopy() {
    QString ckpt = EvalRunner::latestCheckpoint(currentRunDir_);
    if (ckpt.isEmpty()) {
        QMessageBox::warning(this, tr("Export failed"), tr("%1/checkpoints holds no readable checkpoint").arg(currentRunDir_));
        return;
    }
    QString path = QFileDialog::getSaveFileName(this, tr("Save a copy of the newest checkpoint"), QFileInfo(ckpt).fileName(),
                                                tr("GraftLab checkpoints (*.ckpt)"));
    if (path.isEmpty()) return;
    QFile::remove(path + ".part");
    if (!QFile::copy(ckpt, path + ".part") || (QFile::exists(path) && !QFile::remove(path)) || !QFile::rename(path + ".part", path)) {
        QFile::remove(path + ".part");
        QMessageBox::warning(this, tr("Export failed"), tr("%1: cannot be written").arg(path));
        return;
    }
    statusBar()->showMessage(tr("Checkpoint copied to %1 (graftlab-cli resume, eval and probe read it)").arg(path), 8000);
}

void MainWindow::evaluate(const QStringList& dirs, const QStringList& protocols, int finetuneSteps) {
    QString error;
    if (!evalRunner_->start(dirs, protocols, finetuneSteps, &error)) {
        QMessageBox::warning(this, tr("Cannot evaluate"), error);
        return;
    }
    compareView_->setBusy(true, tr("Evaluating…"));
}

void MainWindow::onMetrics(qint64 step, qint64 epoch, int stage, const MetricValues& values) {
    lossView_->addRow(step, values);
    listCurrentRun();
    progress_->setValue(int(step));
    double loss = 0, ips = 0;
    for (const auto& [k, v] : values) {
        if (k == "loss") loss = v;
        if (k == "images_per_s") ips = v;
    }
    double done = double(step - startStep_);
    double eta = done > 0 ? runClock_.elapsed() / 1000.0 / done * double(totalSteps_ - step) : 0;
    statusLabel_->setText(tr("%8step %1/%2 · epoch %3 · loss %4 · %5 img/s · ETA %6:%7")
                              .arg(step)
                              .arg(totalSteps_)
                              .arg(epoch)
                              .arg(loss, 0, 'f', 4)
                              .arg(ips, 0, 'f', 0)
                              .arg(int(eta) / 60, 2, 10, QChar('0'))
                              .arg(int(eta) % 60, 2, 10, QChar('0'))
                              .arg(stage > 0 || stageCount_ > 1 ? tr("stage %1 · ").arg(stage + 1) : QString()));
    if (options_.steps > 0 && step >= options_.steps) session_->stop();
}

void MainWindow::onFinished(TrainerState state, const QString& detail) {
    if (RunLayout(session_->runDir().toStdString()).holdsRun()) {
        addRecentRun(session_->runDir());
        if (state == TrainerState::Finished || state == TrainerState::Stopped) compareView_->addRun(session_->runDir());
    }
    setCurrentRunDir(session_->runDir());
    pauseAct_->setChecked(false);
    if (state == TrainerState::Failed) {
        statusLabel_->setText(tr("Training failed."));
        if (!closing_ && options_.screenshot.isEmpty())
            QMessageBox::critical(this, tr("Training failed"), detail);
    } else {
        statusLabel_->setText(state == TrainerState::Stopped && continuable_
                                  ? tr("Stopped at step %1; a checkpoint was written. Continue run (Ctrl+Shift+R) goes on. Run directory: %2")
                                        .arg(progress_->value())
                                        .arg(session_->runDir())
                                  : tr("Training %1 at step %2. Run directory: %3").arg(QString::fromLatin1(toString(state))).arg(progress_->value()).arg(session_->runDir()));
    }
    if (!options_.screenshot.isEmpty()) QTimer::singleShot(400, this, &MainWindow::takeScreenshotAndQuit);
}

InspectWindow* MainWindow::openModel(const QString& fileOrDir) {
    if (!inspect_) {
        inspect_ = new InspectWindow(this);
        inspect_->setWindowFlag(Qt::Window);
    }
    inspect_->show();
    inspect_->raise();
    if (!fileOrDir.isEmpty()) {
        inspect_->openModel(fileOrDir);
    } else {
        QString path = QFileDialog::getOpenFileName(this, tr("Open model"), QSettings().value("inspect/lastModelDir").toString(),
                                                    tr("Checkpoints (*.pth *.pt *.tar *.safetensors *.bin *.ckpt);;All files (*)"));
        if (!path.isEmpty()) {
            QSettings().setValue("inspect/lastModelDir", QFileInfo(path).absolutePath());
            inspect_->openModel(path);
        }
    }
    return inspect_;
}

void MainWindow::takeScreenshotAndQuit() {
    QPixmap shot = grab();
    bool ok = shot.save(options_.screenshot);
    if (!ok) spdlog::error("cannot write screenshot {}", options_.screenshot.toStdString());
    QApplication::exit(ok ? 0 : 1);
}

void MainWindow::onSnapshot(const Snapshot& s) {
    if (s.kind == "reconstruction") {
        if (!s.unavailable().empty()) {
            reconView_->setEmptyText(tr("Stage %1: %2").arg(s.stage + 1).arg(QString::fromStdString(s.unavailable())));
            return;
        }
        reconView_->addSnapshot(s);
        if (!exportGridAct_->isEnabled()) updateActions();
    } else if (s.kind == "gradcos") {
        gradView_->addSnapshot(s);
    } else if (s.kind == "attention") {
        attnView_->addSnapshot(s);
    } else if (s.kind == "similarity") {
        simView_->addSnapshot(s);
    }
}

void MainWindow::clearProbeViews() {
    reconView_->clear();
    gradView_->clear();
    attnView_->clear();
    simView_->clear();
}

void MainWindow::openRun(const QString& dir) {
    if (session_->isRunning()) {
        QMessageBox::information(this, tr("A run is in progress"), tr("Stop the run first; the views show it."));
        return;
    }
    if (!RunWriter::holdsRun(dir.toStdString())) {
        QMessageBox::warning(this, tr("Not a run directory"), tr("%1 holds no recipe.json").arg(dir));
        return;
    }
    tailer_->close();
    lossView_->clear();
    clearProbeViews();
    loadRecipeFile(QString::fromStdString(RunLayout(dir.toStdString()).recipe()));
    markStages(form_->recipe());
    QString error;
    if (!tailer_->open(dir, 1000, &error)) {
        QMessageBox::warning(this, tr("Not a run directory"), error);
        return;
    }
    addRecentRun(dir);
    setCurrentRunDir(dir);
    statusLabel_->setText(tr("Opened %1: %2 metrics rows, %3 probe snapshots; new rows and snapshots appear as the run writes them.")
                              .arg(dir)
                              .arg(tailer_->rowsRead())
                              .arg(tailer_->snapshotsRead()));
    writer_.clear();
    checkWriter();
    if (!writer_.isEmpty()) statusLabel_->setText(statusLabel_->text() + tr(" Written now by %1.").arg(writer_));
}

void MainWindow::closeEvent(QCloseEvent* e) {
    tailer_->close();
    if (evalRunner_->isRunning()) {
        statusLabel_->setText(tr("Cancelling the evaluation…"));
        evalRunner_->cancel();
        evalRunner_->wait(-1);
    }
    if (session_->isRunning()) {
        closing_ = true;
        statusLabel_->setText(tr("Stopping the run and writing a checkpoint…"));
        session_->stop();
        session_->wait(-1);
    }
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
    e->accept();
}

}  // namespace graftlab
