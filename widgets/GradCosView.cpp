#include "GradCosView.h"
#include "PlotExport.h"
#include "base/probes/DepthProfile.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSettings>
#include <QSlider>
#include <QSplitter>
#include <QVBoxLayout>

#include <cmath>

namespace graftlab {

namespace {
QColor groupColour(int g, int count) {
    if (count <= 1) return QColor(31, 119, 180);
    return QColor::fromHsvF(0.66 * (1.0 - double(g) / double(count - 1)), 0.75, 0.85);  // blue (embed) .. red (top)
}

QStringList groupsOf(const Snapshot& s) {
    QStringList out;
    for (const auto& g : s.meta.value("groups", std::vector<std::string>{})) out << QString::fromStdString(g);
    return out;
}
}  // namespace

GradCosView::GradCosView(QWidget* parent) : QWidget(parent) {
    status_ = new QLabel(tr("Gradient cosines appear here when the model has both a MIM and a CL loss (MTL, or a "
                            "grafting stage after a stage of the other kind) and probes are on (probes.every)."), this);
    status_->setWordWrap(true);
    status_->setStyleSheet("color: gray;");

    lines_ = new QCustomPlot(this);
    lines_->xAxis->setLabel(tr("step"));
    lines_->yAxis->setLabel(tr("mean cosine"));
    lines_->yAxis->setRange(-1, 1);
    // The legend in a row of its own above the plot: one entry per block would cover the lines.
    placeLegendAbove(lines_, 5);
    lines_->setToolTip(tr("Mean over the probe images of the cosine between the MIM and the CL gradient, per block"));
    installPlotExportMenu(lines_, "gradcos_lines");

    heat_ = new QCustomPlot(this);
    heat_->xAxis->setLabel(tr("step"));
    heat_->yAxis->setLabel(tr("parameter group"));
    map_ = new QCPColorMap(heat_->xAxis, heat_->yAxis);
    auto* scale = new QCPColorScale(heat_);
    heat_->plotLayout()->addElement(0, 1, scale);
    scale->setLabel(tr("mean cosine"));
    map_->setColorScale(scale);
    QCPColorGradient diverging;
    diverging.setColorStopAt(0.0, QColor(30, 80, 180));
    diverging.setColorStopAt(0.5, QColor(255, 255, 255));
    diverging.setColorStopAt(1.0, QColor(200, 40, 40));
    diverging.setNanHandling(QCPColorGradient::nhNanColor);
    diverging.setNanColor(QColor(210, 210, 210));
    map_->setGradient(diverging);
    map_->setDataRange(QCPRange(-1, 1));
    map_->setInterpolate(false);
    auto* margins = new QCPMarginGroup(heat_);
    heat_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    heat_->setToolTip(tr("Blocks (rows) by probe step (columns); blue = the two losses pull apart, red = together; "
                         "the scale is symmetric around 0, fixed or sized to the whole run (Cosine range; see the colour bar)"));
    installPlotExportMenu(heat_, "gradcos_heatmap");

    samples_ = new QCustomPlot(this);
    samples_->yAxis->setLabel(tr("cosine per image"));
    samples_->yAxis->ticker()->setTickCount(4);
    samples_->yAxis->setRange(-1, 1);
    samples_->setToolTip(tr("Every probe image's cosine per group at the chosen step (dots), and their mean (bar)"));
    installPlotExportMenu(samples_, "gradcos_samples");

    profile_ = new QCustomPlot(this);
    profile_->yAxis->setLabel(tr("mean cosine"));
    // what the lines are, under the plot (the legend names the phases)
    profile_->xAxis->setLabel(tr("parameter group (input → output)\nsolid: mean · dashed: 10th / 90th percentile of the images"));
    placeLegendAbove(profile_, 8);
    profile_->setToolTip(tr("Depth profile: the mean cosine per parameter group, one line per training phase (its probes "
                            "averaged), the band from the 10th to the 90th percentile over the probe images. Layer Grafted "
                            "Pretraining finds the two losses conflicting more in the deeper blocks."));
    installPlotExportMenu(profile_, "gradcos_depth_profile");

    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setEnabled(false);
    slider_->setToolTip(tr("Step shown in the per-image plot; the right end follows the newest"));
    connect(slider_, &QSlider::valueChanged, this, [this](int v) {
        followLatest_ = v == slider_->maximum();
        showStep(v);
    });

    // Two rows of two: over steps (lines, heat map) above, one step and the depth profile below (three rows left the
    // lines ~70 px high at 1280 x 800).
    auto* split = new QSplitter(Qt::Vertical, this);
    auto* overSteps = new QSplitter(Qt::Horizontal, this);
    overSteps->addWidget(lines_);
    overSteps->addWidget(heat_);
    overSteps->setSizes({500, 500});
    split->addWidget(overSteps);
    auto* bottom = new QWidget(this);
    auto* bl = new QVBoxLayout(bottom);
    bl->setContentsMargins(0, 0, 0, 0);
    bl->addWidget(samples_, 1);
    bl->addWidget(slider_);
    auto* across = new QSplitter(Qt::Horizontal, this);
    across->addWidget(bottom);
    across->addWidget(profile_);
    across->setStretchFactor(0, 1);
    across->setStretchFactor(1, 1);
    across->setSizes({500, 500});
    split->addWidget(across);
    profile_->setMinimumHeight(150);
    lines_->setMinimumHeight(150);
    heat_->setMinimumHeight(170);
    samples_->setMinimumHeight(150);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({330, 270});
    heat_->yAxis->setTickLabelFont(QFont(font().family(), 8));
    rangeBox_ = new QComboBox(this);
    rangeBox_->addItem(tr("auto (whole run)"), 0.0);
    for (double r : {1.0, 0.5, 0.2, 0.1, 0.05}) rangeBox_->addItem(QStringLiteral("±%1").arg(r), r);
    rangeBox_->setToolTip(tr("Cosine range of the lines and the heat map: fixed, so that a colour keeps its meaning as the run "
                             "goes on and across runs, or sized to the largest mean of the whole run so far"));
    connect(rangeBox_, &QComboBox::currentIndexChanged, this, [this](int i) { setCosineRange(rangeBox_->itemData(i).toDouble()); });
    auto* top = new QHBoxLayout;
    top->addWidget(status_, 1);
    top->addWidget(new QLabel(tr("Cosine range:"), this));
    top->addWidget(rangeBox_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(split, 1);
    applyCosineRange(QSettings().value("gradcos/range", 0.0).toDouble());  // the last choice, not written back
}

void GradCosView::setCosineRange(double range) {
    applyCosineRange(range);
    QSettings().setValue("gradcos/range", fixedRange_);
}

void GradCosView::applyCosineRange(double range) {
    fixedRange_ = range > 0 ? std::min(range, 1.0) : 0.0;
    int i = rangeBox_->findData(fixedRange_);
    if (i < 0) {  // a range not in the list (set by code or an edited settings file): listed, so the box says it
        rangeBox_->addItem(QStringLiteral("±%1").arg(fixedRange_), fixedRange_);
        i = rangeBox_->count() - 1;
    }
    if (rangeBox_->currentIndex() != i) {
        QSignalBlocker block(rangeBox_);
        rangeBox_->setCurrentIndex(i);
    }
    rebuild();
}

QString GradCosView::cosineRangeText() const { return rangeBox_->currentText(); }

std::pair<double, double> GradCosView::shownRange() const { return {map_->dataRange().lower, map_->dataRange().upper}; }

void GradCosView::addSnapshot(const Snapshot& s) {
    if (s.kind != "gradcos") return;
    if (!s.unavailable().empty()) {
        if (snaps_.isEmpty()) status_->setText(tr("Stage %1, step %2: %3").arg(s.stage + 1).arg(s.step).arg(QString::fromStdString(s.unavailable())));
        return;
    }
    if (!s.find("summary") || !s.find("cos")) return;
    int at = snaps_.size();
    while (at > 0 && snaps_[at - 1].step >= s.step) --at;
    if (at < snaps_.size() && snaps_[at].step == s.step) snaps_[at] = s;
    else snaps_.insert(at, s);
    rebuild();
}

void GradCosView::clear() {
    snaps_.clear();
    followLatest_ = true;
    status_->setText(tr("No gradient-cosine snapshots yet."));
    rebuild();
}

void GradCosView::rebuild() {
    lines_->clearGraphs();
    map_->data()->clear();
    slider_->setEnabled(snaps_.size() > 1);
    slider_->setMaximum(std::max(0, int(snaps_.size()) - 1));
    rebuildProfile();
    if (snaps_.isEmpty()) {
        lines_->replot(QCustomPlot::rpQueuedReplot);
        heat_->replot(QCustomPlot::rpQueuedReplot);
        samples_->clearPlottables();
        samples_->replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    const Snapshot& last = snaps_.back();
    QStringList groups = groupsOf(last);
    const int G = groups.size();
    status_->setStyleSheet("");
    status_->setText(tr("MIM head: %1 · CL head: %2 · %3 probe images · %4 snapshots")
                         .arg(QString::fromStdString(last.meta.value("mim_head", std::string())))
                         .arg(QString::fromStdString(last.meta.value("cl_head", std::string())))
                         .arg(last.find("cos")->shape.at(1))
                         .arg(snaps_.size()));
    // Lines: one per group, the whole encoder drawn thick and black.
    for (int g = 0; g < G; ++g) {
        auto* graph = lines_->addGraph();
        graph->setName(groups[g]);
        bool whole = groups[g] == "encoder";
        graph->setPen(QPen(whole ? QColor(0, 0, 0) : groupColour(g, G - 1), whole ? 2.5 : 1.5));
        graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 4));
        for (const auto& s : snaps_) {
            const SnapshotArray* sum = s.find("summary");
            if (sum && g < sum->shape[0]) graph->addData(double(s.step), sum->at({g, kCosMean}));
        }
    }
    // Symmetric ranges around 0 sized to the data (cosines of high-dimensional gradients are often small): the
    // colour bar and the axes say the range.
    double maxAbs = 0.05;
    for (const auto& sn : snaps_)
        if (const SnapshotArray* sum = sn.find("summary"))
            for (int g = 0; g < sum->shape[0]; ++g)
                if (std::isfinite(sum->at({g, kCosMean}))) maxAbs = std::max(maxAbs, std::abs(double(sum->at({g, kCosMean}))));
    const double range = fixedRange_ > 0 ? fixedRange_ : std::min(1.0, maxAbs * 1.15);
    lines_->yAxis->setRange(-range, range);
    map_->setDataRange(QCPRange(-range, range));
    double x0 = double(snaps_.front().step), x1 = double(snaps_.back().step);
    lines_->xAxis->setRange(x0, std::max(x1, x0 + 1));
    lines_->replot(QCustomPlot::rpQueuedReplot);

    // Heat map: columns are probe steps (equally spaced cells: probes may be thinned).
    const int N = snaps_.size();
    map_->data()->setSize(N, G);
    map_->data()->setRange(QCPRange(0, N - 1), QCPRange(0, G - 1));
    for (int k = 0; k < N; ++k) {
        const SnapshotArray* sum = snaps_[k].find("summary");
        for (int g = 0; g < G; ++g) map_->data()->setCell(k, g, sum && g < sum->shape[0] ? sum->at({g, kCosMean}) : NAN);
    }
    QSharedPointer<QCPAxisTickerText> yt(new QCPAxisTickerText);
    for (int g = 0; g < G; ++g) yt->addTick(g, groups[g]);
    heat_->yAxis->setTicker(yt);
    QSharedPointer<QCPAxisTickerText> xt(new QCPAxisTickerText);
    int every = std::max(1, N / 8);
    for (int k = 0; k < N; k += every) xt->addTick(k, QString::number(snaps_[k].step));
    heat_->xAxis->setTicker(xt);
    heat_->xAxis->setRange(-0.5, N - 0.5);
    heat_->yAxis->setRange(-0.5, G - 0.5);
    heat_->replot(QCustomPlot::rpQueuedReplot);

    if (followLatest_) slider_->setValue(N - 1);
    showStep(slider_->value());
}

void GradCosView::rebuildProfile() {
    profile_->clearGraphs();
    std::vector<Snapshot> all(snaps_.begin(), snaps_.end());
    DepthProfile p = depthProfile(all);
    if (p.phases.empty()) {
        profile_->replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    const int P = int(p.phases.size()), G = int(p.groups.size());
    double spread = 0.05;
    for (int k = 0; k < P; ++k) {
        const auto& ph = p.phases[size_t(k)];
        // Late phases in red, early ones in blue, as the heat map's ends.
        QColor c = P == 1 ? QColor(200, 40, 40) : QColor::fromHsvF(0.62 * (1.0 - double(k) / double(P - 1)), 0.8, 0.8);
        // The band of each phase drawn by its edges (dashed, in the phase's colour) over a faint fill: several
        // overlapping bands stay apart instead of blending into one tint.
        QColor band = c, edge = c;
        band.setAlpha(18);
        edge.setAlpha(170);
        auto* lo = profile_->addGraph();
        auto* hi = profile_->addGraph();
        auto* mean = profile_->addGraph();
        for (auto* g : {lo, hi}) {
            g->setPen(QPen(edge, 1, Qt::DashLine));
            g->removeFromLegend();
        }
        hi->setBrush(band);
        hi->setChannelFillGraph(lo);
        mean->setPen(QPen(c, 2));
        mean->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 5));
        mean->setName(QString::fromStdString(ph.label));
        for (int g = 0; g < G; ++g) {
            if (!std::isfinite(ph.mean[size_t(g)])) continue;
            lo->addData(g, ph.q10[size_t(g)]);
            hi->addData(g, ph.q90[size_t(g)]);
            mean->addData(g, ph.mean[size_t(g)]);
            for (double v : {ph.q10[size_t(g)], ph.q90[size_t(g)]})
                if (std::isfinite(v)) spread = std::max(spread, std::abs(v));
        }
    }
    QSharedPointer<QCPAxisTickerText> xt(new QCPAxisTickerText);
    for (int g = 0; g < G; ++g) xt->addTick(g, QString::fromStdString(p.groups[size_t(g)]));
    profile_->xAxis->setTicker(xt);
    profile_->xAxis->setTickLabelRotation(G > 5 ? 35 : 0);  // as the per-image plot: upright names of 6+ groups overlap
    profile_->xAxis->setRange(-0.4, G - 0.6);
    profile_->yAxis->setRange(-std::min(1.0, spread * 1.15), std::min(1.0, spread * 1.15));
    profile_->replot(QCustomPlot::rpQueuedReplot);
}

QString GradCosView::profileKeyText() const { return profile_->xAxis->label(); }

void GradCosView::showStep(int index) {
    samples_->clearPlottables();
    if (index < 0 || index >= snaps_.size()) {
        samples_->replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    const Snapshot& s = snaps_[index];
    const SnapshotArray* cos = s.find("cos");
    const SnapshotArray* sum = s.find("summary");
    QStringList groups = groupsOf(s);
    const int G = int(cos->shape[0]), n = int(cos->shape[1]);
    auto* bars = new QCPBars(samples_->xAxis, samples_->yAxis);
    bars->setName(tr("mean"));
    bars->setBrush(QColor(120, 120, 200, 90));
    bars->setPen(QPen(QColor(80, 80, 160)));
    bars->setWidth(0.6);
    auto* dots = samples_->addGraph();
    dots->setLineStyle(QCPGraph::lsNone);
    dots->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(200, 40, 40), 5));
    dots->setName(tr("probe images"));
    QSharedPointer<QCPAxisTickerText> xt(new QCPAxisTickerText);
    for (int g = 0; g < G; ++g) {
        bars->addData(g, sum->at({g, kCosMean}));
        for (int i = 0; i < n; ++i) {
            double jitter = n > 1 ? (double(i) / (n - 1) - 0.5) * 0.4 : 0.0;
            double v = cos->at({g, i});
            if (std::isfinite(v)) dots->addData(g + jitter, v);
        }
        xt->addTick(g, g < groups.size() ? groups[g] : QString::number(g));
    }
    double spread = 0.05;
    for (float v : cos->values)
        if (std::isfinite(v)) spread = std::max(spread, double(std::abs(v)));
    samples_->yAxis->setRange(-std::min(1.0, spread * 1.15), std::min(1.0, spread * 1.15));
    samples_->xAxis->setTicker(xt);
    samples_->xAxis->setTickLabelRotation(groups.size() > 5 ? 35 : 0);  // upright names of 6+ groups overlap at 1280 px
    samples_->xAxis->setRange(-0.7, G - 0.3);
    samples_->xAxis->setLabel(tr("step %1 (stage %2): per-image cosines").arg(s.step).arg(s.stage + 1));
    samples_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace graftlab
