#pragma once
// A form for every recipe field, generated from the core's field list: one group per section, the field's
// help as tooltip, validation (the core's validate()) as you type, problems listed under the form.
#include "recipe/Recipe.h"

#include <QMap>
#include <QWidget>

class QLabel;
class QGroupBox;
class QTableWidget;

namespace graftlab {

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

signals:
    void changed();
    void validityChanged(bool valid);

private:
    void revalidate();
    void setEditorValue(const RecipeFieldInfo& f, const nlohmann::json& v);

    void showStages();

    QMap<QString, QWidget*> editors_;
    std::vector<StageConfig> stages_;  // kept as loaded; shown read-only
    QTableWidget* stageTable_ = nullptr;
    QGroupBox* stageBox_ = nullptr;
    QLabel* issues_;
    bool valid_ = true;
    bool loading_ = false;
    std::vector<RecipeIssue> lastIssues_;
};

}  // namespace graftlab
