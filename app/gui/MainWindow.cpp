#include "MainWindow.h"
#include "LogView.h"
#include "LossPlotView.h"
#include "PlotExport.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"
#include "GradCosView.h"
#include "ProbeImageViews.h"
#include "SnapshotImages.h"
#include "train/RunDir.h"
#include "util/AtomicFile.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
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

std::shared_ptr<QtLogSink> g_sink;

QStringList recipeDirs() {
    QStringList dirs;
    if (qEnvironmentVariableIsSet("GRAFTLAB_RECIPE_DIR")) dirs << qEnvironmentVariable("GRAFTLAB_RECIPE_DIR");
    dirs << QDir::cleanPath(QCoreApplication::applicationDirPath() + "/" + GRAFTLAB_INSTALL_RECIPE_DIR)
         << GRAFTLAB_SOURCE_RECIPE_DIR;
    return dirs;
}

}  // namespace

MainWindow::MainWindow(const LaunchOptions& options, QWidget* parent) : QMainWindow(parent), options_(options) {
    setWindowTitle(tr("GraftLab — self-supervised ViT pretraining"));
    session_ = new TrainingSession(this);

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
    setCentralWidget(tabs_);

    form_ = new RecipeForm;
    auto* recipeDock = new QDockWidget(tr("Recipe"), this);
    recipeDock->setObjectName("recipeDock");
    recipeDock->setWidget(form_);
    addDockWidget(Qt::LeftDockWidgetArea, recipeDock);
    form_->setMinimumWidth(340);

    log_ = new LogView;
    auto* logDock = new QDockWidget(tr("Log"), this);
    logDock->setObjectName("logDock");
    logDock->setWidget(log_);
    addDockWidget(Qt::BottomDockWidgetArea, logDock);

    progress_ = new QProgressBar;
    progress_->setMinimumWidth(200);
    progress_->setFormat("step %v of %m");
    progress_->setVisible(false);
    statusLabel_ = new QLabel(tr("Ready. Edit the recipe, then Start (Ctrl+R)."));
    statusBar()->addWidget(statusLabel_, 1);
    statusBar()->addPermanentWidget(progress_);

    g_sink = std::make_shared<QtLogSink>(log_);
    g_sink->set_level(spdlog::level::info);
    spdlog::default_logger()->sinks().push_back(g_sink);

    buildActions();
    buildMenus();

    connect(form_, &RecipeForm::validityChanged, this, [this] { updateActions(); });
    connect(session_, &TrainingSession::runStarted, this,
            [this](const QString&, const QString& dataset, const QString& note, qint64 start, qint64 total, qint64 params,
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
    connect(session_, &TrainingSession::stateChanged, this, [this](const QString& state, const QString&) {
        pauseAct_->setChecked(state == "paused");
        if (state == "paused") statusLabel_->setText(tr("Paused at step %1.").arg(progress_->value()));
    });
    connect(session_, &TrainingSession::finished, this, &MainWindow::onFinished);

    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
    if (!settings.contains("window/geometry")) {
        resize(1280, 800);
        resizeDocks({logDock}, {140}, Qt::Vertical);
    }
    if (!options_.tab.isEmpty())
        for (int i = 0; i < tabs_->count(); ++i)
            if (tabs_->tabText(i).toLower().startsWith(options_.tab.toLower())) tabs_->setCurrentIndex(i);

    QString recipe = options_.recipePath;
    if (recipe.isEmpty()) recipe = settings.value("recipe/last").toString();
    if (recipe.isEmpty() || !QFileInfo::exists(recipe))
        for (const auto& d : recipeDirs())
            if (QFileInfo::exists(d + "/mae.json")) {
                recipe = d + "/mae.json";
                break;
            }
    if (!recipe.isEmpty()) loadRecipeFile(recipe);
    updateActions();
    if (options_.autostart) QTimer::singleShot(0, this, &MainWindow::startRun);
    else if (!options_.screenshot.isEmpty()) QTimer::singleShot(800, this, &MainWindow::takeScreenshotAndQuit);
}

MainWindow::~MainWindow() {
    if (g_sink) {
        g_sink->detach();
        auto& sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), g_sink), sinks.end());
        g_sink.reset();
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
    saveRecipeAct_->setShortcut(QKeySequence::SaveAs);
    connect(saveRecipeAct_, &QAction::triggered, this, &MainWindow::saveRecipeAs);

    openRunAct_ = new QAction(tr("Open &run…"), this);
    openRunAct_->setShortcut(QKeySequence("Ctrl+Shift+O"));
    openRunAct_->setToolTip(tr("Show the metrics of a run directory, e.g. one trained with graftlab-cli"));
    connect(openRunAct_, &QAction::triggered, this, [this] {
        QString dir = QFileDialog::getExistingDirectory(this, tr("Open run directory"));
        if (!dir.isEmpty()) openRun(dir);
    });
    quitAct_ = new QAction(tr("&Quit"), this);
    quitAct_->setShortcut(QKeySequence::Quit);
    connect(quitAct_, &QAction::triggered, this, &QWidget::close);

    tb->addAction(startAct_);
    tb->addAction(pauseAct_);
    tb->addAction(stopAct_);
    tb->addSeparator();
    tb->addAction(openRecipeAct_);
    tb->addAction(saveRecipeAct_);
}

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(openRecipeAct_);
    auto* presets = file->addMenu(tr("&Presets"));
    QSet<QString> seen;
    for (const auto& d : recipeDirs()) {
        for (const auto& fi : QDir(d).entryInfoList({"*.json"}, QDir::Files, QDir::Name)) {
            if (seen.contains(fi.baseName())) continue;
            seen.insert(fi.baseName());
            QString path = fi.absoluteFilePath();
            presets->addAction(fi.baseName(), this, [this, path] { loadRecipeFile(path); });
        }
    }
    presets->setEnabled(!presets->isEmpty());
    file->addAction(saveRecipeAct_);
    file->addSeparator();
    file->addAction(openRunAct_);
    auto* exportPlot = file->addAction(tr("Export &loss plot…"));
    connect(exportPlot, &QAction::triggered, this, [this] {
        QString path = QFileDialog::getSaveFileName(this, tr("Export loss plot"), "losses.png", tr("PNG (*.png);;PDF (*.pdf)"));
        if (path.isEmpty()) return;
        QString err = graftlab::exportPlot(lossView_->plot(), path);
        if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
    });
    file->addSeparator();
    file->addAction(quitAct_);
    auto* run = menuBar()->addMenu(tr("&Run"));
    run->addAction(startAct_);
    run->addAction(pauseAct_);
    run->addAction(stopAct_);
    auto* view = menuBar()->addMenu(tr("&View"));
    for (auto* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());
    auto* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About GraftLab"), this, [this] {
        QMessageBox::about(this, tr("About GraftLab"),
                           tr("<b>GraftLab %1</b><p>Self-supervised pretraining of Vision Transformers: MAE "
                              "(He et al., CVPR 2022) today; MoCo v3, layer-grafted pretraining (Jia et al., ICLR 2023) "
                              "and ConMIM (Yi et al., ICLR 2023) are on the way.</p>")
                               .arg(QApplication::applicationVersion()));
    });
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
    updateActions();
}

void MainWindow::onMetrics(qint64 step, qint64 epoch, int stage, const MetricValues& values) {
    lossView_->addRow(step, values);
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

void MainWindow::onFinished(const QString& state, const QString& detail) {
    updateActions();
    pauseAct_->setChecked(false);
    if (state == "failed") {
        statusLabel_->setText(tr("Training failed."));
        if (!closing_ && options_.screenshot.isEmpty())
            QMessageBox::critical(this, tr("Training failed"), detail);
    } else {
        statusLabel_->setText(tr("Training %1 at step %2. Run directory: %3").arg(state).arg(progress_->value()).arg(session_->runDir()));
    }
    if (!options_.screenshot.isEmpty()) QTimer::singleShot(400, this, &MainWindow::takeScreenshotAndQuit);
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
        const SnapshotArray* orig = s.find("original");
        int scale = orig ? std::max(1, 84 / int(orig->shape.at(2))) : 1;
        reconView_->addSnapshot(s.step, reconstructionGrid(s, scale), s.meta.value("loss", 0.0),
                                QString::fromStdString(s.meta.value("pixel_note", std::string())));
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
    if (!RunDir::holdsRun(dir.toStdString())) {
        QMessageBox::warning(this, tr("Not a run directory"), tr("%1 holds no recipe.json").arg(dir));
        return;
    }
    lossView_->clear();
    clearProbeViews();
    auto rows = RunDir::readMetrics((QDir(dir).filePath("metrics.jsonl")).toStdString());
    loadRecipeFile(QDir(dir).filePath("recipe.json"));
    auto stages = form_->recipe().effectiveStages();
    if (stages.size() > 1) {
        qint64 start = 0;
        for (const auto& st : stages) {
            lossView_->markStage(start, QString::fromStdString(st.name));
            start += st.steps;
        }
    }
    for (const auto& r : rows) {
        MetricValues v;
        for (const auto& [k, x] : r.values) v.append({QString::fromStdString(k), x});
        lossView_->addRow(r.step, v);
    }
    std::vector<std::string> warnings;
    auto snaps = SnapshotStore::load(QDir(dir).filePath("snapshots").toStdString(), "", &warnings);
    for (const auto& w : warnings) spdlog::warn("{}", w);
    for (const auto& s : snaps) onSnapshot(s);
    statusLabel_->setText(tr("Opened %1: %2 metrics rows, %3 probe snapshots").arg(dir).arg(rows.size()).arg(snaps.size()));
}

void MainWindow::closeEvent(QCloseEvent* e) {
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
