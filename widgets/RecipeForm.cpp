#include "RecipeForm.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleValidator>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QScrollArea>
#include <QHeaderView>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

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
    stageBox_ = new QGroupBox(tr("Stages (grafting plan)"));
    stageBox_->setToolTip(tr("The stages of a multi-stage recipe: objective, length, initialisation and learning-rate "
                             "multipliers (embedding / each block / head; 0 = frozen). Edit them in the recipe file."));
    auto* stageLayout = new QVBoxLayout(stageBox_);
    stageTable_ = new QTableWidget(0, 5);
    stageTable_->setHorizontalHeaderLabels({tr("name"), tr("method"), tr("steps"), tr("init"), tr("lr × (embed | blocks | head)")});
    stageTable_->horizontalHeader()->setStretchLastSection(true);
    stageTable_->verticalHeader()->setVisible(false);
    stageTable_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    stageTable_->setMinimumHeight(100);
    stageTable_->setMaximumHeight(130);
    stageLayout->addWidget(stageTable_);
    innerLayout->insertWidget(1, stageBox_);
    innerLayout->addStretch();
    auto* scroll = new QScrollArea;
    scroll->setWidget(inner);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);

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
    showStages();
    loading_ = false;
    revalidate();
}

void RecipeForm::showStages() {
    stageBox_->setVisible(!stages_.empty());
    stageTable_->setRowCount(int(stages_.size()));
    for (int i = 0; i < int(stages_.size()); ++i) {
        const auto& st = stages_[size_t(i)];
        QStringList blocks;
        for (double m : st.blockLr) blocks << QString::number(m);
        QString init = QString::fromStdString(st.init == "checkpoint" ? "checkpoint " + st.checkpoint : st.init);
        QStringList cells = {QString::fromStdString(st.name), QString::fromStdString(st.method), QString::number(st.steps), init,
                             QStringLiteral("%1 | %2 | %3").arg(st.embedLr).arg(blocks.isEmpty() ? "1 each" : blocks.join(' ')).arg(st.headLr)};
        for (int c = 0; c < cells.size(); ++c) stageTable_->setItem(i, c, new QTableWidgetItem(cells[c]));
    }
    stageTable_->resizeColumnsToContents();
    // The single-stage fields do not apply to a staged recipe.
    if (auto* m = editors_.value("method")) m->setEnabled(stages_.empty());
    if (auto* s = editors_.value("train.steps")) s->setEnabled(stages_.empty());
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
