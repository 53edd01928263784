#pragma once
// A form for every recipe field, generated from the core's field list: one group per section, the field's
// help as tooltip, validation (the core's validate()) as you type, problems listed under the form.
#include "base/recipe/Recipe.h"

#include <QMap>
#include <QWidget>

class QLabel;
class QGroupBox;
class QTableWidget;
class QLineEdit;
class QComboBox;
class QSpinBox;
class QPushButton;

namespace graftlab {

class BlockLrChart;

class RecipeForm : public QWidget {
    Q_OBJECT
public:
    explicit RecipeForm(QWidget* parent = nullptr);

    void setRecipe(const Recipe& r);
    // The recipe as the form shows it; `issues` gets type errors and validation problems.
    Recipe recipe(std::vector<RecipeIssue>* issues = nullptr) const;
    nlohmann::json json() const;
    bool isValid() const { return valid_; }
    QString issuesText() const;
    // The editor of one field (by dotted path), for tests and focus.
    QWidget* editorFor(const QString& path) const { return editors_.value(path); }
    // The stage editor: the per-block learning-rate chart of the selected stage, and stage list operations.
    BlockLrChart* blockLrChart() const { return lrChart_; }
    int stageCount() const { return int(stages_.size()); }
    int selectedStage() const { return selectedStage_; }
    void selectStageForEditing(int index) { selectStage(index); }
    void appendStage() { addStage(); }
    void removeSelectedStage() { removeStage(); }

signals:
    void changed();
    void validityChanged(bool valid);

private:
    void revalidate();
    void setEditorValue(const RecipeFieldInfo& f, const nlohmann::json& v);

    void buildStageEditor();
    void showStages();
    void refreshStageTable();
    void selectStage(int index);
    void stageEdited();
    void addStage();
    void removeStage();
    void moveStage(int delta);
    int modelDepth() const;

    QMap<QString, QWidget*> editors_;
    std::vector<StageConfig> stages_;
    QTableWidget* stageTable_ = nullptr;
    QGroupBox* stageBox_ = nullptr;
    QLabel* stageHint_ = nullptr;
    QWidget* stageForm_ = nullptr;
    QLineEdit *stageName_ = nullptr, *stageCheckpoint_ = nullptr, *stageLr_ = nullptr;
    QComboBox *stageMethod_ = nullptr, *stageInit_ = nullptr, *stageModules_ = nullptr;
    QSpinBox *stageSteps_ = nullptr, *stageWarmup_ = nullptr;
    QPushButton *addStageButton_ = nullptr, *removeStageButton_ = nullptr, *upButton_ = nullptr, *downButton_ = nullptr;
    BlockLrChart* lrChart_ = nullptr;
    int selectedStage_ = -1;
    int lastDepth_ = 0;
    bool loadingStage_ = false;
    QLabel* issues_;
    bool valid_ = true;
    bool loading_ = false;
    std::vector<RecipeIssue> lastIssues_;
};

}  // namespace graftlab
