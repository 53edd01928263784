#include "RecipeForm.h"
#include "BlockLrChart.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleValidator>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QScrollArea>
#include <QScrollBar>
#include <QHeaderView>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QHBoxLayout>
#include <QPushButton>
#include <QSignalBlocker>

#include <algorithm>
#include <numeric>

namespace graftlab {

namespace {
QString sectionTitle(const QString& s) {
    if (s == "") return QObject::tr("Run");
    if (s == "data") return QObject::tr("Data");
    if (s == "model") return QObject::tr("Model (ViT encoder, MAE decoder)");
    if (s == "mae") return QObject::tr("MAE objective");
    if (s == "augment") return QObject::tr("Augmentation");
    if (s == "optim") return QObject::tr("Optimiser (AdamW, warm-up + cosine)");
    if (s == "train") return QObject::tr("Training loop");
    if (s == "moco") return QObject::tr("MoCo v3 objective");
    if (s == "mtl") return QObject::tr("MTL combination");
    if (s == "conmim") return QObject::tr("ConMIM objective");
    if (s == "probes") return QObject::tr("Probes (what the model learns)");
    return s;
}
nlohmann::json::json_pointer pointer(const std::string& dotted) {
    std::string p = "/" + dotted;
    for (auto& c : p)
        if (c == '.') c = '/';
    return nlohmann::json::json_pointer(p);
}
}  // namespace

RecipeForm::RecipeForm(QWidget* parent) : QWidget(parent) {
    auto* inner = new QWidget;
    auto* innerLayout = new QVBoxLayout(inner);
    QMap<QString, QFormLayout*> sections;
    QStringList order;
    for (const auto& f : recipeFields()) {
        QString path = QString::fromStdString(f.path);
        QString section = path.contains('.') ? path.section('.', 0, 0) : QString();
        QString key = path.contains('.') ? path.section('.', 1) : path;
        if (!sections.contains(section)) {
            auto* box = new QGroupBox(sectionTitle(section));
            auto* form = new QFormLayout(box);
            form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
            sections.insert(section, form);
            innerLayout->addWidget(box);
        }
        QWidget* editor = nullptr;
        QString tip = QStringLiteral("<b>%1</b><br>%2").arg(path, QString::fromStdString(f.help).toHtmlEscaped());
        if (!f.choices.empty()) {
            auto* combo = new QComboBox;
            for (const auto& c : f.choices) combo->addItem(QString::fromStdString(c));
            connect(combo, &QComboBox::currentTextChanged, this, [this] { revalidate(); });
            editor = combo;
        } else if (f.kind == "bool") {
            auto* check = new QCheckBox;
            connect(check, &QCheckBox::toggled, this, [this] { revalidate(); });
            editor = check;
        } else if (f.kind == "int") {
            auto* spin = new QSpinBox;
            spin->setRange(-1000000000, 1000000000);
            spin->setAccelerated(true);
            connect(spin, &QSpinBox::valueChanged, this, [this] { revalidate(); });
            editor = spin;
        } else {  // number or free string
            auto* line = new QLineEdit;
            if (f.kind == "number") {
                auto* v = new QDoubleValidator(line);
                v->setNotation(QDoubleValidator::ScientificNotation);
                v->setLocale(QLocale::c());
                line->setValidator(v);
            }
            connect(line, &QLineEdit::textChanged, this, [this] { revalidate(); });
            editor = line;
        }
        editor->setToolTip(tip);
        editor->setProperty("baseTip", tip);
        editor->setObjectName(path);
        auto* label = new QLabel(key.replace('_', ' '));
        label->setToolTip(tip);
        sections[section]->addRow(label, editor);
        editors_.insert(path, editor);
    }
    buildStageEditor();
    innerLayout->insertWidget(1, stageBox_);
    innerLayout->addStretch();
    auto* scroll = new QScrollArea;
    scroll->setWidget(inner);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    // Never a horizontal scrollbar hiding fields or buttons: the form is as wide as its widest row needs, beside the
    // vertical scrollbar it may show.
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setMinimumWidth(inner->minimumSizeHint().width() + scroll->verticalScrollBar()->sizeHint().width() + 2);

    issues_ = new QLabel;
    issues_->setWordWrap(true);
    issues_->setStyleSheet("color: #c62828;");
    issues_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(scroll, 1);
    layout->addWidget(issues_);
    setRecipe(Recipe{});
}

void RecipeForm::setEditorValue(const RecipeFieldInfo& f, const nlohmann::json& v) {
    QWidget* w = editors_.value(QString::fromStdString(f.path));
    if (auto* combo = qobject_cast<QComboBox*>(w)) combo->setCurrentText(QString::fromStdString(v.get<std::string>()));
    else if (auto* check = qobject_cast<QCheckBox*>(w)) check->setChecked(v.get<bool>());
    else if (auto* spin = qobject_cast<QSpinBox*>(w)) spin->setValue(int(v.get<int64_t>()));
    else if (auto* line = qobject_cast<QLineEdit*>(w)) {
        if (v.is_string()) line->setText(QString::fromStdString(v.get<std::string>()));
        else line->setText(QString::number(v.get<double>(), 'g', 10));
    }
}

void RecipeForm::setRecipe(const Recipe& r) {
    loading_ = true;
    nlohmann::json j = r.toJson();
    for (const auto& f : recipeFields()) setEditorValue(f, j.at(pointer(f.path)));
    stages_ = r.stages;
    lastDepth_ = r.model.depth;
    showStages();
    selectStage(0);
    loading_ = false;
    revalidate();
}

void RecipeForm::buildStageEditor() {
    stageBox_ = new QGroupBox(tr("Stages (grafting plan) and per-block learning rates"));
    stageBox_->setToolTip(tr("The stages of a multi-stage recipe (grafting, Layer Grafted Pretraining): each has its own "
                             "objective, length, initialisation and learning-rate multipliers per part of the encoder."));
    auto* layout = new QVBoxLayout(stageBox_);
    stageHint_ = new QLabel;
    stageHint_->setWordWrap(true);
    stageHint_->setStyleSheet("color: gray;");
    layout->addWidget(stageHint_);
    stageTable_ = new QTableWidget(0, 4);
    stageTable_->setHorizontalHeaderLabels({tr("name"), tr("method"), tr("steps"), tr("init")});
    stageTable_->horizontalHeader()->setStretchLastSection(true);
    stageTable_->verticalHeader()->setVisible(false);
    stageTable_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    stageTable_->setSelectionBehavior(QAbstractItemView::SelectRows);
    stageTable_->setSelectionMode(QAbstractItemView::SingleSelection);
    stageTable_->setMinimumHeight(80);
    stageTable_->setMaximumHeight(120);
    stageTable_->setToolTip(tr("Select a stage to edit it below"));
    connect(stageTable_, &QTableWidget::currentCellChanged, this, [this](int row) {
        if (row >= 0 && row != selectedStage_) selectStage(row);
    });
    layout->addWidget(stageTable_);

    auto* buttons = new QHBoxLayout;
    auto addButton = [&](const QString& text, const QString& tip, auto slot) {
        auto* b = new QPushButton(text);
        b->setToolTip(tip);
        connect(b, &QPushButton::clicked, this, slot);
        buttons->addWidget(b);
        return b;
    };
    addStageButton_ = addButton(tr("Add stage"), tr("Append a stage that continues from the previous one (a single-stage recipe "
                                                    "becomes a plan whose first stage is its method and steps)"),
                                [this] { addStage(); });
    removeStageButton_ = addButton(tr("Remove"), tr("Remove the selected stage (removing the last one makes a single-stage recipe)"),
                                   [this] { removeStage(); });
    upButton_ = addButton(tr("Up"), tr("Move the selected stage earlier"), [this] { moveStage(-1); });
    downButton_ = addButton(tr("Down"), tr("Move the selected stage later"), [this] { moveStage(1); });
    buttons->addStretch();
    layout->addLayout(buttons);

    stageForm_ = new QWidget;
    auto* form = new QFormLayout(stageForm_);
    form->setContentsMargins(0, 0, 0, 0);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    auto tipped = [](QWidget* w, const QString& key, const QString& help) {
        w->setToolTip(QStringLiteral("<b>stages[i].%1</b><br>%2").arg(key, help.toHtmlEscaped()));
        w->setObjectName("stage." + key);
        return w;
    };
    stageName_ = new QLineEdit;
    form->addRow(tr("name"), tipped(stageName_, "name", tr("Shown on the loss plot where the stage begins.")));
    stageMethod_ = new QComboBox;
    for (const auto& m : kMethods) stageMethod_->addItem(QString::fromStdString(m));
    form->addRow(tr("method"), tipped(stageMethod_, "method", tr("Objective of this stage: mae, mocov3, mtl or conmim.")));
    stageSteps_ = new QSpinBox;
    stageSteps_->setRange(0, 100000000);
    stageSteps_->setAccelerated(true);
    form->addRow(tr("steps"), tipped(stageSteps_, "steps", tr("Optimiser steps of this stage.")));
    stageInit_ = new QComboBox;
    stageInit_->addItems({"random", "previous", "checkpoint"});
    form->addRow(tr("init"), tipped(stageInit_, "init", tr("Where the encoder starts: random, the previous stage's weights, or a checkpoint file.")));
    stageCheckpoint_ = new QLineEdit;
    form->addRow(tr("checkpoint"), tipped(stageCheckpoint_, "checkpoint", tr("Checkpoint file to start from (init = checkpoint).")));
    stageModules_ = new QComboBox;
    stageModules_->addItems({"encoder", "all"});
    form->addRow(tr("init modules"), tipped(stageModules_, "init_modules", tr("What is carried over: the encoder only (into the base and momentum encoders), or heads too (all).")));
    stageLr_ = new QLineEdit;
    stageLr_->setValidator(new QDoubleValidator(0, 100, 12, stageLr_));
    form->addRow(tr("base lr"), tipped(stageLr_, "base_lr", tr("Base learning rate of this stage (× batch / 256); 0 = optim.base_lr.")));
    stageWarmup_ = new QSpinBox;
    stageWarmup_->setRange(-1, 100000000);
    form->addRow(tr("warm-up steps"), tipped(stageWarmup_, "warmup_steps", tr("Linear warm-up of this stage; -1 = optim.warmup_steps.")));
    layout->addWidget(stageForm_);
    lrChart_ = new BlockLrChart;
    lrChart_->setObjectName("stage.lr_mult");
    layout->addWidget(lrChart_);

    connect(stageName_, &QLineEdit::textEdited, this, [this] { stageEdited(); });
    connect(stageMethod_, &QComboBox::currentTextChanged, this, [this] { stageEdited(); });
    connect(stageSteps_, &QSpinBox::valueChanged, this, [this] { stageEdited(); });
    connect(stageInit_, &QComboBox::currentTextChanged, this, [this] { stageEdited(); });
    connect(stageCheckpoint_, &QLineEdit::textEdited, this, [this] { stageEdited(); });
    connect(stageModules_, &QComboBox::currentTextChanged, this, [this] { stageEdited(); });
    connect(stageLr_, &QLineEdit::textEdited, this, [this] { stageEdited(); });
    connect(stageWarmup_, &QSpinBox::valueChanged, this, [this] { stageEdited(); });
    connect(lrChart_, &BlockLrChart::edited, this, [this] { stageEdited(); });
}

int RecipeForm::modelDepth() const {
    if (auto* spin = qobject_cast<QSpinBox*>(editors_.value("model.depth"))) return spin->value();
    return 0;
}

void RecipeForm::selectStage(int index) {
    selectedStage_ = stages_.empty() ? -1 : std::clamp(index, 0, int(stages_.size()) - 1);
    bool has = selectedStage_ >= 0;
    stageForm_->setVisible(has);
    removeStageButton_->setEnabled(has);
    upButton_->setEnabled(has && selectedStage_ > 0);
    downButton_->setEnabled(has && selectedStage_ + 1 < int(stages_.size()));
    lrChart_->setReadOnly(!has);
    loadingStage_ = true;
    if (has) {
        const auto& st = stages_[size_t(selectedStage_)];
        stageName_->setText(QString::fromStdString(st.name));
        stageMethod_->setCurrentText(QString::fromStdString(st.method));
        stageSteps_->setValue(int(std::min<int64_t>(st.steps, 100000000)));
        stageInit_->setCurrentText(QString::fromStdString(st.init));
        stageCheckpoint_->setText(QString::fromStdString(st.checkpoint));
        stageCheckpoint_->setEnabled(st.init == "checkpoint");
        stageModules_->setCurrentText(QString::fromStdString(st.initModules));
        stageLr_->setText(QString::number(st.baseLr, 'g', 10));
        stageWarmup_->setValue(int(st.warmupSteps));
        lrChart_->setMultipliers(st.embedLr, st.blockLr, st.headLr, modelDepth());
        QSignalBlocker block(stageTable_);
        stageTable_->selectRow(selectedStage_);
    } else {
        lrChart_->setMultipliers(1.0, {}, 1.0, modelDepth());
    }
    loadingStage_ = false;
}

void RecipeForm::stageEdited() {
    if (loadingStage_ || selectedStage_ < 0 || selectedStage_ >= int(stages_.size())) return;
    auto& st = stages_[size_t(selectedStage_)];
    st.name = stageName_->text().toStdString();
    st.method = stageMethod_->currentText().toStdString();
    st.steps = stageSteps_->value();
    st.init = stageInit_->currentText().toStdString();
    st.checkpoint = stageCheckpoint_->text().toStdString();
    stageCheckpoint_->setEnabled(st.init == "checkpoint");
    st.initModules = stageModules_->currentText().toStdString();
    bool ok = false;
    double lr = QLocale::c().toDouble(stageLr_->text().trimmed(), &ok);
    st.baseLr = ok ? lr : -1.0;  // not a number: reported by validate()
    st.warmupSteps = stageWarmup_->value();
    st.embedLr = lrChart_->embed();
    st.headLr = lrChart_->head();
    st.blockLr = lrChart_->blocks();
    int depth = modelDepth();
    if (!st.blockLr.empty() && depth > 0) st.blockLr.resize(size_t(depth), 1.0);
    refreshStageTable();
    revalidate();
}

void RecipeForm::addStage() {
    StageConfig st;
    if (stages_.empty()) {
        // The single-stage recipe becomes the first stage of a plan.
        StageConfig first;
        Recipe r = Recipe::fromJson(json(), lastIssues_);
        first.name = "stage 1: " + r.method;
        first.method = r.method;
        first.steps = r.train.steps;
        first.init = "random";
        stages_.push_back(first);
        st.method = r.method == "mae" ? "mocov3" : "mae";
        st.steps = r.train.steps;
    } else {
        st.method = stages_.back().method;
        st.steps = stages_.back().steps;
    }
    st.init = "previous";
    st.name = "stage " + std::to_string(stages_.size() + 1) + ": " + st.method;
    stages_.push_back(st);
    showStages();
    selectStage(int(stages_.size()) - 1);
    revalidate();
}

void RecipeForm::removeStage() {
    if (selectedStage_ < 0 || selectedStage_ >= int(stages_.size())) return;
    stages_.erase(stages_.begin() + selectedStage_);
    if (stages_.size() == 1) {
        // One stage left: back to a single-stage recipe with its method and steps.
        if (auto* m = qobject_cast<QComboBox*>(editors_.value("method"))) m->setCurrentText(QString::fromStdString(stages_[0].method));
        if (auto* s = qobject_cast<QSpinBox*>(editors_.value("train.steps"))) s->setValue(int(stages_[0].steps));
        stages_.clear();
    }
    showStages();
    selectStage(std::min(selectedStage_, int(stages_.size()) - 1));
    revalidate();
}

void RecipeForm::moveStage(int delta) {
    int to = selectedStage_ + delta;
    if (selectedStage_ < 0 || to < 0 || to >= int(stages_.size())) return;
    std::swap(stages_[size_t(selectedStage_)], stages_[size_t(to)]);
    showStages();
    selectStage(to);
    revalidate();
}

void RecipeForm::refreshStageTable() {
    QSignalBlocker block(stageTable_);
    stageTable_->setRowCount(int(stages_.size()));
    for (int i = 0; i < int(stages_.size()); ++i) {
        const auto& st = stages_[size_t(i)];
        QString init = QString::fromStdString(st.init == "checkpoint" ? "checkpoint " + st.checkpoint : st.init);
        QStringList cells = {QString::fromStdString(st.name), QString::fromStdString(st.method), QString::number(st.steps), init};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = stageTable_->item(i, c);
            if (!item) stageTable_->setItem(i, c, item = new QTableWidgetItem);
            item->setText(cells[c]);
        }
    }
    if (selectedStage_ >= 0 && selectedStage_ < int(stages_.size())) stageTable_->selectRow(selectedStage_);
}

void RecipeForm::showStages() {
    refreshStageTable();
    stageTable_->resizeColumnsToContents();
    bool staged = !stages_.empty();
    stageTable_->setVisible(staged);
    stageHint_->setText(staged ? tr("%1 stages, %2 steps in all. Select a stage to edit it; its learning-rate multipliers are the bars below.")
                                     .arg(stages_.size())
                                     .arg(std::accumulate(stages_.begin(), stages_.end(), int64_t(0),
                                                          [](int64_t a, const StageConfig& s) { return a + s.steps; }))
                               : tr("A single-stage recipe: one objective for every step, every block at the optimiser's lr. "
                                    "Add stage to graft (e.g. MAE, then MoCo v3 with the lower blocks at 0.1×)."));
    // The single-stage fields do not apply to a staged recipe.
    if (auto* m = editors_.value("method")) m->setEnabled(!staged);
    if (auto* s = editors_.value("train.steps")) s->setEnabled(!staged);
}

nlohmann::json RecipeForm::json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : recipeFields()) {
        QWidget* w = editors_.value(QString::fromStdString(f.path));
        auto ptr = pointer(f.path);
        if (auto* combo = qobject_cast<QComboBox*>(w)) j[ptr] = combo->currentText().toStdString();
        else if (auto* check = qobject_cast<QCheckBox*>(w)) j[ptr] = check->isChecked();
        else if (auto* spin = qobject_cast<QSpinBox*>(w)) j[ptr] = spin->value();
        else if (auto* line = qobject_cast<QLineEdit*>(w)) {
            if (f.kind == "number") {
                bool ok = false;
                double v = QLocale::c().toDouble(line->text().trimmed(), &ok);
                j[ptr] = ok ? nlohmann::json(v) : nlohmann::json(line->text().toStdString());  // a string: reported as a type error
            } else {
                j[ptr] = line->text().toStdString();
            }
        }
    }
    return j;
}

Recipe RecipeForm::recipe(std::vector<RecipeIssue>* issues) const {
    std::vector<RecipeIssue> local;
    Recipe r = Recipe::fromJson(json(), local);
    r.stages = stages_;
    for (auto& v : r.validate()) local.push_back(v);
    if (issues) *issues = local;
    return r;
}

QString RecipeForm::issuesText() const {
    QStringList lines;
    for (const auto& i : lastIssues_) lines << QString::fromStdString(i.field + ": " + i.message);
    return lines.join('\n');
}

void RecipeForm::revalidate() {
    if (loading_) return;
    if (modelDepth() != lastDepth_ && modelDepth() > 0) {
        // The depth was edited: per-block multipliers follow (new top blocks at 1, removed ones dropped).
        for (auto& st : stages_)
            if (!st.blockLr.empty()) st.blockLr.resize(size_t(modelDepth()), 1.0);
        lastDepth_ = modelDepth();
        selectStage(selectedStage_);
    }
    recipe(&lastIssues_);
    for (auto* w : editors_) {
        w->setStyleSheet({});
        w->setToolTip(w->property("baseTip").toString());
    }
    for (const auto& i : lastIssues_)
        if (auto* w = editors_.value(QString::fromStdString(i.field))) {
            w->setStyleSheet("background: #ffebee;");
            w->setToolTip(w->toolTip() + "<br><font color='#c62828'>" + QString::fromStdString(i.message).toHtmlEscaped() +
                          "</font>");
        }
    issues_->setText(issuesText());
    issues_->setVisible(!lastIssues_.empty());
    bool valid = lastIssues_.empty();
    if (valid != valid_) {
        valid_ = valid;
        emit validityChanged(valid_);
    }
    emit changed();
}

}  // namespace graftlab
