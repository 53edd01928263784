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
    plot_->xAxis->setLabel(tr("step"));
    plot_->yAxis->setLabel(tr("loss"));
    plot_->yAxis2->setVisible(true);
    plot_->yAxis2->setLabel(tr("learning rate"));
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 8));
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignHCenter);
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
        plot_->replot(QCustomPlot::rpQueuedReplot);
    });
}

QCPGraph* LossPlotView::graphFor(const QString& key) {
    auto it = graphs_.find(key);
    if (it != graphs_.end()) return *it;
    bool isLr = key == "lr" || key.startsWith("lr/");
    auto* g = plot_->addGraph(plot_->xAxis, isLr ? plot_->yAxis2 : plot_->yAxis);
    QColor c = isLr ? QColor(120, 120, 120) : kPalette[graphs_.size() % kPalette.size()];
    QPen pen(c, key == "loss" ? 2.0 : 1.3);
    if (isLr) pen.setStyle(Qt::DashLine);
    g->setPen(pen);
    g->setName(key);
    graphs_.insert(key, g);
    return g;
}

void LossPlotView::addRow(qint64 step, const QVector<QPair<QString, double>>& values) {
    // Each named loss gets its own line (so the stages of a grafted run stay apart); the total only when
    // a row has more than one component (MTL), where it differs from each of them.
    int parts = 0;
    for (const auto& kv : values) parts += kv.first.startsWith("loss/");
    for (const auto& [key, v] : values) {
        bool plotted = key.startsWith("loss/") || key == "lr" || (key == "loss" && parts != 1);
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
    static_cast<QStackedLayout*>(layout())->setCurrentWidget(empty_);
    plot_->replot();
}

void LossPlotView::scheduleReplot() {
    if (!replotTimer_.isActive()) replotTimer_.start();
}

}  // namespace graftlab
