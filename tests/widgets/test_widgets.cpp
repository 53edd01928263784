// Offscreen tests of the Qt widgets: no torch here, only what the GUI shows.
#include "LossPlotView.h"
#include "PlotExport.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QDir>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>

using namespace graftlab;

class WidgetsTest : public QObject {
    Q_OBJECT
private slots:
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

    void lossPlotTakesRowsAndExports() {
        LossPlotView view;
        view.resize(600, 400);
        QCOMPARE(view.pointCount(), 0);
        for (int s = 1; s <= 5; ++s)
            view.addRow(s * 10, {{"loss", 1.0 / s}, {"loss/mae", 1.0 / s}, {"lr", 1e-3}, {"images_per_s", 100}});
        QCOMPARE(view.pointCount(), 5);
        QVERIFY(view.plot()->graph(0)->name() == "loss/mae");
        QCOMPARE(view.plot()->graphCount(), 2);  // loss/mae and lr; the total duplicates the one component
        view.addRow(60, {{"loss", 1.0}, {"loss/mae", 0.4}, {"loss/moco", 0.6}, {"lr", 1e-3}});
        QCOMPARE(view.plot()->graphCount(), 4);  // MTL: total and both components
        view.markStage(30, "step 2");
        QCOMPARE(view.plot()->itemCount(), 2);
        QTemporaryDir dir;
        for (const char* name : {"plot.png", "plot.pdf"}) {
            QString path = dir.filePath(name);
            QCOMPARE(exportPlot(view.plot(), path, 600, 400), QString());
            QVERIFY(QFileInfo(path).size() > 1000);
        }
        QVERIFY(exportPlot(view.plot(), dir.filePath("plot.xyz")).contains("unknown image type"));
    }

    void reconstructionViewKeepsHistory() {
        ReconstructionView view;
        view.resize(500, 500);
        QCOMPARE(view.exportCurrent("/tmp/none.png").isEmpty(), false);
        QImage img(40, 20, QImage::Format_RGB888);
        img.fill(Qt::red);
        view.addSnapshot(10, img, 0.5, "pixel prediction");
        img.fill(Qt::blue);
        view.addSnapshot(20, img, 0.4, "pixel prediction");
        QCOMPARE(view.snapshotCount(), 2);
        QTemporaryDir dir;
        QString path = dir.filePath("r.png");
        QCOMPARE(view.exportCurrent(path), QString());
        QImage back(path);
        QCOMPARE(back.pixelColor(0, 0), QColor(Qt::blue));  // follows the newest
    }
};

QTEST_MAIN(WidgetsTest)
#include "test_widgets.moc"
