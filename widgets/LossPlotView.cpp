#include "LossPlotView.h"
#include "PlotExport.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QStackedLayout>
#include <QVBoxLayout>

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

    empty_ = new QLabel(tr("Losses and the learning rate appear here once training starts.\n"
                           "Press Start (Ctrl+R), or open a run directory (Ctrl+Shift+O)."),
                        this);
    empty_->setAlignment(Qt::AlignCenter);
    empty_->setStyleSheet("color: gray;");
    auto* stack = new QStackedLayout(this);
    stack->addWidget(empty_);
    stack->addWidget(plot_);
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
        // a little head room so that no line runs along the top edge
        auto* y = plot_->yAxis;
        y->setRangeUpper(y->range().upper + 0.04 * y->range().size());
        plot_->replot(QCustomPlot::rpQueuedReplot);
    });
}

QCPGraph* LossPlotView::graphFor(const QString& key) {
    auto it = graphs_.find(key);
    if (it != graphs_.end()) return *it;
    bool isLr = key == "lr" || key.startsWith("lr/");
    bool isIps = key == "images_per_s", isMomentum = key == "momentum";
    QCPGraph* g;
    if (isIps) g = plot_->addGraph(lower_->axis(QCPAxis::atBottom), lower_->axis(QCPAxis::atLeft));
    else if (isMomentum) g = plot_->addGraph(lower_->axis(QCPAxis::atBottom), lower_->axis(QCPAxis::atRight));
    else g = plot_->addGraph(plot_->xAxis, isLr ? plot_->yAxis2 : plot_->yAxis);
    QColor c = kPalette[losses_++ % kPalette.size()];
    if (isLr) c = QColor::fromHsv(0, 0, std::max(60, 150 - 40 * lrs_++));  // greys, one per parameter group
    if (isIps) c = QColor(100, 100, 100);
    if (isMomentum) c = QColor(188, 140, 30);
    if (isLr || isIps || isMomentum) --losses_;
    QPen pen(c, key == "loss" ? 2.0 : 1.3);
    if (isLr) pen.setStyle(lrs_ % 2 ? Qt::DashLine : Qt::DashDotLine);
    g->setPen(pen);
    g->setName(isLr && key != "lr" ? tr("lr %1").arg(key.mid(3)) : isIps ? tr("images/s") : key);
    graphs_.insert(key, g);
    return g;
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
        graphFor(key)->addData(double(step), v);
    }
    ++points_;
    static_cast<QStackedLayout*>(layout())->setCurrentWidget(plot_);
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
    points_ = 0;
    losses_ = lrs_ = 0;
    static_cast<QStackedLayout*>(layout())->setCurrentWidget(empty_);
    plot_->replot();
}

void LossPlotView::scheduleReplot() {
    if (!replotTimer_.isActive()) replotTimer_.start();
}

}  // namespace graftlab
