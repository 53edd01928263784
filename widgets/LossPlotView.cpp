#include "LossPlotView.h"
#include "PlotExport.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSettings>
#include <QSlider>
#include <QStackedLayout>
#include <QVBoxLayout>

#include <cmath>

namespace graftlab {

namespace {
const QList<QColor> kPalette = {QColor(31, 119, 180), QColor(214, 39, 40), QColor(44, 160, 44),
                                QColor(148, 103, 189), QColor(255, 127, 14), QColor(23, 190, 207)};
}

LossPlotView::LossPlotView(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setNoAntialiasingOnDrag(true);
    plot_->yAxis->setLabel(tr("loss"));
    plot_->yAxis2->setVisible(true);
    plot_->yAxis2->setLabel(tr("learning rate"));
    // Legend in a row of its own above the plots; below the losses, a strip with throughput and momentum.
    placeLegendAbove(plot_, 8);
    lower_ = new QCPAxisRect(plot_);
    plot_->plotLayout()->addElement(2, 0, lower_);
    plot_->plotLayout()->setRowStretchFactor(2, 0.35);
    lower_->axis(QCPAxis::atBottom)->setLabel(tr("step"));
    lower_->axis(QCPAxis::atLeft)->setLabel(tr("images/s"));
    lower_->axis(QCPAxis::atRight)->setVisible(true);
    lower_->axis(QCPAxis::atRight)->setLabel(tr("momentum"));
    lower_->axis(QCPAxis::atRight)->setTickLabels(true);
    lower_->setRangeDrag(Qt::Horizontal);
    lower_->setRangeZoom(Qt::Horizontal);
    auto* margins = new QCPMarginGroup(plot_);
    plot_->axisRect()->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
    lower_->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
    connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), lower_->axis(QCPAxis::atBottom),
            qOverload<const QCPRange&>(&QCPAxis::setRange));
    connect(lower_->axis(QCPAxis::atBottom), qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot_->xAxis,
            qOverload<const QCPRange&>(&QCPAxis::setRange));
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    installPlotExportMenu(plot_, "losses");

    // Curve controls above the plot, as in TensorBoard: smoothing, log scale, and what the mouse points at.
    auto* page = new QWidget(this);
    auto* controls = new QHBoxLayout;
    controls->setContentsMargins(6, 2, 6, 0);
    auto* smoothLabel = new QLabel(tr("Smoothing"), page);
    smoothingSlider_ = new QSlider(Qt::Horizontal, page);
    smoothingSlider_->setRange(0, 99);
    smoothingSlider_->setMaximumWidth(180);
    smoothingSlider_->setToolTip(tr("Exponential moving average of the losses (TensorBoard's smoothing, debiased at the start);\n"
                                    "the raw curve stays faint behind. 0 = raw."));
    smoothLabel->setBuddy(smoothingSlider_);
    smoothingValue_ = new QLabel(page);
    smoothingValue_->setMinimumWidth(32);
    logBox_ = new QCheckBox(tr("&Log scale"), page);
    logBox_->setToolTip(tr("Logarithmic loss axis"));
    readout_ = new QLabel(page);
    readout_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    readout_->setStyleSheet("color: #333;");
    readout_->setToolTip(tr("Step and values under the mouse (smoothed, with the raw value in brackets)"));
    // A long read-out is cut, never widens its row: the slider and the check box keep their room.
    readout_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    readout_->setMinimumWidth(0);
    smoothingSlider_->setMinimumWidth(120);
    controls->addWidget(smoothLabel);
    controls->addWidget(smoothingSlider_);
    controls->addWidget(smoothingValue_);
    controls->addSpacing(12);
    controls->addWidget(logBox_);
    controls->addSpacing(12);
    controls->addWidget(readout_, 1);
    auto* pageLayout = new QVBoxLayout(page);
    pageLayout->setContentsMargins(0, 0, 0, 0);
    pageLayout->setSpacing(0);
    pageLayout->addLayout(controls);
    pageLayout->addWidget(plot_, 1);
    page_ = page;
    QSettings settings;
    smoothing_ = std::clamp(settings.value("lossView/smoothing", 0.6).toDouble(), 0.0, 0.99);
    smoothingSlider_->setValue(int(std::lround(smoothing_ * 100)));
    smoothingValue_->setText(QString::number(smoothing_, 'f', 2));
    connect(smoothingSlider_, &QSlider::valueChanged, this, [this](int v) {
        setSmoothing(v / 100.0);
        QSettings().setValue("lossView/smoothing", smoothing_);
    });
    connect(logBox_, &QCheckBox::toggled, this, &LossPlotView::setLogScale);
    cursor_ = new QCPItemStraightLine(plot_);
    cursor_->setPen(QPen(QColor(120, 120, 120, 140), 1, Qt::DashLine));
    cursor_->setVisible(false);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        if (graphs_.isEmpty()) return;
        showReadoutAt(plot_->xAxis->pixelToCoord(e->position().x()));
    });
    plot_->installEventFilter(this);  // the read-out and its cursor go when the mouse leaves the plot

    empty_ = new QLabel(tr("Losses and the learning rate appear here once training starts.\n"
                           "Press Start (Ctrl+R), or open a run directory (Ctrl+Shift+O)."),
                        this);
    empty_->setAlignment(Qt::AlignCenter);
    empty_->setStyleSheet("color: gray;");
    auto* stack = new QStackedLayout(this);
    stack->addWidget(empty_);
    stack->addWidget(page_);
    stack->setCurrentWidget(empty_);

    replotTimer_.setSingleShot(true);
    replotTimer_.setInterval(40);
    connect(&replotTimer_, &QTimer::timeout, this, [this] {
        plot_->rescaleAxes();
        plot_->xAxis->setRangeLower(0);  // stage markers and the first rows stay in view
        if (plot_->yAxis2->range().lower > 0) plot_->yAxis2->setRangeLower(0);
        auto* ips = lower_->axis(QCPAxis::atLeft);
        if (ips->range().lower > 0) ips->setRangeLower(0);
        ips->setRangeUpper(std::max(1.0, ips->range().upper * 1.1));
        auto* m = lower_->axis(QCPAxis::atRight);
        if (m->range().size() < 1e-3) m->setRange(m->range().center() - 0.005, m->range().center() + 0.005);
        // a little room above and below so that no line (the faint raw curve neither) runs along an edge
        auto* y = plot_->yAxis;
        const double margin = 0.04 * y->range().size();
        y->setRangeUpper(y->range().upper + margin);
        if (y->scaleType() == QCPAxis::stLinear) y->setRangeLower(y->range().lower - margin);
        plot_->replot(QCustomPlot::rpQueuedReplot);
    });
}

QCPGraph* LossPlotView::graphFor(const QString& key) {
    auto it = graphs_.find(key);
    if (it != graphs_.end()) return *it;
    bool isLr = key == "lr" || key.startsWith("lr/");
    bool isIps = key == "images_per_s", isMomentum = key == "momentum";
    const bool isLoss = !isLr && !isIps && !isMomentum;
    if (isLoss) {
        // The raw curve first, so that the smoothed one is drawn over it; it stays out of the legend.
        QCPGraph* raw = plot_->addGraph(plot_->xAxis, plot_->yAxis);
        raw->removeFromLegend();
        raw_.insert(key, raw);
    }
    QCPGraph* g;
    if (isIps) g = plot_->addGraph(lower_->axis(QCPAxis::atBottom), lower_->axis(QCPAxis::atLeft));
    else if (isMomentum) g = plot_->addGraph(lower_->axis(QCPAxis::atBottom), lower_->axis(QCPAxis::atRight));
    else g = plot_->addGraph(plot_->xAxis, isLr ? plot_->yAxis2 : plot_->yAxis);
    QColor c = kPalette[losses_++ % kPalette.size()];
    if (isIps) c = QColor(100, 100, 100);
    if (isMomentum) c = QColor(188, 140, 30);
    if (isLr || isIps || isMomentum) --losses_;
    g->setPen(isLr ? lrPen(key, lrs_++) : QPen(c, key == "loss" ? 2.0 : 1.3));
    g->setName(isLr && key != "lr" ? tr("lr %1").arg(key.mid(3)) : isIps ? tr("images/s") : key);
    if (QCPGraph* raw = raw_.value(key, nullptr)) {
        QColor faint = c;
        faint.setAlpha(55);
        raw->setPen(QPen(faint, 1.0));
        raw->setName(key + tr(" (raw)"));
        raw->setVisible(smoothing_ > 0);
    }
    graphs_.insert(key, g);
    orderLegend();
    return g;
}

// The legend in one order whatever order the keys arrive in (a resumed run, another run): the total loss, the
// components by name, the learning rates (full rate first), throughput, momentum.
void LossPlotView::orderLegend() {
    auto rank = [](const QString& k) {
        if (k == "loss") return 0;
        if (k.startsWith("loss/")) return 1;
        if (k == "lr" || k == "lr/x1") return 2;
        if (k.startsWith("lr/")) return 3;
        if (k == "images_per_s") return 5;
        if (k == "momentum") return 6;
        return 4;
    };
    QStringList keys = graphs_.keys();
    std::stable_sort(keys.begin(), keys.end(), [&](const QString& a, const QString& b) {
        if (rank(a) != rank(b)) return rank(a) < rank(b);
        // lr groups by their multiplier, largest first (x1, x0.5, x0.1)
        if (rank(a) == 3) return a.mid(4).toDouble() > b.mid(4).toDouble();
        return a < b;
    });
    plot_->legend->clearItems();
    for (const QString& k : keys) graphs_[k]->addToLegend();
}

QStringList LossPlotView::legendOrder() const {
    QStringList out;
    for (int i = 0; i < plot_->legend->itemCount(); ++i)
        if (auto* item = qobject_cast<QCPPlottableLegendItem*>(plot_->legend->item(i))) out << item->plottable()->name();
    return out;
}

QPen LossPlotView::lrPen(const QString& key, int index) {
    // The learning rate per parameter group in greys, told apart by line style: the full rate (lr, lr/x1) solid and
    // darkest, the slowed groups (lr/x0.1 ...) dashed, then dotted, lighter with each further group.
    const bool full = key == "lr" || key == "lr/x1";
    if (full) return QPen(QColor(70, 70, 70), 1.4, Qt::SolidLine);
    static const Qt::PenStyle styles[] = {Qt::DashLine, Qt::DotLine, Qt::DashDotLine, Qt::DashDotDotLine};
    return QPen(QColor::fromHsv(0, 0, std::min(170, 110 + 20 * index)), 1.4, styles[index % 4]);
}

bool LossPlotView::eventFilter(QObject* watched, QEvent* event) {
    if (watched == plot_ && event->type() == QEvent::Leave) {
        readout_->clear();
        cursor_->setVisible(false);
        plot_->replot(QCustomPlot::rpQueuedReplot);
    }
    return QWidget::eventFilter(watched, event);
}

void LossPlotView::addRow(qint64 step, const QVector<QPair<QString, double>>& values) {
    // Each named loss gets its own line (so the stages of a grafted run stay apart); the total only when
    // a row has more than one component (MTL), where it differs from each of them.
    // The learning rate per parameter group (lr/x0.1 ...) where the stage has groups, else the one lr.
    int parts = 0, lrGroups = 0;
    for (const auto& kv : values) {
        parts += kv.first.startsWith("loss/");
        lrGroups += kv.first.startsWith("lr/");
    }
    for (const auto& [key, v] : values) {
        bool plotted = key.startsWith("loss/") || (key == "lr" && lrGroups == 0) || key.startsWith("lr/") ||
                       key == "images_per_s" || key == "momentum" || (key == "loss" && parts != 1);
        if (!plotted || !std::isfinite(v)) continue;
        QCPGraph* g = graphFor(key);
        if (QCPGraph* raw = raw_.value(key, nullptr)) {
            raw->addData(double(step), v);
            g->addData(double(step), emaStep(ema_[key], v));
        } else {
            g->addData(double(step), v);
        }
    }
    ++points_;
    static_cast<QStackedLayout*>(layout())->setCurrentWidget(page_);
    scheduleReplot();
}

void LossPlotView::markStage(qint64 step, const QString& name) {
    auto* line = new QCPItemStraightLine(plot_);
    line->point1->setCoords(double(step), 0);
    line->point2->setCoords(double(step), 1);
    line->setPen(QPen(QColor(150, 150, 150), 1, Qt::DotLine));
    auto* label = new QCPItemText(plot_);
    label->position->setTypeX(QCPItemPosition::ptPlotCoords);
    label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    label->position->setCoords(double(step), 0.02);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    label->setText(" " + name);
    label->setColor(QColor(90, 90, 90));
    label->setFont(QFont(font().family(), 8));
    scheduleReplot();
}

void LossPlotView::clear() {
    plot_->clearGraphs();
    plot_->clearItems();
    graphs_.clear();
    raw_.clear();
    ema_.clear();
    readout_->clear();
    cursor_ = new QCPItemStraightLine(plot_);
    cursor_->setPen(QPen(QColor(120, 120, 120, 140), 1, Qt::DashLine));
    cursor_->setVisible(false);
    points_ = 0;
    losses_ = lrs_ = 0;
    static_cast<QStackedLayout*>(layout())->setCurrentWidget(empty_);
    plot_->replot();
}

double LossPlotView::emaStep(Ema& e, double v) const {
    if (!std::isfinite(v)) return v;
    const double w = smoothing_;
    e.last = e.last * w + (1 - w) * v;
    ++e.count;
    const double debias = w > 0 ? 1 - std::pow(w, e.count) : 1;
    return e.last / debias;
}

QVector<double> LossPlotView::smoothed(const QVector<double>& values, double weight) {
    QVector<double> out;
    out.reserve(values.size());
    double last = 0;
    int count = 0;
    for (double v : values) {
        if (!std::isfinite(v)) {
            out.push_back(v);
            continue;
        }
        last = last * weight + (1 - weight) * v;
        ++count;
        out.push_back(weight > 0 ? last / (1 - std::pow(weight, count)) : last);
    }
    return out;
}

void LossPlotView::setSmoothing(double weight) {
    weight = std::clamp(weight, 0.0, 0.99);
    if (smoothingSlider_->value() != int(std::lround(weight * 100))) {
        QSignalBlocker block(smoothingSlider_);
        smoothingSlider_->setValue(int(std::lround(weight * 100)));
    }
    smoothingValue_->setText(QString::number(weight, 'f', 2));
    if (weight == smoothing_) return;
    smoothing_ = weight;
    resmoothAll();
}

void LossPlotView::resmoothAll() {
    for (auto it = raw_.begin(); it != raw_.end(); ++it) {
        QCPGraph* raw = it.value();
        QCPGraph* g = graphs_.value(it.key());
        QVector<double> keys, values;
        keys.reserve(raw->dataCount());
        values.reserve(raw->dataCount());
        for (auto d = raw->data()->constBegin(); d != raw->data()->constEnd(); ++d) {
            keys.push_back(d->key);
            values.push_back(d->value);
        }
        Ema e;
        QVector<double> sm;
        sm.reserve(values.size());
        for (double v : values) sm.push_back(emaStep(e, v));
        ema_[it.key()] = e;
        g->setData(keys, sm, true);
        raw->setVisible(smoothing_ > 0);
    }
    scheduleReplot();
}

void LossPlotView::setLogScale(bool on) {
    if (logBox_->isChecked() != on) {
        QSignalBlocker block(logBox_);
        logBox_->setChecked(on);
    }
    plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on) plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    scheduleReplot();
}

bool LossPlotView::logScale() const { return plot_->yAxis->scaleType() == QCPAxis::stLogarithmic; }

QString LossPlotView::readout() const { return readout_->text(); }

void LossPlotView::showReadoutAt(double step) {
    // The data point nearest to `step` on the first loss curve decides the step shown; every curve's value there.
    QCPGraph* ref = graphs_.value("loss", nullptr);
    if (!ref || ref->dataCount() == 0) {
        ref = nullptr;
        for (auto it = raw_.constBegin(); it != raw_.constEnd() && !ref; ++it)
            if (graphs_.value(it.key())->dataCount() > 0) ref = graphs_.value(it.key());
        for (auto* g : graphs_)
            if (!ref && g->dataCount() > 0) ref = g;
    }
    if (!ref) return;
    auto it = ref->data()->findBegin(step, true);
    auto next = it + 1;
    if (next != ref->data()->constEnd() && std::abs(next->key - step) < std::abs(it->key - step)) it = next;
    const double at = it->key;
    QStringList parts{tr("step %1").arg(qint64(at))};
    for (auto g = graphs_.constBegin(); g != graphs_.constEnd(); ++g) {
        auto d = g.value()->data()->findBegin(at, false);
        if (d == g.value()->data()->constEnd() || d->key != at) continue;
        QString text = QStringLiteral("%1 %2").arg(g.value()->name(), QString::number(d->value, 'g', 4));
        if (QCPGraph* raw = raw_.value(g.key(), nullptr); raw && smoothing_ > 0) {
            auto r = raw->data()->findBegin(at, false);
            if (r != raw->data()->constEnd() && r->key == at) text += QStringLiteral(" (%1)").arg(QString::number(r->value, 'g', 4));
        }
        parts << text;
    }
    readout_->setText(parts.join(QStringLiteral(" · ")));
    cursor_->point1->setCoords(at, 0);
    cursor_->point2->setCoords(at, 1);
    cursor_->setVisible(true);
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LossPlotView::scheduleReplot() {
    if (!replotTimer_.isActive()) replotTimer_.start();
}

}  // namespace graftlab
