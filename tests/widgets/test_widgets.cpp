// Offscreen tests of the Qt widgets: no torch here, only what the GUI shows.
#include "LossPlotView.h"
#include "PlotExport.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"
#include "GradCosView.h"
#include "ProbeImageViews.h"
#include "SnapshotImages.h"
#include "BlockLrChart.h"
#include "CompareView.h"
#include "RunTailer.h"
#include "RunOverlayView.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QDir>
#include <QLineEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QStandardPaths>
#include <QTableWidget>
#include <QPushButton>
#include <QComboBox>
#include <QtTest>
#include <QProgressBar>

using namespace graftlab;

class WidgetsTest : public QObject {
    Q_OBJECT
private:
    // With GRAFTLAB_SHOT_DIR set, widgets under test are also saved there as PNGs (to look at them).
    static void shot(QWidget* w, const char* name) {
        QString dir = qEnvironmentVariable("GRAFTLAB_SHOT_DIR");
        if (!dir.isEmpty()) w->grab().save(QDir(dir).filePath(QString::fromLatin1(name) + ".png"));
    }
    static void writeText(const QString& path, const QByteArray& text, bool append = false) {
        QFile f(path);
        QVERIFY(f.open(append ? QIODevice::Append : QIODevice::WriteOnly));
        f.write(text);
    }

    // A run directory as the trainer writes it: recipe.json, metrics.jsonl (loss falling, `ips` images/s) and,
    // with `groups`, gradient-cosine snapshots every 20 steps.
    static void writeRun(const QString& dir, const QByteArray& recipe, int rows, double ips, const QStringList& groups = {}) {
        QVERIFY(QDir().mkpath(dir));
        writeText(dir + "/recipe.json", recipe);
        QByteArray m;
        for (int i = 1; i <= rows; ++i)
            m += QStringLiteral("{\"step\":%1,\"epoch\":0,\"stage\":0,\"loss\":%2,\"lr\":0.001,\"images_per_s\":%3}\n")
                     .arg(10 * i).arg(2.0 / i).arg(ips).toUtf8();
        writeText(dir + "/metrics.jsonl", m);
        if (groups.isEmpty()) return;
        SnapshotStore store((dir + "/snapshots").toStdString(), 0);
        for (int step = 0; step <= 10 * rows; step += 20) {
            Snapshot s;
            s.kind = "gradcos";
            s.step = step;
            std::vector<std::string> names;
            for (const auto& g : groups) names.push_back(g.toStdString());
            s.meta["groups"] = names;
            SnapshotArray sum{"summary", {int64_t(groups.size()), 7}, {}};
            SnapshotArray cos{"cos", {int64_t(groups.size()), 2}, {}};
            for (int g = 0; g < groups.size(); ++g) {
                const float mean = 0.1f * float(g) - 0.001f * float(step);
                for (float v : {mean, mean - 0.05f, mean - 0.02f, mean, mean + 0.02f, mean + 0.05f, 0.f}) sum.values.push_back(v);
                cos.values.push_back(mean - 0.05f);
                cos.values.push_back(mean + 0.05f);
            }
            s.arrays = {sum, cos};
            store.append(s);
        }
    }

private slots:
    void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

    void blockLrChartEditsAndShowsFrozenBlocks() {
        BlockLrChart chart;
        chart.resize(420, 220);
        chart.show();
        chart.setMultipliers(0.1, {0.0, 0.0, 0.1, 1.0}, 1.0, 4);
        QCOMPARE(chart.barCount(), 6);
        QVERIFY(chart.isFrozen(1) && chart.isFrozen(2) && !chart.isFrozen(3));
        QCOMPARE(chart.barLabel(0), QString("embed"));
        QCOMPARE(chart.barLabel(5), QString("head"));
        // two frozen labels among the bar captions
        int frozenLabels = 0;
        for (int i = 0; i < chart.plot()->itemCount(); ++i)
            if (auto* t = qobject_cast<QCPItemText*>(chart.plot()->item(i)); t && t->text() == "frozen") ++frozenLabels;
        QCOMPARE(frozenLabels, 2);
        QSignalSpy edited(&chart, &BlockLrChart::edited);
        chart.setValue(1, 0.503);
        QCOMPARE(edited.count(), 1);
        QCOMPARE(chart.value(1), 0.5);  // snapped to 0.01
        chart.setValue(4, -3);
        QCOMPARE(chart.value(4), 0.0);  // clamped: frozen
        QCOMPARE(chart.blocks(), (std::vector<double>{0.5, 0.0, 0.1, 0.0}));
        // a click on a bar sets it from the mouse's height
        chart.plot()->replot();
        QTest::qWait(20);
        int x = int(chart.plot()->xAxis->coordToPixel(3));  // block 2
        int y = int(chart.plot()->yAxis->coordToPixel(0.75));
        QCOMPARE(chart.barAt(QPoint(x, y)), 3);
        QTest::mouseClick(chart.plot(), Qt::LeftButton, {}, QPoint(x, y));
        QVERIFY2(std::abs(chart.value(3) - 0.75) < 0.03, qPrintable(QString::number(chart.value(3))));
        chart.plot()->replot();
        shot(&chart, "block_lr_chart");
        // all ones: the recipe's "all 1" (empty)
        chart.setMultipliers(1, {}, 1, 3);
        QVERIFY(chart.blocks().empty());
        QCOMPARE(chart.barCount(), 5);
    }

    void stageEditorBuildsAGraftingPlan() {
        std::vector<RecipeIssue> issues;
        Recipe mae = loadRecipeFile(GRAFTLAB_SOURCE_DIR "/resources/recipes/mae.json", {}, issues);
        RecipeForm form;
        form.resize(380, 1400);
        form.setRecipe(mae);
        QCOMPARE(form.stageCount(), 0);
        form.appendStage();  // MAE becomes stage 1, stage 2 (MoCo v3) continues from it
        QCOMPARE(form.stageCount(), 2);
        QCOMPARE(form.selectedStage(), 1);
        Recipe r = form.recipe();
        QCOMPARE(r.stages[0].method, std::string("mae"));
        QCOMPARE(r.stages[1].method, std::string("mocov3"));
        QCOMPARE(r.stages[1].init, std::string("previous"));
        QVERIFY(form.isValid());
        QVERIFY(!form.editorFor("method")->isEnabled());
        // freeze the two lowest blocks of stage 2 in the chart: the recipe says so
        BlockLrChart* chart = form.blockLrChart();
        QCOMPARE(chart->barCount(), mae.model.depth + 2);
        chart->setValue(1, 0);
        chart->setValue(2, 0);
        r = form.recipe();
        QCOMPARE(int(r.stages[1].blockLr.size()), mae.model.depth);
        QCOMPARE(r.stages[1].blockLr[0], 0.0);
        QCOMPARE(r.stages[1].blockLr[2], 1.0);
        QVERIFY(r.stages[0].blockLr.empty());
        // the stage's fields: an invalid init is reported and disables nothing silently
        auto* init = form.findChild<QComboBox*>("stage.init");
        QVERIFY(init);
        form.selectStageForEditing(0);
        init->setCurrentText("previous");
        QVERIFY(!form.isValid());
        QVERIFY(form.issuesText().contains("stages[0].init"));
        init->setCurrentText("random");
        QVERIFY(form.isValid());
        // the depth changes: the bars follow
        qobject_cast<QSpinBox*>(form.editorFor("model.depth"))->setValue(mae.model.depth + 2);
        QCOMPARE(chart->barCount(), mae.model.depth + 4);
        QVERIFY2(form.isValid(), qPrintable(form.issuesText()));  // stage 2's multipliers grew with the depth
        QCOMPARE(int(form.recipe().stages[1].blockLr.size()), mae.model.depth + 2);
        QCOMPARE(form.recipe().stages[1].blockLr.back(), 1.0);
        shot(&form, "stage_editor");
        // removing a stage of two makes a single-stage recipe again
        form.selectStageForEditing(1);
        form.removeSelectedStage();
        QCOMPARE(form.stageCount(), 0);
        QVERIFY(form.editorFor("method")->isEnabled());
        QCOMPARE(form.recipe().method, std::string("mae"));
    }

    void stagedPresetChartShowsItsMultipliers() {
        std::vector<RecipeIssue> issues;
        Recipe lg = loadRecipeFile(GRAFTLAB_SOURCE_DIR "/resources/recipes/layer_grafted.json", {}, issues);
        RecipeForm form;
        form.setRecipe(lg);
        form.selectStageForEditing(1);
        BlockLrChart* chart = form.blockLrChart();
        QCOMPARE(chart->embed(), lg.stages[1].embedLr);
        QCOMPARE(chart->blocks(), lg.stages[1].blockLr);
        QCOMPARE(form.recipe().toJson().dump(), lg.toJson().dump());
    }

    void tailerFollowsARunBeingWritten() {
        QTemporaryDir dir;
        writeText(dir.filePath("recipe.json"), "{}");
        RunTailer tailer;
        QSignalSpy rows(&tailer, &RunTailer::metricsRow);
        QSignalSpy snaps(&tailer, &RunTailer::snapshot);
        QSignalSpy restarted(&tailer, &RunTailer::restarted);
        QVERIFY(tailer.open(dir.path(), 0));
        QCOMPARE(rows.count(), 0);
        writeText(dir.filePath("metrics.jsonl"), "{\"step\":10,\"epoch\":0,\"stage\":0,\"loss\":1.5}\n{\"step\":20,\"ep");
        QCOMPARE(tailer.poll(), 1);  // the torn line waits
        QCOMPARE(rows.count(), 1);
        QCOMPARE(rows[0][0].toLongLong(), 10);
        auto values = rows[0][3].value<MetricValues>();
        QCOMPARE(values.size(), 1);
        QCOMPARE(values[0].first, QString("loss"));
        writeText(dir.filePath("metrics.jsonl"), "och\":0,\"stage\":0,\"loss\":1.25}\n", true);
        QCOMPARE(tailer.poll(), 1);
        QCOMPARE(rows[1][0].toLongLong(), 20);
        QCOMPARE(rows[1][3].value<MetricValues>()[0].second, 1.25);
        // snapshots as the store writes them
        SnapshotStore store(QDir(dir.path()).filePath("snapshots").toStdString(), 10);
        Snapshot s;
        s.kind = "attention";
        s.step = 10;
        s.arrays.push_back({"x", {2}, {1.f, 2.f}});
        store.append(s);
        QCOMPARE(tailer.poll(), 1);
        QCOMPARE(snaps.count(), 1);
        QCOMPARE(snaps[0][0].value<Snapshot>().step, int64_t(10));
        QCOMPARE(tailer.poll(), 0);  // nothing new
        s.step = 20;
        store.append(s);
        QCOMPARE(tailer.poll(), 1);
        QCOMPARE(snaps.count(), 2);
        // a resumed run rewrites the metrics shorter: the history restarts
        writeText(dir.filePath("metrics.jsonl"), "{\"step\":10,\"loss\":1.5}\n");
        tailer.poll();
        QCOMPARE(restarted.count(), 1);
        QCOMPARE(rows.last()[0].toLongLong(), 10);
        // a damaged line is named by its line number and reason, the rows around it still arrive
        QSignalSpy warnings(&tailer, &RunTailer::warning);
        writeText(dir.filePath("metrics.jsonl"), "{\"step\":11,\"loss\":1.4}\n{\"step\":\"three\"}\n{\"step\":12,\"loss\":1.3}\n", true);
        QCOMPARE(tailer.poll(), 2);
        QCOMPARE(warnings.count(), 1);
        QVERIFY2(warnings[0][0].toString().endsWith("metrics.jsonl:3: \"step\" is not a whole number, row skipped"),
                 qPrintable(warnings[0][0].toString()));
        // following with a timer picks rows up without a call
        QVERIFY(tailer.open(dir.path(), 20));
        int before = rows.count();
        writeText(dir.filePath("metrics.jsonl"), "{\"step\":30,\"loss\":1.0}\n", true);
        QTRY_COMPARE_WITH_TIMEOUT(rows.count(), before + 1, 2000);  // open() read the first row at once
        QVERIFY(!tailer.open(dir.filePath("nowhere"), 0));
    }

    void metricsExportToCsv() {
        QTemporaryDir dir;
        writeText(dir.filePath("metrics.jsonl"), "{\"step\":10,\"epoch\":0,\"stage\":0,\"loss\":1.5,\"lr\":0.001}\n"
                                                 "{\"step\":20,\"epoch\":1,\"stage\":0,\"loss\":null,\"probe_share\":0.1}\n{\"torn");
        QString csv = dir.filePath("m.csv");
        QCOMPARE(RunTailer::exportMetricsCsv(dir.path(), csv), QString());
        QFile f(csv);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QStringList lines = QString::fromUtf8(f.readAll()).trimmed().split('\n');
        QCOMPARE(lines.size(), 3);
        QCOMPARE(lines[0], QString("step,epoch,stage,loss,lr,probe_share"));
        QCOMPARE(lines[1], QString("10,0,0,1.5,0.001,"));
        QCOMPARE(lines[2], QString("20,1,0,,,0.1"));
        QVERIFY(RunTailer::exportMetricsCsv(dir.filePath("none"), csv).contains("metrics.jsonl"));
    }

    void compareViewShowsRunsSideBySide() {
        QTemporaryDir root;
        auto makeRun = [&](const QString& name, const QByteArray& recipe, const QByteArray& eval) {
            QDir(root.path()).mkpath(name + "/checkpoints");
            writeText(root.filePath(name + "/recipe.json"), recipe);
            if (!eval.isEmpty()) writeText(root.filePath(name + "/checkpoints/eval.json"), eval);
            return root.filePath(name);
        };
        QString a = makeRun("mae-run", "{\"method\":\"mae\",\"data\":{\"dataset\":\"synthetic\"}}",
                            "{\"step-000000050.ckpt\":{\"step\":50,\"protocols\":{\"linear\":{\"top1\":0.5}}},"
                            "\"step-000000100.ckpt\":{\"step\":100,\"dataset\":\"synthetic\",\"protocols\":{\"linear\":{\"top1\":0.62},\"knn\":{\"top1\":0.58}}}}");
        QString b = makeRun("lg-run", "{\"method\":\"mae\",\"stages\":[{\"method\":\"mae\"},{\"method\":\"mocov3\"}]}",
                            "{\"step-000000100.ckpt\":{\"step\":100,\"protocols\":{\"linear\":{\"top1\":0.66},\"fewshot\":{\"top1\":0.4}}}}");
        QString c = makeRun("fresh", "{\"method\":\"mocov3\"}", "");
        writeText(root.filePath("fresh/checkpoints/step-00000300.ckpt"), "x");  // its newest checkpoint, not evaluated
        writeText(root.filePath("fresh/checkpoints/step-00000200.ckpt"), "x");
        // a hand-edited results file of another shape is listed as not evaluated, not a crash
        QString odd = makeRun("odd", "{\"method\":\"mae\",\"data\":{\"dataset\":3}}",
                              "{\"x.ckpt\":{\"step\":\"ten\",\"dataset\":5,\"protocols\":{\"knn\":{\"top1\":\"high\"}}},\"y\":[1,2]}");
        {
            CompareView oddView;
            QVERIFY(oddView.addRun(odd));
            QVERIFY(!oddView.value(odd, "knn"));
            oddView.removeRun(odd);
        }
        CompareView view;
        view.resize(900, 600);
        view.show();
        QVERIFY(view.addRun(a));
        QVERIFY(view.addRun(b));
        QVERIFY(view.addRun(c));
        QString err;
        QVERIFY(!view.addRun(root.filePath("nothing"), &err));
        QVERIFY(err.contains("recipe.json"));
        QCOMPARE(view.rowCount(), 3);
        QCOMPARE(*view.value(a, "linear"), 0.62);  // the newest evaluated checkpoint
        QCOMPARE(*view.value(b, "fewshot"), 0.4);
        QVERIFY(!view.value(c, "linear"));
        QCOMPARE(view.table()->item(1, 1)->text(), QString("mae→mocov3"));
        QCOMPARE(view.table()->item(0, 4)->text(), QString("62.0"));
        QCOMPARE(view.table()->item(2, 4)->text(), QString("—"));
        // while an evaluation runs: a progress bar and a Cancel button (there were none), gone when it ends
        QVERIFY(!view.progressBar()->isVisible() && !view.cancelButton()->isVisible());
        view.setBusy(true, "Evaluating mae-run: linear (3 of 8)…");
        view.setProgress(2, 8);
        QVERIFY(view.progressBar()->isVisible() && view.cancelButton()->isVisible());
        QCOMPARE(view.progressBar()->value(), 2);
        QCOMPARE(view.progressBar()->maximum(), 8);
        QSignalSpy cancelled(&view, &CompareView::cancelRequested);
        QTest::mouseClick(view.cancelButton(), Qt::LeftButton);
        QCOMPARE(cancelled.count(), 1);
        QVERIFY(!view.cancelButton()->isEnabled());  // once
        view.setBusy(false);
        QVERIFY(!view.progressBar()->isVisible() && !view.cancelButton()->isVisible() && view.cancelButton()->isEnabled());
        // the step column: the evaluated checkpoint's step, or the newest checkpoint's before evaluation (was empty)
        QCOMPARE(view.table()->item(0, 2)->text(), QString("100"));
        // (not evaluated yet: the number alone, so that the column stays narrow, in italics, and the tooltip says why)
        QCOMPARE(view.table()->item(2, 2)->text(), QString("300"));
        QVERIFY(view.table()->item(2, 2)->font().italic() && !view.table()->item(0, 2)->font().italic());
        QVERIFY(view.table()->item(2, 2)->toolTip().contains("not evaluated yet") && view.table()->item(0, 2)->toolTip().isEmpty());
        // one bar series per evaluated run, with a bar per evaluated protocol
        QCOMPARE(view.plot()->plottableCount(), 2);
        QCOMPARE(qobject_cast<QCPBars*>(view.plot()->plottable(0))->data()->size(), 2);
        // Evaluate asks for the checked protocols of all runs (none selected)
        QSignalSpy asked(&view, &CompareView::evaluateRequested);
        view.findChild<QCheckBox*>("protocol.finetune")->setChecked(false);
        for (auto* b2 : view.findChildren<QPushButton*>())
            if (b2->text() == "Evaluate") b2->click();
        QCOMPARE(asked.count(), 1);
        QCOMPARE(asked[0][0].toStringList().size(), 3);
        QCOMPARE(asked[0][1].toStringList(), (QStringList{"linear", "fewshot", "knn"}));
        // results arriving later are read again
        writeText(root.filePath("fresh/checkpoints/eval.json"), "{\"step-000000010.ckpt\":{\"step\":10,\"protocols\":{\"knn\":{\"top1\":0.3}}}}");
        view.reload(c);
        QCOMPARE(*view.value(c, "knn"), 0.3);
        QCOMPARE(view.plot()->plottableCount(), 3);
        QCOMPARE(view.table()->item(2, 0)->text(), QString("fresh"));
        // an evaluation's warning is shown on its row, where the number is read
        writeText(root.filePath("fresh/checkpoints/eval.json"), "{\"step-000000010.ckpt\":{\"step\":10,\"warnings\":[\"3 of the 8 test "
                                                                 "images are also in its training split\"],\"protocols\":{\"knn\":{\"top1\":0.3}}}}");
        view.reload(c);
        QCOMPARE(view.table()->item(2, 0)->text(), QString("⚠ fresh"));
        QVERIFY(view.table()->item(2, 0)->toolTip().contains("Warning: 3 of the 8 test images are also in its training split"));
        QString csv = root.filePath("cmp.csv");
        QCOMPARE(view.exportCsv(csv), QString());
        QVERIFY(QFileInfo(csv).size() > 50);
        for (const char* suffix : {"png", "pdf", "svg"}) {
            QString path = root.filePath(QString("cmp.") + suffix);
            QCOMPARE(exportPlot(view.plot(), path), QString());
            QVERIFY2(QFileInfo(path).size() > 500, suffix);
        }
        QFile svg(root.filePath("cmp.svg"));
        QVERIFY(svg.open(QIODevice::ReadOnly));
        QVERIFY(svg.readAll().contains("<svg"));
        view.plot()->replot();
        shot(&view, "compare_view");
        view.removeRun(b);
        QCOMPARE(view.rowCount(), 2);
        // the list persists
        CompareView again;
        QCOMPARE(again.rowCount(), 2);
    }
    void recipeFormRoundTripsThePreset() {
        std::vector<RecipeIssue> issues;
        Recipe preset = loadRecipeFile(GRAFTLAB_SOURCE_DIR "/resources/recipes/mae.json", {}, issues);
        QVERIFY(issues.empty());
        preset.optim.baseLr = 0.00123;
        preset.mae.normPixLoss = true;
        preset.data.root = "/some/where";
        RecipeForm form;
        form.setRecipe(preset);
        QVERIFY(form.isValid());
        QCOMPARE(form.recipe().toJson().dump(), preset.toJson().dump());
    }

    void stagedRecipeKeepsItsStages() {
        std::vector<RecipeIssue> issues;
        Recipe preset = loadRecipeFile(GRAFTLAB_SOURCE_DIR "/resources/recipes/layer_grafted.json", {}, issues);
        QVERIFY(issues.empty());
        QCOMPARE(int(preset.stages.size()), 2);
        RecipeForm form;
        form.setRecipe(preset);
        QCOMPARE(form.recipe().toJson().dump(), preset.toJson().dump());
        QVERIFY(!form.editorFor("method")->isEnabled());
    }

    void everyPresetRoundTrips() {
        for (const auto& fi : QDir(GRAFTLAB_SOURCE_DIR "/resources/recipes").entryInfoList({"*.json"})) {
            std::vector<RecipeIssue> issues;
            Recipe r = loadRecipeFile(fi.absoluteFilePath().toStdString(), {}, issues);
            QVERIFY2(issues.empty(), qPrintable(fi.fileName()));
            RecipeForm form;
            form.setRecipe(r);
            QVERIFY2(form.isValid(), qPrintable(fi.fileName() + ": " + form.issuesText()));
            QCOMPARE(form.recipe().toJson().dump(), r.toJson().dump());
        }
    }

    void everyFieldHasAnEditorWithTooltip() {
        RecipeForm form;
        for (const auto& f : recipeFields()) {
            QWidget* w = form.editorFor(QString::fromStdString(f.path));
            QVERIFY2(w, f.path.c_str());
            QVERIFY2(w->toolTip().contains(QString::fromStdString(f.help).toHtmlEscaped()), f.path.c_str());
        }
    }

    void invalidFieldIsReportedAndFixed() {
        RecipeForm form;
        QSignalSpy validity(&form, &RecipeForm::validityChanged);
        auto* patch = qobject_cast<QSpinBox*>(form.editorFor("model.patch_size"));
        QVERIFY(patch);
        patch->setValue(5);  // does not divide 28
        QVERIFY(!form.isValid());
        QCOMPARE(validity.count(), 1);
        QVERIFY(form.issuesText().contains("model.patch_size"));
        QVERIFY(patch->toolTip().contains("does not divide"));
        patch->setValue(7);
        QVERIFY(form.isValid());
        QVERIFY(!patch->toolTip().contains("does not divide"));
        auto* lr = qobject_cast<QLineEdit*>(form.editorFor("optim.base_lr"));
        lr->setText("-1");
        QVERIFY(!form.isValid());
        QVERIFY(form.issuesText().contains("optim.base_lr"));
    }

    // The legend has one order whatever order a run's keys arrive in.
    void lossLegendKeepsOneOrder() {
        LossPlotView a, b;
        a.addRow(10, {{"loss/mim", 1.0}, {"loss/cl", 2.0}, {"lr/x1", 1e-3}, {"lr/x0.1", 1e-4}, {"images_per_s", 10}, {"momentum", 0.99}});
        b.addRow(10, {{"momentum", 0.99}, {"lr/x0.1", 1e-4}, {"images_per_s", 10}, {"loss/cl", 2.0}, {"lr/x1", 1e-3}, {"loss/mim", 1.0}});
        QCOMPARE(a.legendOrder(), b.legendOrder());
        QCOMPARE(a.legendOrder(), (QStringList{"loss/cl", "loss/mim", "lr x1", "lr x0.1", "images/s", "momentum"}));
    }

    void lossPlotTakesRowsAndExports() {
        LossPlotView view;
        view.resize(600, 400);
        QCOMPARE(view.pointCount(), 0);
        for (int s = 1; s <= 5; ++s)
            view.addRow(s * 10, {{"loss", 1.0 / s}, {"loss/mae", 1.0 / s}, {"lr", 1e-3}, {"images_per_s", 100}});
        QCOMPARE(view.pointCount(), 5);
        QVERIFY(view.graph("loss/mae") && view.graph("loss/mae")->name() == "loss/mae");
        QCOMPARE(view.curveCount(), 3);  // loss/mae, lr, images/s; the total duplicates the one component
        QVERIFY(!view.graph("loss"));
        view.addRow(60, {{"loss", 1.0}, {"loss/mae", 0.4}, {"loss/moco", 0.6}, {"lr", 1e-3}});
        QCOMPARE(view.curveCount(), 5);  // MTL: total and both components
        // a staged run's lr per parameter group replaces the single lr; momentum and throughput go below
        view.addRow(70, {{"loss", 1.0}, {"loss/moco", 0.6}, {"lr", 1e-3}, {"lr/x0.1", 1e-4}, {"lr/x1", 1e-3}, {"momentum", 0.99}});
        QCOMPARE(view.curveCount(), 8);
        QCOMPARE(view.graph("lr/x0.1")->name(), QString("lr x0.1"));
        QCOMPARE(view.graph("momentum")->name(), QString("momentum"));
        QCPGraph* m = view.graph("momentum");
        QVERIFY(m->valueAxis() != view.plot()->yAxis && m->valueAxis() != view.plot()->yAxis2);
        QCOMPARE(view.graph("lr")->dataCount(), 6);  // lr: not repeated in the row that has groups
        // only losses get a raw curve behind the smoothed one
        QVERIFY(view.rawGraph("loss/mae") && view.rawGraph("loss/moco") && !view.rawGraph("lr") && !view.rawGraph("images_per_s"));
        int items = view.plot()->itemCount();
        view.markStage(30, "step 2");
        QCOMPARE(view.plot()->itemCount(), items + 2);
        QTemporaryDir dir;
        for (const char* name : {"plot.png", "plot.pdf"}) {
            QString path = dir.filePath(name);
            QCOMPARE(exportPlot(view.plot(), path, 600, 400), QString());
            QVERIFY(QFileInfo(path).size() > 1000);
        }
        QVERIFY(exportPlot(view.plot(), dir.filePath("plot.xyz")).contains("unknown image type"));
    }

    void lossPlotSmoothsLikeTensorBoard() {
        QSettings().remove("lossView/smoothing");
        LossPlotView view;
        view.resize(700, 450);
        view.show();
        QCOMPARE(view.smoothing(), 0.6);  // TensorBoard's default
        const QVector<double> raw = {1, 0, 1, 0};
        for (int i = 0; i < raw.size(); ++i) view.addRow(i + 1, {{"loss/mae", raw[i]}, {"lr", 1e-3}});
        // through the slider, as a user would: w = 0.5
        view.smoothingSlider()->setValue(50);
        QCOMPARE(view.smoothing(), 0.5);
        // TensorBoard's debiased EMA, worked out by hand: 1, 1/3, 5/7, 1/3
        const QVector<double> expected = {1.0, 1.0 / 3, 5.0 / 7, 1.0 / 3};
        QCPGraph* g = view.graph("loss/mae");
        QCPGraph* r = view.rawGraph("loss/mae");
        QCOMPARE(g->dataCount(), 4);
        for (int i = 0; i < 4; ++i) {
            QVERIFY2(std::abs((g->data()->constBegin() + i)->value - expected[i]) < 1e-12, qPrintable(QString::number(i)));
            QCOMPARE((r->data()->constBegin() + i)->value, raw[i]);  // the raw curve keeps the data
        }
        QVERIFY(r->visible());
        QCOMPARE(r->pen().color().alpha() < 100, true);  // faint
        QCOMPARE(LossPlotView::smoothed(raw, 0.5), expected);
        // rows that arrive later continue the same average: (0.3125 * 0.5 + 0.5 * 1) / (1 - 0.5^5)
        view.addRow(5, {{"loss/mae", 1.0}});
        QVERIFY(std::abs((g->data()->constEnd() - 1)->value - (0.15625 + 0.5) / (1 - 1.0 / 32)) < 1e-12);
        // 0 = raw: the smoothed curve is the data, the faint one is hidden
        view.smoothingSlider()->setValue(0);
        for (int i = 0; i < 4; ++i) QCOMPARE((g->data()->constBegin() + i)->value, raw[i]);
        QVERIFY(!r->visible());
        // the setting is remembered for the next window
        QCOMPARE(QSettings().value("lossView/smoothing").toDouble(), 0.0);
        // log scale for the loss axis
        QVERIFY(!view.logScale());
        view.logScaleBox()->setChecked(true);
        QVERIFY(view.logScale());
        view.logScaleBox()->setChecked(false);
        QVERIFY(!view.logScale());
        // hovering over step 3 reads out its step and values
        view.smoothingSlider()->setValue(50);
        QApplication::processEvents();
        QTest::qWait(60);
        int x = int(view.plot()->xAxis->coordToPixel(3.1));
        int y = int(view.plot()->yAxis->coordToPixel(0.5));
        QMouseEvent move(QEvent::MouseMove, QPointF(x, y), view.plot()->mapToGlobal(QPointF(x, y)), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
        QApplication::sendEvent(view.plot(), &move);
        QVERIFY2(view.readout().startsWith("step 3"), qPrintable(view.readout()));
        QVERIFY2(view.readout().contains("loss/mae 0.7143 (1)"), qPrintable(view.readout()));
        // ... and leaving the plot takes the read-out away (it stayed, squeezing the slider)
        QEvent leave(QEvent::Leave);
        QApplication::sendEvent(view.plot(), &leave);
        QVERIFY2(view.readout().isEmpty(), qPrintable(view.readout()));
        // a read-out longer than the row is cut: the slider keeps its width
        view.showReadoutAt(3);
        const int before = view.smoothingSlider()->width();
        view.addRow(6, {{"loss/mae", 0.5}, {"loss/a_very_long_name_for_a_loss_that_goes_on_and_on", 0.25}, {"loss/another_long_one", 0.1}});
        view.showReadoutAt(6);
        QApplication::processEvents();
        QVERIFY2(view.smoothingSlider()->width() >= std::min(before, 120), qPrintable(QString::number(view.smoothingSlider()->width())));
        QSettings().remove("lossView/smoothing");
    }

    // The learning rate of each parameter group is its own line style: x1 solid, x0.1 dashed (both were grey dashed).
    void lossPlotTellsTheLrGroupsApart() {
        LossPlotView view;
        view.addRow(10, {{"loss/moco", 1.0}, {"lr", 1e-3}, {"lr/x0.1", 1e-4}, {"lr/x1", 1e-3}});
        QCPGraph* slow = view.graph("lr/x0.1");
        QCPGraph* full = view.graph("lr/x1");
        QVERIFY(slow && full);
        QCOMPARE(full->pen().style(), Qt::SolidLine);
        QVERIFY(slow->pen().style() != Qt::SolidLine);
        QVERIFY(slow->pen().color() != full->pen().color());
        QCOMPARE(LossPlotView::lrPen("lr", 0).style(), Qt::SolidLine);  // a run without groups
        QVERIFY(LossPlotView::lrPen("lr/x0.1", 0).style() != LossPlotView::lrPen("lr/x0.01", 1).style());
    }

    // Add run… on a sweep's folder adds every run it lists.
    void compareViewAddsASweepsRuns() {
        QTemporaryDir dir;
        for (const char* run : {"a=1", "a=2"}) {
            QDir(dir.path()).mkpath(run);
            QFile f(QDir(dir.filePath(run)).filePath("recipe.json"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("{\"name\": \"x\", \"method\": \"mae\"}");
        }
        QFile index(dir.filePath("sweep.json"));
        QVERIFY(index.open(QIODevice::WriteOnly));
        index.write("{\"axes\": [{\"key\": \"a\", \"values\": [\"1\", \"2\", \"3\"]}], \"runs\": [\"a=1\", \"a=2\", \"a=3\"]}");
        index.close();
        CompareView view;
        for (const auto& d : view.runs()) view.removeRun(d);
        QString err;
        QVERIFY2(view.addRun(dir.path(), &err), qPrintable(err));
        QCOMPARE(view.runs().size(), 2);  // a=3 has not been trained yet: not a run
        for (const auto& d : view.runs()) view.removeRun(d);
        QVERIFY(!view.addRun(QDir(dir.path()).filePath("nothing"), &err));
    }

    // Add run… on a table's folder (no sweep.json: runs as its subfolders) adds every run in it.
    void compareViewAddsATablesRuns() {
        QTemporaryDir dir;
        for (const char* run : {"mae-seed0", "mae-seed1", "random_init-seed0"}) {
            QDir(dir.path()).mkpath(run);
            QFile f(QDir(dir.filePath(run)).filePath("recipe.json"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("{\"name\": \"x\", \"method\": \"mae\"}");
        }
        QDir(dir.path()).mkpath("not-a-run");
        CompareView view;
        for (const auto& d : view.runs()) view.removeRun(d);
        QString err;
        QVERIFY2(view.addRun(dir.path(), &err), qPrintable(err));
        QCOMPARE(view.runs().size(), 3);
        QVERIFY(view.runs().contains(QDir(dir.filePath("mae-seed1")).absolutePath()));
        for (const auto& d : view.runs()) view.removeRun(d);
        QTemporaryDir empty;
        QDir(empty.path()).mkpath("a/b");
        QVERIFY(!view.addRun(empty.path(), &err));
        QVERIFY2(err.contains("holds no run"), qPrintable(err));
    }

    // A table's seeds (NAME-seedN in one folder) drawn as one bar per NAME: the mean, whiskers of one sample sd; a
    // run of the same NAME in another folder stays apart, each named with its folder; unticked, a bar per run again.
    void compareViewDrawsSeedsAsOneBar() {
        QTemporaryDir tmp;
        const QDir root(tmp.path());
        auto run = [&](const QString& path, double knn) {
            root.mkpath(path + "/checkpoints");
            QFile f(root.filePath(path + "/recipe.json"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("{\"name\": \"x\", \"method\": \"mae\"}");
            f.close();
            QFile e(root.filePath(path + "/checkpoints/eval.json"));
            QVERIFY(e.open(QIODevice::WriteOnly));
            e.write(QString(R"({"step-000000010.ckpt":{"step":10,"protocols":{"knn":{"top1":%1}}}})").arg(knn).toUtf8());
        };
        run("t/mae-seed0", 0.70);
        run("t/mae-seed1", 0.74);
        run("t/mae-seed2", 0.72);
        run("t/mocov3-seed0", 0.60);
        run("other/mae-seed0", 0.50);
        CompareView view;
        for (const auto& d : view.runs()) view.removeRun(d);
        QVERIFY(view.seedsTogetherBox()->isChecked());
        QVERIFY(view.addRun(root.filePath("t")));
        QVERIFY(view.addRun(root.filePath("other/mae-seed0")));
        QCOMPARE(view.rowCount(), 5);  // the table keeps every seed
        auto bars = [&] {
            QMap<QString, QCPBars*> out;
            for (int i = 0; i < view.plot()->plottableCount(); ++i)
                if (auto* b = qobject_cast<QCPBars*>(view.plot()->plottable(i))) out.insert(b->name(), b);
            return out;
        };
        auto whiskers = [&] {
            QVector<QCPErrorBars*> out;
            for (int i = 0; i < view.plot()->plottableCount(); ++i)
                if (auto* w = qobject_cast<QCPErrorBars*>(view.plot()->plottable(i))) out << w;
            return out;
        };
        auto b = bars();
        QCOMPARE(b.keys(), (QStringList{"mocov3-seed0", "other/mae-seed0", "t/mae (3 seeds)"}));
        QCOMPARE(b["t/mae (3 seeds)"]->data()->size(), 1);
        QCOMPARE(b["t/mae (3 seeds)"]->data()->at(0)->key, 2.0);  // k-NN
        QVERIFY(std::abs(b["t/mae (3 seeds)"]->data()->at(0)->value - 72.0) < 1e-9);
        QVERIFY(std::abs(b["other/mae-seed0"]->data()->at(0)->value - 50.0) < 1e-9);
        const auto w = whiskers();
        QCOMPARE(w.size(), 1);
        QCOMPARE(w.front()->dataPlottable(), static_cast<QCPAbstractPlottable*>(b["t/mae (3 seeds)"]));
        QVERIFY(std::abs(w.front()->data()->at(0).errorPlus - 2.0) < 1e-9);  // sample sd of 70, 74, 72
        QVERIFY(std::abs(w.front()->data()->at(0).errorMinus - 2.0) < 1e-9);
        view.seedsTogetherBox()->setChecked(false);
        int barCount = 0;
        for (int i = 0; i < view.plot()->plottableCount(); ++i) barCount += qobject_cast<QCPBars*>(view.plot()->plottable(i)) ? 1 : 0;
        QCOMPARE(barCount, 5);  // a bar per run (two of them named mae-seed0)
        QCOMPARE(whiskers().size(), 0);
        view.seedsTogetherBox()->setChecked(true);
        // two folders' seeds of the same name: each bar named with its folder
        run("other/mae-seed1", 0.52);
        QVERIFY(view.addRun(root.filePath("other/mae-seed1")));
        QCOMPARE(bars().keys(), (QStringList{"mocov3-seed0", "other/mae (2 seeds)", "t/mae (3 seeds)"}));
        for (const auto& d : view.runs()) view.removeRun(d);
    }

    // A reconstruction snapshot of two 1 x 4 x 4 images in 2 x 2 patches, grey `level`; image i has patch i masked.
    static graftlab::Snapshot reconstructionSnapshot(qint64 step, float level, bool perImageLoss = true) {
        graftlab::Snapshot s;
        s.kind = "reconstruction";
        s.step = step;
        for (const char* n : {"original", "masked", "reconstruction", "pasted"})
            s.arrays.push_back({n, {2, 1, 4, 4}, std::vector<float>(32, level)});
        s.arrays.push_back({"mask", {2, 4}, {1, 0, 0, 0, 0, 1, 0, 0}});
        if (perImageLoss) s.arrays.push_back({"loss_per_image", {2}, {0.25f, 0.5f}});
        s.meta["loss"] = 0.375;
        s.meta["mask_ratio"] = 0.25;
        return s;
    }

    // Reconstructions a reader can see: tiles that grow with the view, a title per column, masked patches in a
    // colour no image holds, each image's loss; history kept, the export is the figure shown.
    void reconstructionViewKeepsHistory() {
        ReconstructionView view;
        view.resize(500, 500);
        view.show();
        QCOMPARE(view.exportCurrent("/tmp/none.png").isEmpty(), false);
        view.addSnapshot(reconstructionSnapshot(10, 1.0f));
        view.addSnapshot(reconstructionSnapshot(20, 0.5f));
        QCOMPARE(view.snapshotCount(), 2);
        const int small = view.tileSize();
        QVERIFY(small >= 40 && small % 4 == 0);
        view.resize(1000, 900);
        QTest::qWait(20);
        QVERIFY2(view.tileSize() >= 2 * small - 4, qPrintable(QString::number(view.tileSize())));
        QVERIFY(view.caption().contains("masked patches (25 %)"));
        QVERIFY(view.caption().contains("step 20"));
        QTemporaryDir dir;
        QString path = dir.filePath("r.png");
        QCOMPARE(view.exportCurrent(path), QString());
        QImage back(path);
        const int t = view.tileSize();
        QVERIFY(back.width() > 4 * t && back.height() > 2 * t);
        shot(&view, "reconstruction_view");
        // the figure itself: the masked panel's masked patch is magenta, its visible patches the image (grey 0.5)
        const QFont font = view.font();
        QImage fig = reconstructionFigure(reconstructionSnapshot(20, 0.5f), 40, font);
        QImage noLoss = reconstructionFigure(reconstructionSnapshot(20, 0.5f, false), 40, font);
        QVERIFY(fig.width() > noLoss.width());  // the per-image loss column
        const int left = fig.width() - 4 * 40 - 5 * 4, top = fig.height() - 2 * 40 - 3 * 4;
        auto at = [&](int col, int row, int px, int py) { return fig.pixelColor(left + 4 + col * 44 + px, top + 4 + row * 44 + py); };
        QCOMPARE(at(0, 0, 5, 5), QColor(128, 128, 128));   // original
        QCOMPARE(at(1, 0, 25, 5), QColor(128, 128, 128));  // masked panel, a visible patch
        int magenta = 0;
        for (int y = 1; y < 19; ++y)
            for (int x = 1; x < 19; ++x) {
                const QColor c = at(1, 0, x, y);  // image 0's masked patch (top left)
                magenta += c.red() > 200 && c.green() < 150 && c.blue() > 120;
            }
        QVERIFY2(magenta > 100, qPrintable(QString::number(magenta)));
        QCOMPARE(at(1, 1, 5, 5), QColor(128, 128, 128));   // image 1's top left is visible
        QVERIFY(at(1, 1, 30, 5) != QColor(128, 128, 128));  // its top right is masked
        // eight images in a wide, low view: side by side in blocks, each tile larger than one column of eight allows
        graftlab::Snapshot eight = reconstructionSnapshot(0, 1.0f, false);
        for (auto& a : eight.arrays) {
            a.shape[0] = 8;
            a.values.resize(a.values.size() * 4, 1.0f);
        }
        const ReconstructionLayout wide = reconstructionLayoutFor(eight, QSize(900, 480), font);
        QVERIFY(wide.blocks >= 2);
        QVERIFY2(wide.tile > (480 - 60) / 8, qPrintable(QString::number(wide.tile)));
        QImage fig8 = reconstructionFigure(eight, wide.tile, font, wide.blocks);
        QVERIFY(fig8.width() <= 900 && fig8.height() <= 480);
        // a snapshot without a panel draws nothing
        graftlab::Snapshot broken = reconstructionSnapshot(0, 1.0f);
        broken.arrays.erase(broken.arrays.begin() + 3);
        QVERIFY(reconstructionFigure(broken, 40, font).isNull());
    }

    void gradCosViewShowsLinesHeatmapAndSamples() {
        GradCosView view;
        view.resize(800, 700);
        graftlab::Snapshot off;
        off.kind = "gradcos";
        off.meta["unavailable"] = "no CL head: mae has no MoCo v3 heads";
        view.addSnapshot(off);
        QCOMPARE(view.snapshotCount(), 0);
        QVERIFY(view.findChild<QLabel*>()->text().contains("no CL head"));
        for (int k = 0; k < 3; ++k) {
            graftlab::Snapshot s;
            s.kind = "gradcos";
            s.step = 10 * (2 - k);  // out of order: the view sorts by step
            s.meta["groups"] = {"embed", "blocks.0", "norm", "encoder"};
            std::vector<float> cos, summary;
            for (int g = 0; g < 4; ++g) {
                for (int i = 0; i < 3; ++i) cos.push_back(0.1f * float(g) - 0.05f * float(i) - 0.1f * float(k));
                summary.insert(summary.end(), {0.1f * float(g) - 0.05f - 0.1f * float(k), 0, 0, 0, 0, 0, 0});
            }
            s.arrays.push_back({"cos", {4, 3}, cos});
            s.arrays.push_back({"summary", {4, 7}, summary});
            view.addSnapshot(s);
        }
        QCOMPARE(view.snapshotCount(), 3);
        QCOMPARE(view.linePlot()->graphCount(), 4);
        // depth profile: groups without the encoder total; steps 0, 10, 20 of one stage make 3 phases of one probe
        // each (band below, band above, mean per phase); the mean line of the last phase is the step-20 summary
        QCOMPARE(view.profilePlot()->graphCount(), 9);
        auto* lastMean = view.profilePlot()->graph(8);
        QCOMPARE(lastMean->name(), QString("step 20"));
        QCOMPARE(lastMean->dataCount(), 3);  // embed, blocks.0, norm
        QVERIFY(std::abs((lastMean->data()->constBegin() + 1)->value - (0.1 - 0.05)) < 1e-6);  // k = 0: blocks.0
        // the bands are drawn by their edges, dashed in the phase's colour (filled bands blended into mud), and the
        // plot says what solid and dashed lines are
        for (int k = 0; k < 3; ++k)
            for (int e : {0, 1}) {
                QCOMPARE(view.profilePlot()->graph(3 * k + e)->pen().style(), Qt::DashLine);
                QCOMPARE(view.profilePlot()->graph(3 * k + e)->pen().color().rgb(), view.profilePlot()->graph(3 * k + 2)->pen().color().rgb());
            }
        QVERIFY2(view.profileKeyText().contains("dashed: 10th / 90th percentile"), qPrintable(view.profileKeyText()));
        auto* first = view.linePlot()->graph(0)->data().data();
        QCOMPARE(first->size(), 3);
        QCOMPARE(first->at(0)->key, 0.0);  // steps ascending
        QVERIFY(std::abs(first->at(0)->value - (-0.25)) < 1e-6);  // step 0 was added last (k = 2)
        auto* map = qobject_cast<QCPColorMap*>(view.heatPlot()->plottable(0));
        QVERIFY(map);
        QCOMPARE(map->data()->keySize(), 3);
        QCOMPARE(map->data()->valueSize(), 4);
        QVERIFY(std::abs(map->data()->cell(2, 3) - 0.25) < 1e-6);  // newest step, "encoder"
        QVERIFY(view.samplePlot()->graphCount() == 1 && view.samplePlot()->graph(0)->data()->size() == 12);
        QTemporaryDir dir;
        QCOMPARE(exportPlot(view.heatPlot(), dir.filePath("h.png"), 500, 300), QString());
        QVERIFY(QFileInfo(dir.filePath("h.png")).size() > 1000);
    }

    // A fixed cosine range keeps a colour's meaning as snapshots arrive; auto covers the whole run; the choice persists.
    void gradCosColourRangeKeepsItsMeaning() {
        auto snapshot = [](int64_t step, float value) {
            graftlab::Snapshot s;
            s.kind = "gradcos";
            s.step = step;
            s.meta["groups"] = {"embed", "encoder"};
            s.arrays.push_back({"cos", {2, 1}, {value, value}});
            s.arrays.push_back({"summary", {2, 7}, {value, 0, 0, 0, 0, 0, 0, value, 0, 0, 0, 0, 0, 0}});
            return s;
        };
        {
            GradCosView view;
            view.setCosineRange(0.2);
            view.addSnapshot(snapshot(10, 0.01f));
            QCOMPARE(view.shownRange().second, 0.2);
            view.addSnapshot(snapshot(20, 0.9f));
            QCOMPARE(view.shownRange().first, -0.2);
            QCOMPARE(view.shownRange().second, 0.2);
            QCOMPARE(view.findChild<QComboBox*>()->currentText(), QString("±0.2"));
        }
        {
            GradCosView again;  // the choice is kept
            QCOMPARE(again.cosineRange(), 0.2);
            again.setCosineRange(0);
            again.addSnapshot(snapshot(10, 0.3f));
            again.addSnapshot(snapshot(20, 0.01f));
            QVERIFY(std::abs(again.shownRange().second - 0.3 * 1.15) < 1e-6);  // the whole run, not the newest snapshot
        }
        QCOMPARE(GradCosView().cosineRange(), 0.0);
        GradCosView odd;  // a range not in the list: the box says it, the scale uses it
        odd.setCosineRange(0.3);
        QCOMPARE(odd.cosineRangeText(), QString("±0.3"));
        odd.addSnapshot(snapshot(10, 0.01f));
        QCOMPARE(odd.shownRange().second, 0.3);
        odd.setCosineRange(0);
    }

    void attentionViewRendersEveryBlockAndExports() {
        AttentionView view;
        view.resize(600, 400);
        graftlab::Snapshot s;
        s.kind = "attention";
        s.step = 5;
        s.meta["grid"] = 2;
        s.meta["depth"] = 2;
        s.meta["heads"] = 2;
        std::vector<float> img(2 * 8 * 8);
        for (size_t i = 0; i < img.size(); ++i) img[i] = float(i % 8) / 8.0f;
        s.arrays.push_back({"images", {2, 1, 8, 8}, img});
        std::vector<float> att(2 * 2 * 2 * 4, 0.1f);
        att[3] = 0.6f;
        s.arrays.push_back({"cls_attention", {2, 2, 2, 4}, att});
        s.arrays.push_back({"rollout", {2, 4}, {0.1f, 0.2f, 0.3f, 0.4f, 0.4f, 0.3f, 0.2f, 0.1f}});
        QTemporaryDir dir;
        QVERIFY(!view.exportCurrent(dir.filePath("none.png")).isEmpty());
        view.addSnapshot(s);
        QCOMPARE(view.snapshotCount(), 1);
        auto* block = view.findChildren<QComboBox*>().at(0);
        QCOMPARE(block->count(), 3);  // rollout + 2 blocks
        for (int b = 0; b < block->count(); ++b) {
            block->setCurrentIndex(b);
            QString path = dir.filePath(QString("a%1.png").arg(b));
            QCOMPARE(view.exportCurrent(path), QString());
            QVERIFY(QImage(path).width() > 32);
        }
        // One colour scale per block across images and heads (0 to the block's largest attention: 0.6 in block 0),
        // not each panel from its own min to max; every head at once as a grid with a column per head and the mean.
        view.setBlock(0);
        view.setHead(1);
        QCOMPARE(view.shownRange(), qMakePair(0.0, double(0.6f)));
        const int oneHeadHeight = view.shownImage().height();   // the two images side by side, one row
        view.setHead(AttentionView::kAllHeads);
        QCOMPARE(view.shownRange(), qMakePair(0.0, double(0.6f)));
        QVERIFY(view.shownImage().width() > 4 * 64);             // image, mean, head 0, head 1 side by side
        QVERIFY(view.shownImage().height() > oneHeadHeight);     // a row per image, under column titles
        if (qEnvironmentVariableIsSet("GRAFTLAB_TEST_SHOTS"))
            view.shownImage().save(qEnvironmentVariable("GRAFTLAB_TEST_SHOTS") + "/attention-all-heads.png");
        view.setSharedScale(false);
        QVERIFY(std::isnan(view.shownRange().first));
        view.setSharedScale(true);

        // the value under the mouse: block 0, head 0, image 1, patch 3 (row 1, column 1) holds 0.6 (att[3])
        view.setHead(0);
        const QImage shown = view.shownImage();
        // the second panel of image 1 (image, head 0) starts after the image; patch (1, 1) is its bottom right quarter
        const int W = 8 * std::max(2, 96 / 8), gap = 3;
        const double fx = (gap * 2 + (W + gap) + 0.75 * W) / shown.width(), fy = (gap + 0.75 * W) / shown.height();
        QVERIFY2(view.valueAt(fx, fy).contains("image 1 · head 0 · patch (row 1, column 1): attention 0.6"), qPrintable(view.valueAt(fx, fy)));
        QVERIFY(view.valueAt(0.001, 0.001).isEmpty());  // on the white margin
        // opacity: 0 shows the image alone in the heat panel, 1 the heat map alone
        auto heatPixel = [&] { return view.shownImage().pixelColor(int(fx * shown.width()), int(fy * shown.height())); };
        view.setOpacity(0);
        const QColor plain = heatPixel();
        QCOMPARE(plain.red(), plain.green());  // the grey image
        view.setOpacity(1);
        QCOMPARE(heatPixel(), viridis(1.0));   // 0.6 is the top of the block's scale
        view.setOpacity(0.75);
        // DINO's mask: 0.6 of the total 0.9 is 67 %: at 60 % only that patch is kept, the others dimmed
        view.setMassMask(0.6);
        QCOMPARE(heatPixel(), plain);
        const double fxDim = (gap * 2 + (W + gap) + 0.25 * W) / shown.width();
        const QColor dim = view.shownImage().pixelColor(int(fxDim * shown.width()), int(fy * shown.height()));
        QVERIFY(dim.red() < 60);
        view.setMassMask(0);
    }

    void attentionMassMaskKeepsTheFewestPatches() {
        QCOMPARE(attentionMassMask({0.1f, 0.4f, 0.2f, 0.3f}, 0.6), (std::vector<bool>{false, true, false, true}));
        QCOMPARE(attentionMassMask({0.1f, 0.4f, 0.2f, 0.3f}, 0.75), (std::vector<bool>{false, true, true, true}));
        QCOMPARE(attentionMassMask({0.25f, 0.25f, 0.25f, 0.25f}, 0.5), (std::vector<bool>{true, true, false, false}));
        QCOMPARE(attentionMassMask({0.0f, 0.0f}, 0.6), (std::vector<bool>{false, false}));
    }

    void similarityViewFollowsTheQueryPatch() {
        SimilarityView view;
        view.resize(700, 400);
        graftlab::Snapshot s;
        s.kind = "similarity";
        s.step = 3;
        s.meta["grid"] = 2;
        s.arrays.push_back({"images", {1, 1, 8, 8}, std::vector<float>(64, 0.5f)});
        std::vector<float> sim = {1, 0.5f, 0.2f, -0.3f, 0.5f, 1, 0.1f, 0.0f, 0.2f, 0.1f, 1, 0.4f, -0.3f, 0.0f, 0.4f, 1};
        s.arrays.push_back({"cosine", {1, 4, 4}, sim});
        s.meta["lookup_unavailable"] = "mae has none";
        view.addSnapshot(s);
        view.setQuery(3);
        auto* map = qobject_cast<QCPColorMap*>(view.plot()->plottable(0));
        QVERIFY(map);
        QVERIFY(std::abs(map->data()->cell(0, 0) + 0.3) < 1e-6);  // patch 0 as seen from query 3
        QCOMPARE(map->data()->cell(1, 1), 1.0);
        view.setQuery(0);
        QCOMPARE(map->data()->cell(1, 0), 0.5);
        // A click on the image picks the patch under it.
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        auto* label = view.findChild<FitImageLabel*>();
        QVERIFY(label);
        QRect r = label->rect();
        int side = std::min(r.width(), r.height());
        QPoint bottomRight(r.center().x() + side / 4, r.center().y() + side / 4);
        QTest::mouseClick(label, Qt::LeftButton, {}, bottomRight);
        QCOMPARE(view.query(), 3);
        QCOMPARE(view.blockChoices(), 1);  // this snapshot stores one block
        // a snapshot with every block: the block selector shows them, and block 1's values are drawn
        std::vector<float> blocks(2 * 16, 0.0f);
        for (int k = 0; k < 16; ++k) blocks[size_t(16 + k)] = 0.25f;  // block 1: everything 0.25
        s.step = 4;
        s.arrays.push_back({"cosine_blocks", {2, 1, 4, 4}, blocks});
        view.addSnapshot(s);
        QCOMPARE(view.blockChoices(), 3);
        // with long choices in its boxes the view still fits beside the recipe dock on a 1280-pixel screen
        s.meta["block_label"] = "last block + final norm";
        s.meta["image_indices"] = std::vector<int64_t>{123456};
        view.addSnapshot(s);
        QVERIFY2(view.minimumSizeHint().width() <= 800, qPrintable(QString::number(view.minimumSizeHint().width())));
        view.setBlock(1);
        QCOMPARE(map->data()->cell(0, 0), 0.25);
        view.setBlock(-1);
        QVERIFY(std::abs(map->data()->cell(0, 0) + 0.3) < 1e-6);
        // Colour range: auto by default, over every stored snapshot of this block (not the query's or the step's own),
        // so an early run whose cosines all lie in 0.8..1 is not one uniform colour; fixed: -1..1.
        QCOMPARE(view.shownRange(), qMakePair(double(-0.3f), 1.0));
        view.setBlock(1);
        // block 1 of snapshot 4 (no other stores it): 0.25 everywhere, shown on a narrow range around it
        QVERIFY(std::abs(view.shownRange().first - 0.2) < 1e-6 && std::abs(view.shownRange().second - 0.3) < 1e-6);
        view.setBlock(-1);
        view.setAutoRange(false);
        QCOMPARE(view.shownRange(), qMakePair(-1.0, 1.0));
        QString note;
        for (auto* l : view.findChildren<QLabel*>())
            if (l->text().startsWith("Query patch")) note = l->text();
        QVERIFY2(note.contains("colours from -1 to 1 (fixed)"), qPrintable(note));
        view.setAutoRange(true);
        // a later snapshot with a wider spread widens the run's range (the range is cached per mode and block, and
        // computed again when a snapshot arrives)
        s.step = 5;
        s.arrays[1].values[3] = -0.9f;
        view.addSnapshot(s);
        QCOMPARE(view.shownRange(), qMakePair(double(-0.9f), 1.0));
    }

    void reconstructionGridFromSnapshot() {
        graftlab::Snapshot s;
        s.kind = "reconstruction";
        for (const char* n : {"original", "masked", "reconstruction", "pasted"})
            s.arrays.push_back({n, {2, 1, 4, 4}, std::vector<float>(32, 1.0f)});
        QImage g = reconstructionGrid(s, 3);
        QCOMPARE(g.width(), 4 * 12 + 5 * 2);
        QCOMPARE(g.height(), 2 * 12 + 3 * 2);
        s.arrays.pop_back();
        QVERIFY(reconstructionGrid(s, 3).isNull());
    }

    // Runs on one plot: a folder's seeds (NAME-seedN) are one curve, their mean at the steps every seed logged, in a
    // band of ± one sample sd; the same NAME in another folder stays apart; unticked, a line per run again.
    void overlayDrawsSeedsAsOneCurve() {
        QSettings().remove("overlay");
        QTemporaryDir tmp;
        auto run = [&](const QString& dir, double loss, int rows) {
            QVERIFY(QDir().mkpath(dir));
            writeText(dir + "/recipe.json", R"({"name":"mae","optim":{"batch_size":64},"train":{"steps":40}})");
            QByteArray m;
            for (int i = 1; i <= rows; ++i)
                m += QStringLiteral("{\"step\":%1,\"epoch\":0,\"stage\":0,\"loss\":%2,\"lr\":0.001}\n").arg(10 * i).arg(loss).toUtf8();
            writeText(dir + "/metrics.jsonl", m);
        };
        run(tmp.filePath("t/mae-seed0"), 1.0, 3);
        run(tmp.filePath("t/mae-seed1"), 2.0, 3);
        run(tmp.filePath("t/mae-seed2"), 3.0, 4);  // step 40 logged by this seed only: not in the mean
        run(tmp.filePath("other/mae-seed0"), 5.0, 3);
        RunOverlayView v;
        v.resize(1100, 600);
        v.show();
        QCOMPARE(v.addRunsUnder(tmp.filePath("t")), 3);
        QVERIFY(v.addRun(tmp.filePath("other/mae-seed0")));
        v.setSmoothing(0);
        QVERIFY(v.seedsTogetherBox()->isChecked());
        QCOMPARE(v.seriesCount(), 2);
        QCPGraph* mean = v.series(tmp.filePath("t/mae-seed1"));
        QVERIFY(mean);
        QCOMPARE(v.series(tmp.filePath("t/mae-seed0")), mean);
        // the same NAME in two folders (a lone seed in the other): each named with its folder
        QCOMPARE(mean->name(), QString("t/mae (3 seeds)"));
        QCOMPARE(v.series(tmp.filePath("other/mae-seed0"))->name(), QString("mae · other/mae-seed0"));
        // the run list shows every seed in the colour of the curve it is drawn in; unticked, each its own again
        auto listColour = [&](const QString& dir) {
            for (auto* item : v.findChild<QListWidget*>()->findItems(QStringLiteral("*"), Qt::MatchWildcard))
                if (item->data(Qt::UserRole).toString() == dir) return item->icon().pixmap(14, 14).toImage().pixelColor(6, 6);
            return QColor();
        };
        for (const char* seed : {"t/mae-seed0", "t/mae-seed1", "t/mae-seed2"}) QCOMPARE(listColour(tmp.filePath(seed)), mean->pen().color());
        QVERIFY(v.colourOf(tmp.filePath("t/mae-seed1")) != mean->pen().color());  // its own colour, kept for one line a run
        QCOMPARE(mean->data()->size(), 3);
        for (int i = 0; i < 3; ++i) {
            QCOMPARE(mean->data()->at(i)->key, 10.0 * (i + 1));
            QVERIFY(std::abs(mean->data()->at(i)->value - 2.0) < 1e-9);
        }
        QVector<QCPGraph*> band;
        for (int i = 0; i < v.plot()->graphCount(); ++i)
            if (v.plot()->graph(i)->property("band").toBool()) band << v.plot()->graph(i);
        QCOMPARE(band.size(), 2);
        QCOMPARE(band[1]->channelFillGraph(), band[0]);
        QVERIFY(std::abs(band[0]->data()->at(0)->value - 1.0) < 1e-9);  // 2 - sd (sample sd of 1, 2, 3 = 1)
        QVERIFY(std::abs(band[1]->data()->at(0)->value - 3.0) < 1e-9);
        run(tmp.filePath("other/mae-seed1"), 6.0, 3);
        QVERIFY(v.addRun(tmp.filePath("other/mae-seed1")));
        QCOMPARE(v.series(tmp.filePath("other/mae-seed0"))->name(), QString("other/mae (2 seeds)"));
        QCOMPARE(v.series(tmp.filePath("t/mae-seed0"))->name(), QString("t/mae (3 seeds)"));
        v.setChecked(tmp.filePath("other/mae-seed0"), false);  // a NAME in one folder only: no folder in its name
        v.setChecked(tmp.filePath("other/mae-seed1"), false);
        QCOMPARE(v.series(tmp.filePath("t/mae-seed0"))->name(), QString("mae (3 seeds)"));
        v.setChecked(tmp.filePath("other/mae-seed0"), true);
        v.setChecked(tmp.filePath("other/mae-seed1"), true);
        v.seedsTogetherBox()->setChecked(false);
        QCOMPARE(v.seriesCount(), 5);
        QCOMPARE(listColour(tmp.filePath("t/mae-seed1")), v.colourOf(tmp.filePath("t/mae-seed1")));
        QCOMPARE(v.series(tmp.filePath("t/mae-seed1"))->pen().color(), v.colourOf(tmp.filePath("t/mae-seed1")));
        QCOMPARE(v.series(tmp.filePath("t/mae-seed2"))->data()->size(), 4);
        QSettings().remove("overlay");
    }

    // Runs on one plot: every ticked run draws its own line of the chosen curve, in its own colour, on the axis
    // chosen (step, training time, fraction of training), with its stage boundaries; runs without the curve are named.
    void overlayDrawsEveryTickedRunOnOneCurve() {
        QSettings().remove("overlay");
        QTemporaryDir tmp;
        const QString a = tmp.filePath("mae-a"), b = tmp.filePath("lg-b");
        writeRun(a, R"({"name":"mae","optim":{"batch_size":64},"train":{"steps":100}})", 10, 64.0);  // 1 s a step
        writeRun(b, R"({"name":"lg","optim":{"batch_size":32},"stages":[{"name":"mim","method":"mae","steps":60},)"
                    R"({"name":"cl","method":"mocov3","steps":60}]})", 12, 16.0, {"encoder", "embed", "block0", "block1"});  // 2 s a step
        RunOverlayView v;
        v.resize(1100, 600);
        v.show();
        QVERIFY(v.addRun(a));
        QVERIFY(v.addRun(b));
        QString error;
        QVERIFY(!v.addRun(tmp.filePath("nothing"), true, &error));
        QVERIFY2(error.contains("nothing") && error.contains("recipe.json"), qPrintable(error));
        QCOMPARE(v.runs().size(), 2);
        QVERIFY(v.colourOf(a) != v.colourOf(b));
        QCOMPARE(v.curve(), QString("loss"));
        QCOMPARE(v.seriesCount(), 2);
        QCOMPARE(v.series(a)->data()->size(), 10);
        QCOMPARE(v.series(b)->data()->size(), 12);
        QCOMPARE(v.series(a)->pen().color(), v.colourOf(a));
        QCOMPARE(v.stageLineCount(), 1);  // lg-b's second stage
        // smoothing only changes the drawn values, not the runs
        v.setSmoothing(0);
        QCOMPARE(v.series(a)->data()->at(1)->value, 1.0);
        // training time: a's 100 steps at 1 s a step, b's 120 at 2 s
        v.setAxis(OverlayAxis::WallTime);
        QCOMPARE(v.seriesCount(), 2);
        QVERIFY(std::abs(v.series(a)->data()->at(9)->key - 100.0 / 60) < 1e-9);
        QVERIFY(std::abs(v.series(b)->data()->at(11)->key - 240.0 / 60) < 1e-9);
        v.setAxis(OverlayAxis::Fraction);
        QCOMPARE(v.series(a)->data()->at(9)->key, 1.0);
        QCOMPARE(v.series(b)->data()->at(5)->key, 0.5);
        // the gradient cosine of one group: only b has one; a is named as lacking it
        QVERIFY(v.curveKeys().contains("cos:block1"));
        QCOMPARE(v.curveKeys().indexOf("cos:encoder") + 1, v.curveKeys().indexOf("cos:embed"));
        v.setAxis(OverlayAxis::Step);
        v.setCurve("cos:block1");
        QCOMPARE(v.seriesCount(), 1);
        QVERIFY(!v.series(a) && v.series(b));
        QCOMPARE(v.series(b)->data()->size(), 7);  // probes at 0, 20, ..., 120
        QVERIFY(std::abs(v.series(b)->data()->at(1)->value - (0.3 - 0.02)) < 1e-6);
        QVERIFY2(v.noteText().contains("mae · mae-a"), qPrintable(v.noteText()));
        QVERIFY(v.plot()->yAxis->range().lower < 0 && std::abs(v.plot()->yAxis->range().lower + v.plot()->yAxis->range().upper) < 1e-9);
        v.setCurve("profile");
        QCOMPARE(v.seriesCount(), 1);
        QCOMPARE(v.series(b)->data()->size(), 3);  // the groups without the whole encoder
        QCOMPARE(v.plot()->graphCount(), 3);       // the mean and its 10th / 90th percentile
        QTest::qWait(50);
        v.plot()->replot();
        shot(&v, "overlay_profile");
        // unticking a run takes its line away; the hover read-out names each run's value
        v.setCurve("loss");
        v.setChecked(b, false);
        QCOMPARE(v.seriesCount(), 1);
        QCOMPARE(v.stageLineCount(), 0);
        v.setChecked(b, true);
        v.showReadoutAt(50);
        QVERIFY2(v.readout().contains("mae · mae-a 0.4") && v.readout().contains("lg · lg-b"), qPrintable(v.readout()));
        QTest::qWait(50);
        v.plot()->replot();
        shot(&v, "overlay_loss");
        // the list is kept: a new view restores it, unticked runs unticked
        v.setChecked(a, false);
        v.setCurve("cos:block1");
        v.setAxis(OverlayAxis::WallTime);
        RunOverlayView again;
        again.restoreRuns();
        QCOMPARE(again.curve(), QString("cos:block1"));
        QCOMPARE(again.axis(), OverlayAxis::WallTime);
        v.setCurve("loss");
        v.setAxis(OverlayAxis::Step);
        QCOMPARE(again.runs(), v.runs());
        QCOMPARE(again.checkedRuns(), QStringList{QDir(b).absolutePath()});
        QCOMPARE(again.colourOf(a), v.colourOf(a));
        // a run being written: what it appends is drawn at the next reload
        v.setChecked(a, true);
        writeText(a + "/metrics.jsonl", "{\"step\":110,\"epoch\":0,\"stage\":0,\"loss\":0.1,\"images_per_s\":64}\n", true);
        QCOMPARE(v.reload(), 1);
        QCOMPARE(v.series(a)->data()->size(), 11);
        QCOMPARE(v.reload(), 0);
        v.removeRun(a);
        QCOMPARE(v.runs().size(), 1);
        QSettings().remove("overlay");
    }

    // A sweep's or a table's folder lists every run below it.
    void overlayListsTheRunsOfAFolder() {
        QSettings().remove("overlay");
        QTemporaryDir tmp;
        writeRun(tmp.filePath("sweep/point-0"), R"({"name":"p0"})", 3, 10.0);
        writeRun(tmp.filePath("sweep/point-1"), R"({"name":"p1"})", 3, 10.0);
        writeRun(tmp.filePath("table/mae/seed-0"), R"({"name":"t"})", 3, 10.0);
        QVERIFY(QDir().mkpath(tmp.filePath("table/empty")));
        QCOMPARE(runDirsUnder(tmp.filePath("sweep")).size(), 2);
        QCOMPARE(runDirsUnder(tmp.path()).size(), 3);
        QCOMPARE(runDirsUnder(tmp.filePath("sweep/point-1")), QStringList{QDir(tmp.filePath("sweep/point-1")).absolutePath()});
        RunOverlayView v;
        QCOMPARE(v.addRunsUnder(tmp.path()), 3);
        QCOMPARE(v.seriesCount(), 3);
        QCOMPARE(v.addRunsUnder(tmp.filePath("table/empty")), 0);
        QSettings().remove("overlay");
    }
};

QTEST_MAIN(WidgetsTest)
#include "test_widgets.moc"
