// Offscreen tests of the Qt widgets: no torch here, only what the GUI shows.
#include "LossPlotView.h"
#include "PlotExport.h"
#include "RecipeForm.h"
#include "ReconstructionView.h"
#include "GradCosView.h"
#include "ProbeImageViews.h"
#include "SnapshotImages.h"

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
};

QTEST_MAIN(WidgetsTest)
#include "test_widgets.moc"
