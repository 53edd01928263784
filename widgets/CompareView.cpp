#include "CompareView.h"
#include "PlotExport.h"
#include "RunCurves.h"
#include "base/recipe/Recipe.h"
#include "base/run/EvalResults.h"
#include "base/run/RunLayout.h"

#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include <QCheckBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSaveFile>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>
#include <QProgressBar>

#include <cmath>

namespace graftlab {

namespace {
QString protocolTitle(const QString& p) {
    if (p == "linear") return QObject::tr("linear probe");
    if (p == "fewshot") return QObject::tr("1% few-shot");
    if (p == "knn") return QObject::tr("k-NN");
    if (p == "finetune") return QObject::tr("fine-tune");
    return p;
}
QColor runColour(int i) {
    static const QColor palette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                     QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127),
                                     QColor(188, 189, 34), QColor(23, 190, 207)};
    return palette[i % 10];
}
const int kFixedColumns = 4;  // run, method, step, dataset
}  // namespace

const QStringList& CompareView::protocols() {
    static const QStringList p = [] {
        QStringList out;
        for (const auto& k : kProtocols) out << QString::fromStdString(k);
        return out;
    }();
    return p;
}

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    add_ = new QPushButton(tr("Add run…"));
    add_->setToolTip(tr("Add a run directory (trained here or with graftlab-cli) to the comparison, or a folder of runs "
                        "(a table's or a sweep's): every run in it"));
    remove_ = new QPushButton(tr("Remove"));
    remove_->setToolTip(tr("Remove the selected runs from the comparison (nothing is deleted on disk)"));
    evaluate_ = new QPushButton(tr("Evaluate"));
    evaluate_->setToolTip(tr("Run the checked protocols on the newest checkpoint of the selected runs (all runs when none is "
                             "selected); results are merged into the run's checkpoints/eval.json, as graftlab-cli eval does"));
    auto* top = new QHBoxLayout;
    top->addWidget(add_);
    top->addWidget(remove_);
    top->addSpacing(12);
    for (const auto& p : protocols()) {
        auto* box = new QCheckBox(protocolTitle(p));
        box->setChecked(p != "finetune");
        box->setObjectName("protocol." + p);
        box->setToolTip(p == "linear"     ? tr("Linear classifier on frozen features (lr chosen on a held-out tenth of the training split)")
                        : p == "fewshot"  ? tr("Logistic regression on a class-balanced 1% of the training labels")
                        : p == "knn"      ? tr("k-nearest-neighbour vote (k = 20, cosine, temperature 0.07) on frozen features")
                                          : tr("End-to-end fine-tuning with layer-wise lr decay (slow: trains the whole encoder)"));
        protocolBoxes_.insert(p, box);
        top->addWidget(box);
    }
    finetuneSteps_ = new QSpinBox;
    finetuneSteps_->setRange(1, 1000000);
    finetuneSteps_->setValue(300);
    finetuneSteps_->setPrefix(tr("fine-tune steps "));
    finetuneSteps_->setToolTip(tr("Optimiser steps of the fine-tuning protocol"));
    top->addWidget(finetuneSteps_);
    top->addStretch();
    top->addWidget(evaluate_);

    table_ = new QTableWidget(0, kFixedColumns + int(protocols().size()));
    QStringList headers = {tr("run"), tr("method"), tr("step"), tr("dataset")};
    for (const auto& p : protocols()) headers << protocolTitle(p) + tr(" top-1 %");
    table_->setHorizontalHeaderLabels(headers);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->setVisible(false);
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setContextMenuPolicy(Qt::ActionsContextMenu);
    auto* csv = new QAction(tr("Export table as CSV…"), table_);
    connect(csv, &QAction::triggered, this, [this] {
        QString path = QFileDialog::getSaveFileName(this, tr("Export comparison"), "comparison.csv", tr("CSV (*.csv)"));
        if (path.isEmpty()) return;
        QString err = exportCsv(path);
        if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
    });
    table_->addAction(csv);

    plot_ = new QCustomPlot;
    plot_->yAxis->setLabel(tr("top-1 accuracy (%)"));
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 8));
    // the legend beside the bars, not over them (a table's nine runs covered the fine-tuning group)
    plot_->axisRect()->insetLayout()->take(plot_->legend);
    auto* side = new QCPLayoutGrid;  // the legend at the top of the column, the rest of it empty
    plot_->plotLayout()->addElement(0, 1, side);
    plot_->plotLayout()->setColumnStretchFactor(1, 0.001);
    side->addElement(0, 0, plot_->legend);
    side->addElement(1, 0, new QCPLayoutElement(plot_));
    side->setRowStretchFactor(0, 0.001);
    side->setMargins(QMargins(0, 0, 6, 0));  // the legend's right border inside the widget
    plot_->legend->setMargins(QMargins(4, 2, 4, 2));
    plot_->setToolTip(tr("Top-1 test accuracy per protocol, one bar per run (a run's seeds: their mean ± sd)"));
    installPlotExportMenu(plot_, "comparison");

    status_ = new QLabel;
    status_->setWordWrap(true);
    status_->setStyleSheet("color: gray;");

    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(table_);
    split->addWidget(plot_);
    split->setStretchFactor(1, 2);
    progress_ = new QProgressBar;
    progress_->setFormat(tr("%v of %m evaluations"));
    progress_->setVisible(false);
    cancel_ = new QPushButton(tr("Cancel"));
    cancel_->setToolTip(tr("Stop now: a fine-tuning stops at its next step and keeps its state beside the checkpoint, so Evaluate "
                           "with the same steps continues it (finished evaluations are kept in each run's eval.json)"));
    cancel_->setVisible(false);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        cancel_->setEnabled(false);
        status_->setText(tr("Cancelling…"));
        emit cancelRequested();
    });
    seedsTogether_ = new QCheckBox(tr("Mean of seeds"));
    seedsTogether_->setChecked(true);
    seedsTogether_->setToolTip(tr("Runs named NAME-seed0, NAME-seed1, … (a table's or a sweep's seeds) drawn as one bar: "
                                  "their mean, with whiskers of ± one sample standard deviation. The table lists every seed."));
    connect(seedsTogether_, &QCheckBox::toggled, this, [this] { refresh(); });
    auto* bottom = new QHBoxLayout;
    bottom->addWidget(seedsTogether_);
    bottom->addWidget(status_, 1);
    bottom->addWidget(progress_);
    bottom->addWidget(cancel_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(split, 1);
    layout->addLayout(bottom);

    connect(add_, &QPushButton::clicked, this, [this] {
        QString dir = QFileDialog::getExistingDirectory(this, tr("Add a run directory or a folder of runs"));
        if (dir.isEmpty()) return;
        QString err;
        if (!addRun(dir, &err)) QMessageBox::warning(this, tr("No run there"), err);
    });
    connect(remove_, &QPushButton::clicked, this, [this] {
        QStringList dirs;
        for (auto* item : table_->selectedItems())
            if (item->column() == 0) dirs << item->data(Qt::UserRole).toString();
        for (const auto& d : dirs) removeRun(d);
    });
    connect(evaluate_, &QPushButton::clicked, this, [this] {
        QStringList protocols = checkedProtocols();
        if (protocols.isEmpty() || runs_.isEmpty()) return;
        emit evaluateRequested(selectedRuns(), protocols, finetuneSteps_->value());
    });
    for (auto* box : protocolBoxes_) connect(box, &QCheckBox::toggled, this, [this] { setBusy(false); });

    for (const auto& d : QSettings().value("compare/runs").toStringList())
        if (RunLayout(d.toStdString()).holdsRun()) runs_.push_back(readRun(d));
    refresh();
    setBusy(false);
}

CompareView::Run CompareView::readRun(const QString& dir) {
    Run r;
    r.dir = QDir(dir).absolutePath();
    r.name = QFileInfo(r.dir).fileName();
    QFile recipe(QString::fromStdString(RunLayout(dir.toStdString()).recipe()));
    if (recipe.open(QIODevice::ReadOnly)) {
        auto j = nlohmann::json::parse(recipe.readAll().toStdString(), nullptr, false);
        try {
            if (j.is_object()) {
                if (j.contains("stages") && j["stages"].is_array() && !j["stages"].empty()) {
                    QStringList methods;
                    for (const auto& st : j["stages"]) methods << QString::fromStdString(st.value("method", std::string("?")));
                    r.method = methods.join(QStringLiteral("→"));
                } else {
                    r.method = QString::fromStdString(j.value("method", std::string()));
                }
                if (j.contains("data") && j["data"].is_object())
                    r.dataset = QString::fromStdString(j["data"].value("dataset", std::string()));
            }
        } catch (const std::exception&) {
            r.method = QStringLiteral("?");  // a recipe of another shape: the run is still listed
        }
    }
    // Not evaluated yet: the step of the newest checkpoint (its name says it), which Evaluate would take
    const QDir ckpts(QString::fromStdString(RunLayout(dir.toStdString()).checkpoints()));
    for (const QString& f : ckpts.entryList({"step-*.ckpt"}, QDir::Files)) {
        bool ok = false;
        const qint64 s = f.mid(5, f.size() - 10).toLongLong(&ok);
        if (ok) r.step = std::max(r.step, s);
    }
    // the newest evaluated checkpoint; entries of another shape (hand-edited files) are left out by the reader
    const EvalFile ev = EvalFile::read(RunLayout(dir.toStdString()).evalJson());
    if (const auto* newest = ev.newest()) {
        const EvalReport& e = newest->second;
        r.step = e.step;
        r.stepEvaluated = true;
        r.checkpoint = QString::fromStdString(newest->first);
        if (!e.dataset.empty()) r.dataset = QString::fromStdString(e.dataset);
        for (const auto& w : e.warnings) r.warnings << QString::fromStdString(w);
        for (const auto& p : e.results) r.top1.insert(QString::fromStdString(p.protocol), p.top1);
    }
    return r;
}

bool CompareView::addRun(const QString& dir, QString* error) {
    // A sweep's folder: every run it lists, at once.
    QFile sweep(QString::fromStdString(RunLayout::sweepIndex(dir.toStdString())));
    if (!RunLayout(dir.toStdString()).holdsRun() && sweep.open(QIODevice::ReadOnly)) {
        auto j = nlohmann::json::parse(sweep.readAll().toStdString(), nullptr, false);
        int added = 0;
        if (j.is_object() && j.contains("runs") && j["runs"].is_array())
            for (const auto& name : j["runs"])
                if (name.is_string()) added += addRun(QDir(dir).filePath(QString::fromStdString(name.get<std::string>())));
        if (added == 0 && error) *error = tr("%1: the sweep lists no run directory that holds a run yet").arg(dir);
        return added > 0;
    }
    if (!RunLayout(dir.toStdString()).holdsRun()) {
        // A table's folder (or any folder of runs): every run in it or in its folders.
        int added = 0;
        for (const QString& d : runDirsUnder(dir)) added += addRun(d) ? 1 : 0;
        if (added == 0 && error) *error = tr("%1 holds no run (no recipe.json in it or in its folders)").arg(dir);
        return added > 0;
    }
    Run r = readRun(dir);
    for (auto& existing : runs_)
        if (existing.dir == r.dir) {
            existing = r;
            refresh();
            return true;
        }
    runs_.push_back(r);
    refresh();
    emit runsChanged();
    return true;
}

void CompareView::removeRun(const QString& dir) {
    QString abs = QDir(dir).absolutePath();
    runs_.erase(std::remove_if(runs_.begin(), runs_.end(), [&](const Run& r) { return r.dir == abs; }), runs_.end());
    refresh();
    emit runsChanged();
}

void CompareView::reload(const QString& dir) {
    QString abs = QDir(dir).absolutePath();
    for (auto& r : runs_)
        if (r.dir == abs) r = readRun(abs);
    refresh();
}

QStringList CompareView::runs() const {
    QStringList out;
    for (const auto& r : runs_) out << r.dir;
    return out;
}

QStringList CompareView::selectedRuns() const {
    QStringList out;
    for (auto* item : table_->selectedItems())
        if (item->column() == 0) out << item->data(Qt::UserRole).toString();
    return out.isEmpty() ? runs() : out;
}

int CompareView::rowCount() const { return int(runs_.size()); }

std::optional<double> CompareView::value(const QString& dir, const QString& protocol) const {
    QString abs = QDir(dir).absolutePath();
    for (const auto& r : runs_)
        if (r.dir == abs && r.top1.contains(protocol)) return r.top1.value(protocol);
    return std::nullopt;
}

QStringList CompareView::checkedProtocols() const {
    QStringList out;
    for (const auto& p : protocols())
        if (protocolBoxes_.value(p)->isChecked()) out << p;
    return out;
}

int CompareView::finetuneSteps() const { return finetuneSteps_->value(); }

void CompareView::setProgress(int done, int total) {
    progress_->setRange(0, std::max(1, total));
    progress_->setValue(std::clamp(done, 0, std::max(1, total)));
}

void CompareView::setBusy(bool busy, const QString& text) {
    progress_->setVisible(busy);
    cancel_->setVisible(busy);
    if (!busy) cancel_->setEnabled(true);
    evaluate_->setEnabled(!busy && !runs_.isEmpty() && !checkedProtocols().isEmpty());
    add_->setEnabled(!busy);
    remove_->setEnabled(!busy && !runs_.isEmpty());
    for (auto* box : protocolBoxes_) box->setEnabled(!busy);
    finetuneSteps_->setEnabled(!busy);
    if (!text.isEmpty()) status_->setText(text);
    else if (!busy)
        status_->setText(runs_.isEmpty() ? tr("No runs yet. Add run… picks a run directory; a run trained here is added when it ends.")
                                         : tr("%1. Select rows to evaluate only those; right-click the chart or the table to export.")
                                               .arg(runs_.size() == 1 ? tr("1 run") : tr("%1 runs").arg(runs_.size())));
}

void CompareView::refresh() {
    QStringList dirs;
    for (const auto& r : runs_) dirs << r.dir;
    QSettings().setValue("compare/runs", dirs);

    // Seeds drawn together: a group per folder and NAME of NAME-seedN (two tables' mae-seed0 stay apart), in the
    // order of their first run; its colour that run's.
    struct Group {
        QString key, label;
        int first = 0;
        QVector<int> members;
    };
    QVector<Group> groups;
    QVector<int> groupOf(runs_.size());
    const bool together = seedsTogether_->isChecked();
    for (int i = 0; i < int(runs_.size()); ++i) {
        const QString folder = QFileInfo(runs_[i].dir).path();
        const QString key = together ? folder + '/' + seedGroup(runs_[i].name) : runs_[i].dir;
        int k = 0;
        while (k < groups.size() && groups[k].key != key) ++k;
        if (k == groups.size()) groups.push_back({key, together ? seedGroup(runs_[i].name) : runs_[i].name, i, {}});
        groups[k].members << i;
        groupOf[i] = k;
    }
    QMap<QString, int> labelled;  // the same NAME in two folders: each bar named with its folder
    for (const auto& g : groups) ++labelled[g.label];
    for (auto& g : groups) {
        const bool shared = together && labelled.value(g.label) > 1;
        if (g.members.size() == 1) g.label = runs_[g.first].name;  // a lone seed keeps its run's name
        if (shared) g.label = QFileInfo(QFileInfo(runs_[g.first].dir).path()).fileName() + '/' + g.label;
    }
    table_->setRowCount(int(runs_.size()));
    for (int i = 0; i < int(runs_.size()); ++i) {
        const auto& r = runs_[i];
        // the newest checkpoint's step before it is evaluated: the number alone, in grey italics, with why in its tooltip
        // (a longer text widened the column and pushed the protocols behind a scroll bar)
        QString step = r.step < 0 ? QString() : QString::number(r.step);
        QStringList cells = {r.name, r.method, step, r.dataset};
        for (const auto& p : protocols()) cells << (r.top1.contains(p) ? QString::number(100.0 * r.top1.value(p), 'f', 1) : tr("—"));
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (c == 0) {
                item->setData(Qt::UserRole, r.dir);
                item->setToolTip(r.checkpoint.isEmpty() ? tr("%1\nnot evaluated yet").arg(r.dir) : tr("%1\n%2").arg(r.dir, r.checkpoint));
                item->setForeground(runColour(groups[groupOf[i]].first));
                if (!r.warnings.isEmpty()) {  // flagged where the numbers are read, not only in the log
                    item->setText(QStringLiteral("⚠ ") + r.name);
                    item->setToolTip(item->toolTip() + QStringLiteral("\n\n") + tr("Warning: %1").arg(r.warnings.join(QStringLiteral("\n"))));
                }
            }
            if (c == 2 && r.step >= 0 && !r.stepEvaluated) {
                QFont f = item->font();
                f.setItalic(true);
                item->setFont(f);
                item->setForeground(palette().color(QPalette::Disabled, QPalette::Text));
                item->setToolTip(tr("Step %1: the newest checkpoint, not evaluated yet (Evaluate evaluates it)").arg(r.step));
            }
            if (c >= kFixedColumns) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            table_->setItem(i, c, item);
        }
    }
    table_->resizeColumnsToContents();

    plot_->clearPlottables();
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int k = 0; k < protocols().size(); ++k) ticker->addTick(k, protocolTitle(protocols()[k]));
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setRange(-0.6, protocols().size() - 0.4);
    auto* group = new QCPBarsGroup(plot_);
    group->setSpacingType(QCPBarsGroup::stAbsolute);
    group->setSpacing(1);
    double top = 0;
    int withResults = 0;
    double width = std::min(0.3, 0.8 / std::max<int>(1, int(groups.size())));
    for (const Group& g : groups) {
        // per protocol: the members' values (in %), drawn as their mean with ± one sample sd where there are several
        QVector<double> keys, values, errors;
        int seeds = 0;
        for (int i : g.members) seeds += runs_[i].top1.isEmpty() ? 0 : 1;
        if (seeds == 0) continue;
        for (int k = 0; k < protocols().size(); ++k) {
            QVector<double> v;
            for (int i : g.members)
                if (runs_[i].top1.contains(protocols()[k])) v << 100.0 * runs_[i].top1.value(protocols()[k]);
            if (v.isEmpty()) continue;
            double mean = 0, ss = 0;
            for (double x : v) mean += x / v.size();
            for (double x : v) ss += (x - mean) * (x - mean);
            keys << k;
            values << mean;
            errors << (v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0.0);
            top = std::max(top, mean + errors.back());
        }
        ++withResults;
        auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
        const bool several = g.members.size() > 1;
        bars->setName(several ? tr("%1 (%n seeds)", nullptr, seeds).arg(g.label) : g.label);
        bars->setWidth(width);
        bars->setPen(QPen(runColour(g.first).darker(130)));
        bars->setBrush(runColour(g.first));
        bars->setBarsGroup(group);
        bars->setData(keys, values);
        if (several) {
            auto* whiskers = new QCPErrorBars(plot_->xAxis, plot_->yAxis);
            whiskers->removeFromLegend();
            whiskers->setDataPlottable(bars);
            whiskers->setData(errors);
            whiskers->setPen(QPen(Qt::black, 1.2));
            whiskers->setWhiskerWidth(6);
        }
    }
    plot_->yAxis->setRange(0, top > 0 ? std::min(100.0, top * 1.12 + 2) : 100);
    plot_->legend->setVisible(withResults > 0);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    setBusy(false);
}

QString CompareView::exportCsv(const QString& path) const {
    QSaveFile out(path);
    if (!out.open(QIODevice::WriteOnly | QIODevice::Text)) return tr("%1: cannot be written: %2").arg(path, out.errorString());
    QTextStream ts(&out);
    QStringList header = {"run", "method", "step", "dataset", "checkpoint"};
    for (const auto& p : protocols()) header << p + "_top1";
    ts << header.join(',') << '\n';
    for (const auto& r : runs_) {
        QStringList cells = {r.dir, r.method, QString::number(r.step), r.dataset, r.checkpoint};
        for (const auto& p : protocols()) cells << (r.top1.contains(p) ? QString::number(r.top1.value(p), 'g', 6) : QString());
        for (auto& c : cells)
            if (c.contains(',') || c.contains('"')) c = '"' + QString(c).replace("\"", "\"\"") + '"';
        ts << cells.join(',') << '\n';
    }
    ts.flush();
    return out.commit() ? QString() : tr("%1: cannot be written: %2").arg(path, out.errorString());
}

}  // namespace graftlab
