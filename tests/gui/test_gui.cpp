// The main window with the real training core, offscreen: a short run end to end, Stop and Continue, closing
// during a run, opening and following a run directory, evaluation from the GUI, and the exports.
#include "MainWindow.h"
#include "InspectWindow.h"
#include "CompareView.h"
#include "EvalRunner.h"
#include "GradCosView.h"
#include "LossPlotView.h"
#include "PlotExport.h"
#include "ProbeImageViews.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"
#include "RunOverlayView.h"
#include "RunTailer.h"
#include "base/run/RunLock.h"
#include "eval/EvaluateCheckpoint.h"
#include "train/Checkpoint.h"
#include "TestUtil.h"
#include "base/util/ThreadEnv.h"

#include <QAction>
#include <QApplication>
#include <QMessageBox>
#include <QMimeData>
#include <QDropEvent>
#include <QUrl>
#include <QTimer>
#include <QPlainTextEdit>
#include <QStatusBar>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include "base/export/TensorBoard.h"

#include <QSettings>
#include <QTabWidget>
#include <QTextBrowser>
#include <QDialog>
#include <QScrollArea>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include "base/util/ThreadEnv.h"

#include <QtTest>
#include <QMenu>
#include <QProcess>
#include <QMenuBar>
#include <QRegularExpression>

using namespace graftlab;

namespace {
Recipe tinyRecipe(const std::string& method, int64_t steps) {
    std::vector<RecipeIssue> issues;
    Recipe r = loadRecipeFile(GRAFTLAB_SOURCE_DIR "/resources/recipes/" + method + ".json", {}, issues);
    r.name = "gui-" + method;
    graftlab::test::shrinkToTiny(r);  // synthetic 16 px images, dim 32, batch 16
    // the GPU check (tests/gpu/run_on_device.sh) runs these on CUDA
    const char* device = std::getenv("GRAFTLAB_TEST_DEVICE");
    r.device = device && *device ? device : "cpu";
    r.model.depth = 2;
    r.optim.warmupSteps = 2;
    r.train.steps = steps;
    r.train.logEvery = 2;
    r.train.checkpointEvery = 4;
    r.probes.every = 4;
    r.probes.samples = 2;
    return r;
}

// Waits for the session's finished signal and returns its state.
// TrainingSession::finished is emitted on the worker thread: the spy (a direct connection) records it at once, while
// the window's onFinished (queued, posted first) has not run yet. Deliver that posted event before returning, or a
// check of what onFinished does (its dialog, its status text) races the worker (seen under load, 2026-12-03).
// The window's menu titled `title` ("&View", "&Help"), or null.
QMenu* menuNamed(MainWindow& w, const QString& title) {
    for (QAction* a : w.menuBar()->actions())
        if (a->menu() && a->text() == title) return a->menu();
    return nullptr;
}

QString waitFinished(QSignalSpy& finished, int ms = 240000) {
    if (finished.isEmpty() && !finished.wait(ms)) return "timeout";
    QCoreApplication::sendPostedEvents();
    return QString::fromLatin1(toString(finished.last().at(0).value<TrainerState>()));
}
}  // namespace

class GuiTest : public QObject {
    Q_OBJECT
    QTemporaryDir root_;
    QString finishedRun_;

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        // settings persisted by an earlier (maybe crashed) run of these tests, e.g. its compare list, start empty
        QSettings().clear();
        QVERIFY(root_.isValid());
    }

    // The View menu names each tab as its tab does: "Losses & schedule", not "Losses _schedule" (a mnemonic made of
    // the '&' that the tab's "&&" stands for).
    void viewMenuNamesTheTabs() {
        LaunchOptions o;
        MainWindow w(o);
        QMenu* view = menuNamed(w, "&View");
        QVERIFY(view);
        QStringList shown;
        for (QAction* a : view->actions()) shown << a->text();
        QVERIFY2(shown.contains("Losses && schedule"), qPrintable(shown.join(" | ")));
        QVERIFY2(shown.contains("Evaluate && compare"), qPrintable(shown.join(" | ")));
        QVERIFY2(shown.contains("Runs on one plot"), qPrintable(shown.join(" | ")));
        for (const QString& t : shown) QVERIFY2(!QRegularExpression("[^&]&[^&]").match(t).hasMatch() || t.startsWith("&"), qPrintable(t));
    }

    // Help holds the README's GUI guide (compiled in, images left out) and every menu shortcut, read from the menus.
    void helpShowsTheGuideAndEveryShortcut() {
        LaunchOptions o;
        MainWindow w(o);
        QMenu* help = menuNamed(w, "&Help");
        QVERIFY(help);
        QStringList items;
        for (QAction* a : help->actions()) items << a->text() + "=" + a->shortcut().toString();
        QVERIFY2(items.contains("GraftLab &guide=F1") && items.contains("&Keyboard shortcuts=Ctrl+/"), qPrintable(items.join(" | ")));
        const QString guide = MainWindow::guideMarkdown();
        QVERIFY2(guide.startsWith("## The GUI") && guide.contains("**Recipe** dock") && guide.contains("## When something goes wrong"),
                 qPrintable(guide.left(300)));
        QVERIFY(!guide.contains("![") && !guide.contains("## The CLI"));
        const QString keys = w.shortcutList();
        for (const char* row : {"| Run > Start | Ctrl+R |", "| Run > Stop | Ctrl+. |", "| View > Losses & schedule | Alt+1 |",
                                "| Help > GraftLab guide | F1 |", "| File > Export > Metrics as CSV | Ctrl+Shift+E |",
                                "| File > Save recipe as | Ctrl+Shift+S |"})
            QVERIFY2(keys.contains(QString::fromUtf8(row)), qPrintable(keys));
        // Both open as rendered text (markdown, not its marks); GRAFTLAB_TEST_SHOTS=DIR keeps a picture of each.
        w.resize(1280, 800);
        w.show();
        for (QAction* a : help->actions()) {
            if (a->shortcut().isEmpty()) continue;
            a->trigger();
            QDialog* dialog = nullptr;
            for (auto* d : w.findChildren<QDialog*>())
                if (d->isVisible()) dialog = d;
            QVERIFY(dialog);
            auto* text = dialog->findChild<QTextBrowser*>();
            QVERIFY(text && text->toPlainText().size() > 200 && !text->toPlainText().contains("**") && !text->toPlainText().contains("|---"));
            if (qEnvironmentVariableIsSet("GRAFTLAB_TEST_SHOTS"))
                dialog->grab().save(qEnvironmentVariable("GRAFTLAB_TEST_SHOTS") + "/help-" + QString::number(a->shortcut()[0].key()) + ".png");
            dialog->close();
            QCoreApplication::processEvents();
        }
    }

    // The first start uses most of the screen, at least 1280 x 800 where there is room; the recipe dock never hides
    // its fields behind a horizontal scrollbar.
    void firstStartFitsTheScreenAndTheRecipeDockItsFields() {
        QCOMPARE(MainWindow::firstStartSize(QSize(1600, 1000)), QSize(1440, 900));
        QCOMPARE(MainWindow::firstStartSize(QSize(1366, 768)), QSize(1280, 768));
        QCOMPARE(MainWindow::firstStartSize(QSize(3840, 2160)), QSize(1800, 1100));
        LaunchOptions o;
        MainWindow w(o);
        w.resize(1280, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        for (auto* scroll : w.findChildren<QScrollArea*>()) {
            if (!scroll->isVisible() || scroll->horizontalScrollBarPolicy() != Qt::ScrollBarAlwaysOff) continue;
            QVERIFY2(scroll->widget()->minimumSizeHint().width() <= scroll->viewport()->width(),
                     qPrintable(QString("%1 > %2").arg(scroll->widget()->minimumSizeHint().width()).arg(scroll->viewport()->width())));
        }
        auto* form = w.findChild<RecipeForm*>();
        QVERIFY(form);
        // the whole window fits a 1280 x 800 screen: no page of the tabs asks for more width than is left
        QVERIFY2(w.minimumSizeHint().width() <= 1280 && w.minimumSize().width() <= 1280 && w.width() <= 1280,
                 qPrintable(QString("%1 %2 %3").arg(w.minimumSizeHint().width()).arg(w.minimumSize().width()).arg(w.width())));
        for (int i = 0; i < w.findChild<QTabWidget*>()->count(); ++i) {
            QWidget* page = w.findChild<QTabWidget*>()->widget(i);
            QVERIFY2(page->minimumSizeHint().width() <= 1280 - form->minimumWidth() - 40,
                     qPrintable(QString("tab %1: %2").arg(i).arg(page->minimumSizeHint().width())));
        }
        QVERIFY(form->width() >= form->minimumWidth());
        QScrollArea* formScroll = form->findChild<QScrollArea*>();
        QVERIFY(formScroll && formScroll->horizontalScrollBarPolicy() == Qt::ScrollBarAlwaysOff);
        QVERIFY2(formScroll->widget()->minimumSizeHint().width() <= formScroll->viewport()->width(),
                 qPrintable(QString("%1 > %2").arg(formScroll->widget()->minimumSizeHint().width()).arg(formScroll->viewport()->width())));
    }

    void shortRunFeedsEveryLiveView() {
        LaunchOptions o;
        o.outDir = root_.filePath("mtl");
        MainWindow w(o);
        w.show();
        w.recipeForm()->setRecipe(tinyRecipe("mtl", 12));
        QVERIFY2(w.recipeForm()->isValid(), qPrintable(w.recipeForm()->issuesText()));
        QSignalSpy rows(w.session(), &TrainingSession::metricsRow);
        QSignalSpy snaps(w.session(), &TrainingSession::snapshot);
        QSignalSpy started(w.session(), &TrainingSession::runStarted);
        QSignalSpy finished(w.session(), &TrainingSession::finished);
        w.startRun();
        QVERIFY(w.session()->isRunning());
        QVERIFY(!w.recipeForm()->isEnabled());  // the recipe cannot change under a running trainer
        QCOMPARE(waitFinished(finished), QString("finished"));
        QCOMPARE(started.count(), 1);
        // trained where the recipe asked, on the session's worker thread
        const char* asked = std::getenv("GRAFTLAB_TEST_DEVICE");
        const QString device = asked && *asked ? asked : "cpu";
        QVERIFY2(started.first().at(5).toString().startsWith(device), qPrintable(started.first().at(5).toString()));
        QCOMPARE(rows.count(), 6);  // every 2 steps of 12
        QCOMPARE(rows.last().at(0).toLongLong(), 12);
        QSet<QString> kinds;
        for (const auto& s : snaps) kinds.insert(QString::fromStdString(s.at(0).value<Snapshot>().kind));
        QCOMPARE(kinds, (QSet<QString>{"reconstruction", "gradcos", "attention", "similarity"}));
        QCoreApplication::processEvents();
        QCOMPARE(w.lossView()->pointCount() > 0, true);
        QVERIFY(w.reconstructionView()->snapshotCount() >= 3);  // steps 0, 4, 8, 12
        QVERIFY(w.gradCosView()->snapshotCount() >= 3);
        QVERIFY(w.attentionView()->snapshotCount() >= 3);
        QVERIFY(w.similarityView()->snapshotCount() >= 3);
        // a finished run is offered for comparison and is not continuable
        QCOMPARE(w.compareView()->runs(), QStringList{QDir(o.outDir).absolutePath()});
        QVERIFY(!w.continueAction()->isEnabled());
        finishedRun_ = o.outDir;

        // exports: every plot kind, the reconstruction grid, metrics, the encoder
        for (const char* suffix : {"png", "pdf", "svg"}) {
            QString path = root_.filePath(QString("losses.") + suffix);
            QCOMPARE(exportPlot(w.lossView()->plot(), path, 600, 400), QString());
            QVERIFY2(QFileInfo(path).size() > 1000, suffix);
        }
        QString grid = root_.filePath("grid.png");
        QCOMPARE(w.reconstructionView()->exportCurrent(grid), QString());
        QVERIFY(QFileInfo(grid).size() > 100);
        QString csv = root_.filePath("metrics.csv");
        QCOMPARE(RunTailer::exportMetricsCsv(w.currentRunDir(), csv), QString());
        QFile f(csv);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()).trimmed().split('\n').size(), 7);  // header + 6 rows
        QString ckpt = EvalRunner::latestCheckpoint(w.currentRunDir());
        QVERIFY2(ckpt.endsWith("step-00000012.ckpt"), qPrintable(ckpt));
        QString summary, enc = root_.filePath("encoder.pt");
        QCOMPARE(EvalRunner::exportEncoder(ckpt, enc, &summary), QString());
        QVERIFY(QFileInfo(enc).size() > 10000);
        QVERIFY(summary.contains("timm"));
        QVERIFY(EvalRunner::exportEncoder(csv, enc).contains("metrics.csv"));  // not a checkpoint: named
        QVERIFY(QFileInfo::exists(root_.filePath("encoder.json")));  // the .pt export's metadata beside it
        QString st = root_.filePath("encoder.safetensors");
        QCOMPARE(EvalRunner::exportEncoder(ckpt, st, &summary), QString());
        QVERIFY(summary.contains("safetensors"));
        QFile sf(st);
        QVERIFY(sf.open(QIODevice::ReadOnly));
        QVERIFY(sf.readAll().contains("\"img_size\""));
        // the run report, as File > Export > Run report writes it
        QString html = root_.filePath("report.html");
        QCOMPARE(MainWindow::writeReport(w.currentRunDir(), html), QString());
        QFile hf(html);
        QVERIFY(hf.open(QIODevice::ReadOnly));
        QString page = QString::fromUtf8(hf.readAll());
        QVERIFY(page.contains("<svg") && page.contains("data:image/png;base64,") && page.contains("by depth"));
        QVERIFY(MainWindow::writeReport(root_.filePath("nothing-here"), html).contains("no recipe.json"));
        // the run's TensorBoard log, written live by the training thread
        QDir tb(QDir(w.currentRunDir()).filePath("tensorboard"));
        QCOMPARE(tb.entryList({"events.out.tfevents.*"}, QDir::Files).size(), tensorBoardBuilt() ? 1 : 0);
    }

    // First run on a machine without the dataset-fashion-mnist package: the default dataset falls back to the
    // synthetic set, and the window says so (status bar and log), with the package to install.
    void missingFashionMnistFallsBackAndSaysSo() {
        LaunchOptions o;
        o.outDir = root_.filePath("fallback");
        MainWindow w(o);
        w.show();
        Recipe r = tinyRecipe("mae", 2);
        r.data.dataset = "fashion_mnist";
        r.data.root = root_.filePath("no-fashion-mnist-here").toStdString();
        r.data.fallbackToSynthetic = true;
        r.probes.every = 0;
        w.recipeForm()->setRecipe(r);
        QSignalSpy started(w.session(), &TrainingSession::runStarted);
        QSignalSpy finished(w.session(), &TrainingSession::finished);
        w.startRun();
        QVERIFY(started.wait(120000));
        QVERIFY(started.last().at(1).toString().contains("synthetic set"));
        QString bar = w.statusBar()->currentMessage();
        QVERIFY2(bar.contains("synthetic set") && bar.contains("dataset-fashion-mnist"), qPrintable(bar));
        QCOMPARE(waitFinished(finished), QString("finished"));
        QCoreApplication::processEvents();
        auto* log = w.findChild<QPlainTextEdit*>();
        QVERIFY(log);
        QVERIFY2(log->toPlainText().contains("using the built-in synthetic set"), qPrintable(log->toPlainText().left(2000)));
        // without the fallback the same recipe is an error naming the missing file (in a new run directory: the
        // first one holds a run now)
        LaunchOptions o2;
        o2.outDir = root_.filePath("no-fallback");
        MainWindow w2(o2);
        w2.show();
        r.data.fallbackToSynthetic = false;
        w2.recipeForm()->setRecipe(r);
        QSignalSpy finished2(w2.session(), &TrainingSession::finished);
        QString dialogText;  // the failure is shown in a modal dialog: read it and close it
        QTimer closer;
        connect(&closer, &QTimer::timeout, [&] {
            for (QWidget* top : QApplication::topLevelWidgets())
                if (auto* box = qobject_cast<QMessageBox*>(top); box && box->isVisible()) {
                    dialogText = box->text();
                    box->accept();
                }
        });
        closer.start(50);
        w2.startRun();
        QCOMPARE(waitFinished(finished2), QString("failed"));
        QVERIFY2(dialogText.contains("train-images-idx3-ubyte") && dialogText.contains("dataset-fashion-mnist"), qPrintable(dialogText));
    }

    void stopLeavesAResumableCheckpointAndContinueFinishes() {
        LaunchOptions o;
        o.outDir = root_.filePath("stopped");
        MainWindow w(o);
        Recipe r = tinyRecipe("mae", 400);
        r.probes.every = 0;
        w.recipeForm()->setRecipe(r);
        QSignalSpy rows(w.session(), &TrainingSession::metricsRow);
        QSignalSpy finished(w.session(), &TrainingSession::finished);
        w.startRun();
        QVERIFY(rows.wait(120000));
        w.session()->stop();
        QCOMPARE(waitFinished(finished), QString("stopped"));
        qint64 stoppedAt = rows.last().at(0).toLongLong();
        QVERIFY(stoppedAt < 400);
        QString ckpt = EvalRunner::latestCheckpoint(o.outDir);
        QVERIFY2(!ckpt.isEmpty(), "Stop wrote no checkpoint");
        QVERIFY(w.continueAction()->isEnabled());
        {
            // another process writes the run (as `graftlab-cli resume` would, holding its lock): Continue waits for
            // it, names it, and comes back when it ends
            const QString lock = QDir(o.outDir).filePath(".graftlab-writer");
            {
                QFile f(lock);
                QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
                f.write("PID 4242: graftlab-cli resume " + o.outDir.toUtf8() + "\n");
            }
            QProcess other;
            other.start("python3", {"-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\ntime.sleep(60)", lock});
            QVERIFY(other.waitForStarted());
            QTRY_VERIFY_WITH_TIMEOUT(!RunLock::holder(o.outDir.toStdString()).empty(), 5000);
            w.openRun(o.outDir);
            QVERIFY(!w.continueAction()->isEnabled());
            QVERIFY2(w.continueAction()->toolTip().contains("is being written by PID 4242: graftlab-cli resume"),
                     qPrintable(w.continueAction()->toolTip()));
            other.kill();
            other.waitForFinished();
            QTRY_VERIFY_WITH_TIMEOUT(w.continueAction()->isEnabled(), 6000);
            // the status bar says how the other process left the run
            const qint64 at = readCheckpointMeta(EvalRunner::latestCheckpoint(o.outDir).toStdString()).step;
            QVERIFY2(w.statusText().contains(QString("stopped at step %1 of 400 (its newest checkpoint); Continue run").arg(at)),
                     qPrintable(w.statusText()));
        }
        // continue to the end: the history before the checkpoint stays, the run ends at its last step
        finished.clear();
        rows.clear();
        w.continueRun();
        QVERIFY(w.session()->isRunning());
        QCOMPARE(waitFinished(finished), QString("finished"));
        QCOMPARE(rows.last().at(0).toLongLong(), 400);
        QVERIFY(rows.first().at(0).toLongLong() > 2);  // it went on from the checkpoint, not from step 0
        QVERIFY(!w.continueAction()->isEnabled());
    }

    void closingTheWindowDuringARunStopsIt() {
        LaunchOptions o;
        o.outDir = root_.filePath("closed");
        auto* w = new MainWindow(o);
        w->show();
        Recipe r = tinyRecipe("mocov3", 100000);
        w->recipeForm()->setRecipe(r);
        QSignalSpy rows(w->session(), &TrainingSession::metricsRow);
        QSignalSpy finished(w->session(), &TrainingSession::finished);
        w->startRun();
        QVERIFY(rows.wait(120000));
        QElapsedTimer clock;
        clock.start();
        QVERIFY(w->close());
        QVERIFY(!w->session()->isRunning());
        QCOMPARE(finished.count(), 1);
        QCOMPARE(finished.last().at(0).value<TrainerState>(), TrainerState::Stopped);
        QVERIFY2(clock.elapsed() < 60000, "closing took too long");
        QVERIFY(!EvalRunner::latestCheckpoint(o.outDir).isEmpty());
        delete w;
    }

    // --compare DIR: a run's folder (a table's) adds every run in it to Evaluate & compare.
    void compareOptionAddsAFoldersRuns() {
        QTemporaryDir table;
        for (const char* run : {"mae-seed0", "mae-seed1"}) {
            QDir(table.path()).mkpath(run);
            QFile f(QDir(table.filePath(run)).filePath("recipe.json"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("{\"name\": \"x\", \"method\": \"mae\"}");
        }
        QSettings().remove("compare/runs");  // what earlier windows listed is not restored
        LaunchOptions o;
        o.compareRuns = {table.path()};
        MainWindow w(o);
        QCOMPARE(w.compareView()->runs(), (QStringList{QDir(table.filePath("mae-seed0")).absolutePath(), QDir(table.filePath("mae-seed1")).absolutePath()}));
        for (const auto& d : w.compareView()->runs()) w.compareView()->removeRun(d);
    }

    void openingARunFillsTheViewsAndFollowsIt() {
        QVERIFY(!finishedRun_.isEmpty());
        MainWindow w(LaunchOptions{});
        w.openRun(finishedRun_);
        QCOMPARE(w.currentRunDir(), finishedRun_);
        QVERIFY(w.lossView()->pointCount() > 0);
        QVERIFY(w.reconstructionView()->snapshotCount() >= 3);
        QVERIFY(w.gradCosView()->snapshotCount() >= 3);
        QVERIFY(w.attentionView()->snapshotCount() >= 3);
        QVERIFY(w.similarityView()->snapshotCount() >= 3);
        QCOMPARE(w.recipeForm()->recipe().method, std::string("mtl"));
        QVERIFY(w.tailer()->isFollowing());
        // the run opened joins the Runs on one plot tab, ticked, its loss drawn
        QVERIFY(w.overlayView()->checkedRuns().contains(QDir(finishedRun_).absolutePath()));
        QVERIFY(w.overlayView()->series(finishedRun_));
        // a process writing the run (e.g. graftlab-cli on another machine) appends a row: it shows up
        int before = w.lossView()->pointCount();
        QFile m(QDir(finishedRun_).filePath("metrics.jsonl"));
        QVERIFY(m.open(QIODevice::Append));
        m.write("{\"step\":14,\"epoch\":0,\"stage\":0,\"loss\":0.5,\"lr\":0.001}\n");
        m.close();
        QTRY_VERIFY_WITH_TIMEOUT(w.lossView()->pointCount() > before, 5000);
    }

    void evaluateFromTheCompareTab() {
        QVERIFY(!finishedRun_.isEmpty());
        MainWindow w(LaunchOptions{});
        QVERIFY(w.compareView()->addRun(finishedRun_));
        QSignalSpy done(w.evalRunner(), &EvalRunner::finished);
        emit w.compareView()->evaluateRequested({finishedRun_}, {"knn"}, 10);
        QVERIFY(w.evalRunner()->isRunning());
        QVERIFY(done.wait(240000));
        QVERIFY2(done.last().at(0).toBool(), qPrintable(done.last().at(1).toString()));
        QCoreApplication::processEvents();
        auto knn = w.compareView()->value(finishedRun_, "knn");
        QVERIFY(knn.has_value());
        QVERIFY(*knn >= 0 && *knn <= 1);
        QVERIFY(QFileInfo::exists(QDir(finishedRun_).filePath("checkpoints/eval.json")));
        // Cancel during a long fine-tuning stops it at its next step (not after its million steps), keeps its state
        // beside the checkpoint for the next Evaluate, and says so.
        const QString ckpt = EvalRunner::latestCheckpoint(finishedRun_);
        EvalRequest asked;  // what the GUI asks for, as `graftlab-cli eval --protocol finetune --finetune-steps 1000000`
        asked.checkpoint = ckpt.toStdString();
        asked.finetuneSteps = 1000000;
        const QString state = QString::fromStdString(fineTuneStatePathBeside(asked));
        done.clear();
        emit w.compareView()->evaluateRequested({finishedRun_}, {"finetune"}, 1000000);
        QVERIFY(w.evalRunner()->isRunning());
        QTest::qWait(3000);
        w.evalRunner()->cancel();
        QVERIFY2(done.wait(60000), "Cancel did not stop the fine-tuning within a minute");
        QVERIFY(!done.last().at(0).toBool());
        const QString said = done.last().at(1).toString();
        QVERIFY2(said.contains("cancelled") && said.contains("fine-tuning stopped at step") && said.contains("its state is kept"), qPrintable(said));
        QVERIFY2(QFileInfo::exists(state), qPrintable(state));
        // Evaluate again with the same steps: it continues from there, and the progress line says so.
        QStringList progress;  // (received here, on this thread: the runner emits on its worker thread)
        connect(w.evalRunner(), &EvalRunner::progress, this, [&](const QString& text) { progress << text; }, Qt::QueuedConnection);
        done.clear();
        emit w.compareView()->evaluateRequested({finishedRun_}, {"finetune"}, 1000000);
        QTRY_VERIFY_WITH_TIMEOUT(!progress.filter("finetune (1 of 1)… continuing the fine-tuning from step ").isEmpty(), 60000);
        w.evalRunner()->cancel();
        QVERIFY(done.wait(60000));
        QVERIFY2(done.last().at(1).toString().contains("its state is kept"), qPrintable(done.last().at(1).toString()));
        QFile::remove(state);
        // a run without checkpoints is reported by name, not a crash
        QDir(root_.path()).mkpath("empty");
        QFile rec(root_.filePath("empty/recipe.json"));
        QVERIFY(rec.open(QIODevice::WriteOnly));
        rec.write("{}");
        rec.close();
        done.clear();
        QString err;
        QVERIFY(w.evalRunner()->start({root_.filePath("empty")}, {"knn"}, 10, &err));
        QVERIFY(done.wait(60000));
        QVERIFY(!done.last().at(0).toBool());
        QVERIFY(done.last().at(1).toString().contains("no readable checkpoint"));
    }

    // File > Open model…: a MAE checkpoint in the official (legacy) layout imported through the GUI, the user's own
    // images through every probe view, each view exported; a malicious pickle refused in the window.
    void inspectWindowOpensAPublishedCheckpointOnTheUsersImages() {
        if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) QSKIP("python3-torch is not installed");
        const QString fx = root_.filePath("fixtures");
        const QString cmd = QString("/usr/bin/python3 %1/tests/python/make_checkpoints.py %2 %3 > %2.log 2>&1")
                                .arg(GRAFTLAB_SOURCE_DIR, fx, root_.filePath("pwned"));
        QCOMPARE(std::system(cmd.toLocal8Bit().constData()), 0);
        MainWindow w(LaunchOptions{});
        bool hasMenu = false;
        for (QAction* a : w.findChildren<QAction*>()) hasMenu = hasMenu || (a->text().contains("Open &model") && a->shortcut() == QKeySequence("Ctrl+M"));
        QVERIFY(hasMenu);
        InspectWindow window;
        InspectWindow* inspect = &window;
        inspect->session()->setModelsRoot(root_.filePath("models"));
        inspect->openModel(fx + "/mae_visualize.pth");
        QSignalSpy done(inspect, &InspectWindow::inspected);
        QVERIFY(done.wait(60000));
        QVERIFY(done.last().at(0).toBool());
        QVERIFY2(inspect->session()->model().hasDecoder, qPrintable(inspect->statusText()));
        QVERIFY(inspect->session()->model().summary.join("\n").contains("decoder: yes"));
        QVERIFY(QFileInfo::exists(root_.filePath("models/mae_visualize_pth/import.json")));
        inspect->setMask(0.5, 3);
        inspect->addImages({fx + "/images/colour.png"});
        {  // the second image dropped on the window, as from a file manager
            QMimeData mime;
            mime.setUrls({QUrl::fromLocalFile(fx + "/images/grey.png")});
            QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
            static_cast<QObject*>(inspect)->event(&drop);  // straight to the window (notify() wants a drag session first)
        }
        QCOMPARE(inspect->images().size(), 2);
        done.clear();
        QVERIFY(done.wait(60000));
        QVERIFY2(done.last().at(0).toBool(), qPrintable(inspect->statusText()));
        QCOMPARE(inspect->reconstructionView()->snapshotCount(), 1);
        QCOMPARE(inspect->attentionView()->snapshotCount(), 1);
        QCOMPARE(inspect->similarityView()->snapshotCount(), 1);
        const Snapshot* rec = inspect->lastSnapshot("reconstruction");
        QVERIFY(rec && rec->unavailable().empty());
        QCOMPARE(rec->find("original")->shape[0], int64_t(2));
        QCOMPARE(rec->meta.value("mask_ratio", 0.0), 0.5);
        QCOMPARE(rec->meta["image_names"][1].get<std::string>(), std::string("grey.png"));
        // a MAE has no CL head: the gradient-cosine view says so
        const Snapshot* gc = inspect->lastSnapshot("gradcos");
        QVERIFY(gc && QString::fromStdString(gc->unavailable()).contains("CL head"));
        for (const char* kind : {"reconstruction", "attention", "similarity"})
            for (const char* ext : {"png", "svg", "npz"}) {
                QString path = root_.filePath(QString("inspect-%1.%2").arg(kind, ext));
                QString err = inspect->exportView(path, kind);
                QVERIFY2(err.isEmpty(), qPrintable(err));
                QVERIFY(QFileInfo(path).size() > 100);
            }
        QVERIFY(!inspect->exportView(root_.filePath("x.npz"), "gradcos").isEmpty());  // unavailable: said, not written

        done.clear();
        inspect->openModel(fx + "/evil_zip.pth");
        QVERIFY(done.wait(60000));
        QVERIFY(!done.last().at(0).toBool());
        QVERIFY2(inspect->statusText().contains("refuses the pickled global"), qPrintable(inspect->statusText()));
        QVERIFY(!QFileInfo::exists(root_.filePath("pwned")));
        for (QWidget* top : QApplication::topLevelWidgets())
            if (auto* box = qobject_cast<QMessageBox*>(top)) box->close();
    }
};

// QTEST_MAIN, after the thread settings the programs run with (core/util/ThreadEnv.h)
int main(int argc, char** argv) {
    graftlab::ensureThreadEnvironment(argv);
    QApplication app(argc, argv);
    app.setAttribute(Qt::AA_Use96Dpi, true);
    GuiTest tc;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&tc, argc, argv);
}
#include "test_gui.moc"
