#include "RunOverlayView.h"
#include "LossPlotView.h"
#include "PlotExport.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPainter>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QVBoxLayout>

#include <cmath>
#include <limits>
#include <map>

namespace graftlab {

namespace {
// Colours of the runs (matplotlib's tab10): a run keeps its colour while it is listed.
const QList<QColor> kRunColours = {QColor(31, 119, 180), QColor(214, 39, 40),   QColor(44, 160, 44),  QColor(148, 103, 189),
                                   QColor(255, 127, 14), QColor(140, 86, 75),   QColor(227, 119, 194), QColor(127, 127, 127),
                                   QColor(188, 189, 34), QColor(23, 190, 207)};

QIcon swatch(const QColor& c) {
    QPixmap pm(14, 14);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setPen(c.darker(130));
    p.setBrush(c);
    p.drawRect(1, 1, 11, 11);
    return QIcon(pm);
}

bool isLossKey(const QString& key) { return key == "loss" || key.startsWith("loss/"); }

// The box's order: losses, learning rates, throughput and the rest of the metrics, then gradient cosines.
int keyRank(const QString& key) {
    if (key == "loss") return 0;
    if (key.startsWith("loss/")) return 1;
    if (key == "lr") return 2;
    if (key.startsWith("lr/")) return 3;
    if (key == "images_per_s") return 4;
    return 5;
}
}  // namespace

RunOverlayView::RunOverlayView(QWidget* parent) : QWidget(parent) {
    list_ = new QListWidget(this);
    list_->setToolTip(tr("Runs to draw: tick to show; each run keeps its colour. Add a run directory, or a sweep's or a "
                         "table's folder to list all of its runs."));
    list_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    addButton_ = new QPushButton(tr("&Add runs…"), this);
    addButton_->setToolTip(tr("A run directory, or a folder of runs (a sweep's or a table's): every run in it is listed"));
    removeButton_ = new QPushButton(tr("Remove"), this);
    removeButton_->setToolTip(tr("Take the selected runs off the list (nothing is deleted on disk)"));
    connect(addButton_, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Add a run, or a folder of runs"));
        if (dir.isEmpty()) return;
        if (addRunsUnder(dir) == 0)
            QMessageBox::warning(this, tr("Add runs"), tr("%1 holds no run (no recipe.json in it or in its folders).").arg(dir));
    });
    connect(removeButton_, &QPushButton::clicked, this, [this] {
        QStringList gone;
        for (auto* item : list_->selectedItems()) gone << item->data(Qt::UserRole).toString();
        for (const auto& d : gone) removeRun(d);
    });
    connect(list_, &QListWidget::itemChanged, this, [this](QListWidgetItem*) {
        if (restoring_) return;
        saveRuns();
        redraw();
    });

    curveBox_ = new QComboBox(this);
    curveBox_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    curveBox_->setToolTip(tr("The curve drawn for every ticked run: a metric of metrics.jsonl; grad cos · GROUP: the mean cosine "
                             "between the MIM and the CL gradient of a parameter group over the probe images (runs with both "
                             "losses); grad cos · depth profile: that cosine per group, input to output, in each run's last phase"));
    connect(curveBox_, &QComboBox::currentIndexChanged, this, [this] {
        wantedCurve_ = curve();
        if (!restoring_) QSettings().setValue("overlay/curve", wantedCurve_);
        redraw();
    });
    axisBox_ = new QComboBox(this);
    axisBox_->addItem(tr("step"), int(OverlayAxis::Step));
    axisBox_->addItem(tr("training time"), int(OverlayAxis::WallTime));
    axisBox_->addItem(tr("fraction of training"), int(OverlayAxis::Fraction));
    axisBox_->setToolTip(tr("x-axis: the step; the training wall time from each run's start (from its logged images/s, "
                            "probes included; on the machine that ran it); or the share of the run's planned steps"));
    connect(axisBox_, &QComboBox::currentIndexChanged, this, [this](int i) {
        axis_ = OverlayAxis(axisBox_->itemData(i).toInt());
        if (!restoring_) QSettings().setValue("overlay/axis", int(axis_));
        redraw();
    });
    smoothingBox_ = new QDoubleSpinBox(this);
    smoothingBox_->setRange(0, 0.99);
    smoothingBox_->setSingleStep(0.1);
    smoothingBox_->setValue(smoothing_);
    smoothingBox_->setToolTip(tr("Exponential moving average of the losses (TensorBoard's, debiased); 0 = raw"));
    connect(smoothingBox_, &QDoubleSpinBox::valueChanged, this, [this](double v) {
        smoothing_ = v;
        redraw();
    });
    seedsBox_ = new QCheckBox(tr("Mean of seeds"), this);
    seedsBox_->setChecked(true);
    seedsBox_->setToolTip(tr("Ticked runs named NAME-seed0, NAME-seed1, … in one folder (a table's or a sweep's seeds) drawn as "
                             "one curve: their mean at the steps they all logged, in a band of ± one sample standard deviation"));
    connect(seedsBox_, &QCheckBox::toggled, this, [this] { redraw(); });
    logBox_ = new QCheckBox(tr("Log scale"), this);
    logBox_->setToolTip(tr("Logarithmic y-axis (losses, learning rates)"));
    connect(logBox_, &QCheckBox::toggled, this, [this] { redraw(); });

    plot_ = new QCustomPlot(this);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    placeLegendAbove(plot_, 3);
    installPlotExportMenu(plot_, "runs");
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) { showReadoutAt(plot_->xAxis->pixelToCoord(e->position().x())); });
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    note_->setStyleSheet("color: gray;");
    readout_ = new QLabel(this);
    readout_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    readout_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    readout_->setToolTip(tr("Each run's value nearest to the mouse"));

    auto* left = new QWidget(this);
    auto* ll = new QVBoxLayout(left);
    ll->setContentsMargins(0, 0, 0, 0);
    ll->addWidget(new QLabel(tr("Runs"), left));
    ll->addWidget(list_, 1);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(addButton_);
    buttons->addWidget(removeButton_);
    ll->addLayout(buttons);
    ll->addWidget(seedsBox_);

    auto* right = new QWidget(this);
    auto* rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    auto* controls = new QHBoxLayout;
    auto* curveLabel = new QLabel(tr("&Curve:"), right);
    curveLabel->setBuddy(curveBox_);
    controls->addWidget(curveLabel);
    controls->addWidget(curveBox_);
    controls->addSpacing(8);
    auto* axisLabel = new QLabel(tr("&x-axis:"), right);
    axisLabel->setBuddy(axisBox_);
    controls->addWidget(axisLabel);
    controls->addWidget(axisBox_);
    controls->addSpacing(8);
    controls->addWidget(new QLabel(tr("Smoothing"), right));
    controls->addWidget(smoothingBox_);
    controls->addWidget(logBox_);
    controls->addStretch(1);
    rl->addLayout(controls);
    rl->addWidget(plot_, 1);
    rl->addWidget(readout_);
    rl->addWidget(note_);

    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 1);
    split->setSizes({190, 900});
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(split);

    poll_.setInterval(2000);
    connect(&poll_, &QTimer::timeout, this, [this] {
        if (isVisible()) reload();
    });
    poll_.start();
    rebuildCurveBox();
    redraw();
}

int RunOverlayView::indexOf(const QString& dir) const {
    const QString abs = QDir(dir).absolutePath();
    for (int i = 0; i < entries_.size(); ++i)
        if (entries_[i].curves.dir == abs) return i;
    return -1;
}

QColor RunOverlayView::nextColour() const {
    for (const QColor& c : kRunColours) {
        bool used = false;
        for (const auto& e : entries_) used = used || e.colour == c;
        if (!used) return c;
    }
    return kRunColours[entries_.size() % kRunColours.size()];
}

bool RunOverlayView::addRun(const QString& dir, bool checked, QString* error) {
    const int at = indexOf(dir);
    if (at >= 0) {
        if (checked) setChecked(dir, true);
        return true;
    }
    RunCurves c = RunCurves::load(dir);
    if (c.metricsBytes < 0 && !c.error.isEmpty()) {
        if (error) *error = c.error;
        return false;
    }
    Entry e;
    e.colour = nextColour();
    e.curves = std::move(c);
    e.item = new QListWidgetItem(swatch(e.colour), e.curves.label);
    e.item->setToolTip(e.curves.error.isEmpty() ? e.curves.dir : e.curves.dir + "\n" + e.curves.error);
    e.item->setData(Qt::UserRole, e.curves.dir);
    e.item->setFlags(e.item->flags() | Qt::ItemIsUserCheckable);
    restoring_ = true;
    e.item->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
    list_->addItem(e.item);
    restoring_ = false;
    entries_.append(std::move(e));
    saveRuns();
    rebuildCurveBox();
    redraw();
    emit runsChanged();
    return true;
}

int RunOverlayView::addRunsUnder(const QString& dir, bool checked) {
    int n = 0;
    for (const QString& d : runDirsUnder(dir)) n += addRun(d, checked) ? 1 : 0;
    return n;
}

void RunOverlayView::removeRun(const QString& dir) {
    const int at = indexOf(dir);
    if (at < 0) return;
    delete entries_[at].item;
    entries_.removeAt(at);
    saveRuns();
    rebuildCurveBox();
    redraw();
    emit runsChanged();
}

QStringList RunOverlayView::runs() const {
    QStringList out;
    for (const auto& e : entries_) out << e.curves.dir;
    return out;
}

QStringList RunOverlayView::checkedRuns() const {
    QStringList out;
    for (const auto& e : entries_)
        if (e.item->checkState() == Qt::Checked) out << e.curves.dir;
    return out;
}

void RunOverlayView::setChecked(const QString& dir, bool checked) {
    const int at = indexOf(dir);
    if (at >= 0) entries_[at].item->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
}

QColor RunOverlayView::colourOf(const QString& dir) const {
    const int at = indexOf(dir);
    return at >= 0 ? entries_[at].colour : QColor();
}

QStringList RunOverlayView::curveKeys() const {
    QStringList metrics, groups;
    bool profile = false;
    for (const auto& e : entries_) {
        for (auto it = e.curves.values.constBegin(); it != e.curves.values.constEnd(); ++it)
            if (!metrics.contains(it.key()) && it.key() != "probe_share") metrics << it.key();
        for (const auto& g : e.curves.groups)
            if (!groups.contains(g)) groups << g;
        profile = profile || !e.curves.profile.phases.empty();
    }
    std::stable_sort(metrics.begin(), metrics.end(), [](const QString& a, const QString& b) {
        return keyRank(a) != keyRank(b) ? keyRank(a) < keyRank(b) : a < b;
    });
    // the whole encoder first, then the groups from the input up (the order of the first run that has them)
    if (groups.removeAll("encoder") > 0) groups.prepend("encoder");
    QStringList keys = metrics;
    for (const auto& g : groups) keys << "cos:" + g;
    if (profile) keys << "profile";
    return keys;
}

QString RunOverlayView::curveLabel(const QString& key) {
    if (key == "profile") return tr("grad cos · depth profile");
    if (key.startsWith("cos:")) return tr("grad cos · %1").arg(key.mid(4));
    if (key == "lr") return tr("learning rate");
    if (key.startsWith("lr/")) return tr("learning rate %1").arg(key.mid(3));
    if (key == "images_per_s") return tr("images/s");
    return key;
}

QString RunOverlayView::curve() const { return curveBox_->currentData().toString(); }

void RunOverlayView::setCurve(const QString& key) {
    wantedCurve_ = key;  // kept for when a run that holds it is listed
    const int i = curveBox_->findData(key);
    if (i >= 0) curveBox_->setCurrentIndex(i);
}

void RunOverlayView::setAxis(OverlayAxis axis) { axisBox_->setCurrentIndex(axisBox_->findData(int(axis))); }

void RunOverlayView::setSmoothing(double weight) { smoothingBox_->setValue(weight); }

void RunOverlayView::rebuildCurveBox() {
    // the curve chosen last (by the user, or restored), while the runs hold it; else the loss
    const QStringList keys = curveKeys();
    QSignalBlocker block(curveBox_);
    curveBox_->clear();
    for (const auto& k : keys) curveBox_->addItem(curveLabel(k), k);
    int i = curveBox_->findData(wantedCurve_);
    if (i < 0) i = curveBox_->findData(QStringLiteral("loss"));
    curveBox_->setCurrentIndex(i >= 0 ? i : 0);
    curveBox_->setEnabled(!keys.isEmpty());
}

QCPGraph* RunOverlayView::series(const QString& dir) const {
    const QString abs = QDir(dir).absolutePath();
    for (int i = 0; i < plot_->graphCount(); ++i)
        if (plot_->graph(i)->property("main").toBool() &&
            (plot_->graph(i)->property("run").toString() == abs || plot_->graph(i)->property("runs").toStringList().contains(abs)))
            return plot_->graph(i);
    return nullptr;
}

int RunOverlayView::seriesCount() const {
    int n = 0;
    for (int i = 0; i < plot_->graphCount(); ++i) n += plot_->graph(i)->property("main").toBool() ? 1 : 0;
    return n;
}

QString RunOverlayView::noteText() const { return note_->text(); }
QString RunOverlayView::readout() const { return readout_->text(); }

void RunOverlayView::redraw() {
    plot_->clearGraphs();
    plot_->clearItems();
    stageLines_ = 0;
    readout_->clear();
    const QString key = curve();
    const bool profile = key == "profile";
    axisBox_->setEnabled(!profile);
    smoothingBox_->setEnabled(isLossKey(key));
    if (profile) {
        drawProfile();
        return;
    }
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    const bool log = logBox_->isChecked();
    plot_->yAxis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    plot_->yAxis->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog) : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setLabel(axis_ == OverlayAxis::Step       ? tr("step")
                           : axis_ == OverlayAxis::WallTime ? tr("training time (minutes, from each run's start)")
                                                            : tr("fraction of the run's planned steps"));
    plot_->yAxis->setLabel(key.startsWith("cos:") ? tr("cosine of the MIM and CL gradients, %1").arg(key.mid(4)) : curveLabel(key));
    QStringList missing;
    // Each ticked run's curve; seeds of one folder (NAME-seedN) then go together when the box says so.
    struct Drawn {
        const Entry* e;
        QVector<double> steps, ys;
    };
    QVector<Drawn> drawn;
    for (const auto& e : entries_) {
        if (e.item->checkState() != Qt::Checked) continue;
        const RunCurves& c = e.curves;
        QVector<double> steps, ys;
        if (key.startsWith("cos:")) {
            const int g = int(c.groups.indexOf(key.mid(4)));
            if (g >= 0) {
                steps = c.cosStep;
                ys = c.cosMean[g];
            }
        } else if (c.values.contains(key)) {
            steps = c.step;
            ys = isLossKey(key) && smoothing_ > 0 ? LossPlotView::smoothed(c.values[key], smoothing_) : c.values[key];
        }
        int finite = 0;
        for (double y : ys) finite += std::isfinite(y) && (!log || y > 0) ? 1 : 0;
        if (finite == 0) {
            missing << c.label;
            continue;
        }
        drawn.push_back({&e, steps, ys});
    }
    struct Group {
        QString key, label;
        QVector<int> members;  // into drawn
    };
    QVector<Group> groups;
    for (int i = 0; i < drawn.size(); ++i) {
        const QFileInfo run(drawn[i].e->curves.dir);
        const QString k = seedsBox_->isChecked() ? run.path() + '/' + seedGroup(run.fileName()) : run.filePath();
        int at = 0;
        while (at < groups.size() && groups[at].key != k) ++at;
        if (at == groups.size()) groups.push_back({k, QString(), {}});
        groups[at].members << i;
    }
    // Labels: "<recipe name> · <folder>" (RunCurves'), a group's folder as "NAME (3 seeds)"; where the same NAME
    // comes from two folders (two tables' mae seeds), the folder named with its parent: "mae · t/mae (3 seeds)".
    auto recipePartOf = [&](const Group& g, bool shorten) {
        const RunCurves& c = drawn[g.members.front()].e->curves;
        const QString folder = QFileInfo(c.dir).fileName();
        QString part = c.label.endsWith(folder) ? c.label.chopped(folder.size()) : c.label;
        // "mae · " before seeds of a folder NAME that is the recipe's name says nothing: "mae (3 seeds)"
        if (shorten && g.members.size() > 1 && part == seedGroup(folder) + QStringLiteral(" · ")) part.clear();
        return part;
    };
    auto nameOf = [&](const Group& g) { return recipePartOf(g, false) + seedGroup(QFileInfo(drawn[g.members.front()].e->curves.dir).fileName()); };
    QMap<QString, int> names;
    for (const auto& g : groups) ++names[nameOf(g)];
    for (auto& g : groups) {
        const RunCurves& c = drawn[g.members.front()].e->curves;
        const QFileInfo run(c.dir);
        const QString recipePart = recipePartOf(g, true);
        const bool shared = seedsBox_->isChecked() && names.value(nameOf(g)) > 1;
        const QString parent = shared ? QFileInfo(run.path()).fileName() + '/' : QString();
        g.label = recipePart + parent +
                  (g.members.size() > 1 ? tr("%1 (%n seeds)", nullptr, int(g.members.size())).arg(seedGroup(run.fileName())) : run.fileName());
    }
    {
        // The list shows each run in the colour it is drawn in: a folder's seeds drawn as one curve take its colour.
        QHash<const Entry*, QColor> shown;
        for (const Group& g : groups)
            for (int m : g.members) shown[drawn[m].e] = drawn[g.members.front()].e->colour;
        const QSignalBlocker quiet(list_);
        for (const auto& e : entries_) {
            const QColor c = shown.value(&e, e.colour);
            if (e.item->data(Qt::UserRole + 1).value<QColor>() != c) {
                e.item->setIcon(swatch(c));
                e.item->setData(Qt::UserRole + 1, c);
            }
        }
    }
    for (const Group& g : groups) {
        const Entry& e = *drawn[g.members.front()].e;
        const RunCurves& c = e.curves;
        QVector<double> xs, ys, sds;
        QStringList dirs;
        for (int m : g.members) dirs << drawn[m].e->curves.dir;
        if (g.members.size() == 1) {
            const Drawn& d = drawn[g.members.front()];
            ys = d.ys;
            xs.resize(d.steps.size());
            for (int i = 0; i < d.steps.size(); ++i) xs[i] = c.x(d.steps[i], axis_);
        } else {
            // the steps every seed logged (with a finite value): the mean, its sample sd, and x as the seeds' mean
            // (on the time axis each seed has its own clock)
            std::map<double, QVector<QPair<double, double>>> at;  // step -> (x, y) of each seed
            for (int m : g.members) {
                const Drawn& d = drawn[m];
                for (int i = 0; i < d.steps.size(); ++i)
                    if (std::isfinite(d.ys[i])) at[d.steps[i]].push_back({d.e->curves.x(d.steps[i], axis_), d.ys[i]});
            }
            for (const auto& [step, v] : at) {
                if (v.size() != g.members.size()) continue;
                double mx = 0, my = 0, ss = 0;
                for (const auto& p : v) mx += p.first / v.size(), my += p.second / v.size();
                for (const auto& p : v) ss += (p.second - my) * (p.second - my);
                xs << mx;
                ys << my;
                sds << std::sqrt(ss / (v.size() - 1));
            }
        }
        QCPGraph* graph = plot_->addGraph();
        graph->setProperty("run", c.dir);
        graph->setProperty("runs", dirs);
        graph->setProperty("main", true);
        graph->setName(g.label);
        graph->setPen(QPen(e.colour, 1.6));
        if (key.startsWith("cos:")) graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 4));
        graph->setData(xs, ys, true);
        if (!sds.isEmpty()) {  // the band: mean ± sd, filled between two unlisted lines
            QVector<double> lo(ys.size()), hi(ys.size());
            for (int i = 0; i < ys.size(); ++i) lo[i] = ys[i] - sds[i], hi[i] = ys[i] + sds[i];
            if (log)
                for (auto& v : lo) v = v > 0 ? v : std::numeric_limits<double>::quiet_NaN();
            QColor fill = e.colour;
            fill.setAlpha(55);
            QCPGraph* lower = plot_->addGraph();
            QCPGraph* upper = plot_->addGraph();
            for (QCPGraph* b : {lower, upper}) {
                b->setProperty("band", true);
                b->setPen(Qt::NoPen);
                b->removeFromLegend();
            }
            lower->setData(xs, lo, true);
            upper->setData(xs, hi, true);
            upper->setBrush(fill);
            upper->setChannelFillGraph(lower);
        }
        // where each later stage of the run begins, in its colour
        for (int s = 1; s < c.stages.size(); ++s) {
            const double x = c.x(double(c.stages[s].first), axis_);
            if (!std::isfinite(x)) continue;
            auto* line = new QCPItemStraightLine(plot_);
            line->point1->setCoords(x, 0);
            line->point2->setCoords(x, 1);
            line->setPen(QPen(e.colour, 1, Qt::DotLine));
            auto* text = new QCPItemText(plot_);
            text->position->setTypeX(QCPItemPosition::ptPlotCoords);
            text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
            text->position->setCoords(x, 0.01 + 0.05 * (stageLines_ % 4));
            text->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
            text->setText(" " + c.stages[s].second);
            text->setColor(e.colour.darker(120));
            text->setFont(QFont(font().family(), 8));
            ++stageLines_;
        }
    }
    plot_->rescaleAxes();
    if (axis_ != OverlayAxis::Fraction && plot_->xAxis->range().lower > 0) plot_->xAxis->setRangeLower(0);
    if (axis_ == OverlayAxis::Fraction) plot_->xAxis->setRange(0, std::max(1.0, plot_->xAxis->range().upper));
    if (key.startsWith("cos:")) {  // cosines: symmetric around 0, as in the Gradient cosines tab
        const double m = std::max({0.05, std::abs(plot_->yAxis->range().lower), std::abs(plot_->yAxis->range().upper)}) * 1.1;
        plot_->yAxis->setRange(-std::min(1.0, m), std::min(1.0, m));
    } else if (!log) {
        const double margin = 0.04 * plot_->yAxis->range().size();
        plot_->yAxis->setRange(plot_->yAxis->range().lower - margin, plot_->yAxis->range().upper + margin);
    }
    QString note;
    if (entries_.isEmpty()) note = tr("No runs listed: the run shown in the other tabs is listed when it starts or opens; "
                                      "Add runs… lists a run directory or every run of a sweep's or a table's folder.");
    else if (checkedRuns().isEmpty()) note = tr("Tick runs in the list to draw them.");
    if (!missing.isEmpty()) note = tr("Without %1: %2").arg(key.startsWith("cos:") ? tr("gradient cosines") : curveLabel(key), missing.join(", "));
    note_->setText(note);
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void RunOverlayView::drawProfile() {
    // x = parameter group from the input up (the run with the most groups names the ticks), y = mean cosine of the
    // run's last phase, its 10th and 90th percentile over the probe images as thin dashed lines of its colour
    const RunCurves* widest = nullptr;
    for (const auto& e : entries_)
        if (e.item->checkState() == Qt::Checked && (!widest || e.curves.profile.groups.size() > widest->profile.groups.size()))
            widest = &e.curves;
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    if (widest)
        for (size_t g = 0; g < widest->profile.groups.size(); ++g) ticks->addTick(double(g), QString::fromStdString(widest->profile.groups[g]));
    plot_->xAxis->setTicker(ticks);
    plot_->xAxis->setTickLabelRotation(widest && widest->profile.groups.size() > 8 ? 35 : 0);
    plot_->yAxis->setScaleType(QCPAxis::stLinear);
    plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setLabel(tr("parameter group (input → output) · solid: mean · dashed: 10th / 90th percentile of the images"));
    plot_->yAxis->setLabel(tr("mean cosine, last phase"));
    QStringList missing;
    double m = 0.05;
    for (const auto& e : entries_) {
        if (e.item->checkState() != Qt::Checked) continue;
        const RunCurves& c = e.curves;
        if (c.profile.phases.empty()) {
            missing << c.label;
            continue;
        }
        const DepthProfilePhase& ph = c.profile.phases.back();
        QVector<double> xs;
        for (size_t g = 0; g < ph.mean.size(); ++g) xs << double(g);
        auto add = [&](const std::vector<double>& v, bool main) {
            QCPGraph* g = plot_->addGraph();
            g->setProperty("run", c.dir);
            g->setProperty("main", main);
            g->setPen(QPen(e.colour, main ? 1.8 : 1.0, main ? Qt::SolidLine : Qt::DashLine));
            if (main) {
                g->setName(c.label + " (" + QString::fromStdString(ph.label) + ")");
                g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 5));
            } else {
                g->removeFromLegend();
            }
            QVector<double> ys(v.begin(), v.end());
            for (double y : ys)
                if (std::isfinite(y)) m = std::max(m, std::abs(y));
            g->setData(xs, ys, true);
        };
        add(ph.q10, false);
        add(ph.q90, false);
        add(ph.mean, true);
    }
    const double n = widest ? double(widest->profile.groups.size()) : 1.0;
    plot_->xAxis->setRange(-0.5, n - 0.5);
    plot_->yAxis->setRange(-std::min(1.0, m * 1.1), std::min(1.0, m * 1.1));
    note_->setText(missing.isEmpty() ? QString() : tr("Without gradient cosines: %1").arg(missing.join(", ")));
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void RunOverlayView::showReadoutAt(double x) {
    QStringList parts;
    for (int i = 0; i < plot_->graphCount(); ++i) {
        QCPGraph* g = plot_->graph(i);
        if (!g->property("main").toBool() || g->data()->isEmpty()) continue;
        auto it = g->data()->findBegin(x, false);
        if (it == g->data()->constEnd()) continue;
        // the nearer of the points either side of x
        auto best = it;
        if (it != g->data()->constBegin()) {
            auto before = it - 1;
            if (std::abs(before->key - x) < std::abs(it->key - x)) best = before;
        }
        if (!std::isfinite(best->value)) continue;
        parts << QStringLiteral("<span style='color:%1'>■</span> %2 %3").arg(g->pen().color().name(), g->name().toHtmlEscaped(),
                                                                              QString::number(best->value, 'g', 4));
    }
    readout_->setText(parts.isEmpty() ? QString() : QStringLiteral("x = %1: ").arg(QString::number(x, 'g', 4)) + parts.join("  "));
}

int RunOverlayView::reload() {
    int n = 0;
    for (auto& e : entries_) {
        if (!e.curves.changedOnDisk()) continue;
        e.curves = RunCurves::load(e.curves.dir);
        e.item->setText(e.curves.label);
        ++n;
    }
    if (n > 0) {
        rebuildCurveBox();
        redraw();
    }
    return n;
}

void RunOverlayView::saveRuns() const {
    if (restoring_) return;
    QStringList unticked;
    for (const auto& e : entries_)
        if (e.item->checkState() != Qt::Checked) unticked << e.curves.dir;
    QSettings s;
    s.setValue("overlay/runs", runs());
    s.setValue("overlay/unticked", unticked);
}

void RunOverlayView::restoreRuns() {
    QSettings s;
    const QStringList dirs = s.value("overlay/runs").toStringList(), unticked = s.value("overlay/unticked").toStringList();
    for (const auto& d : dirs)
        if (indexOf(d) < 0) addRun(d, !unticked.contains(d));  // a run deleted meanwhile is dropped
    // the curve and the axis last chosen (a curve the listed runs do not hold is drawn once a run that holds it is listed)
    restoring_ = true;
    setAxis(OverlayAxis(s.value("overlay/axis", int(OverlayAxis::Step)).toInt()));
    if (s.contains("overlay/curve")) setCurve(s.value("overlay/curve").toString());
    rebuildCurveBox();
    redraw();
    restoring_ = false;
}

}  // namespace graftlab
