#include "BlockLrChart.h"
#include "PlotExport.h"

#include <qcustomplot.h>

#include <QInputDialog>
#include <QLabel>
#include <QMenu>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace graftlab {

BlockLrChart::BlockLrChart(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setMinimumHeight(210);
    plot_->yAxis->setLabel(tr("lr multiplier"));
    plot_->xAxis->setTickLabelRotation(0);
    plot_->xAxis->grid()->setVisible(false);
    active_ = new QCPBars(plot_->xAxis, plot_->yAxis);
    active_->setName(tr("trained"));
    active_->setPen(QPen(QColor(25, 90, 160)));
    active_->setBrush(QColor(66, 133, 204));
    active_->setWidth(0.7);
    frozen_ = new QCPBars(plot_->xAxis, plot_->yAxis);
    frozen_->setName(tr("frozen (0)"));
    frozen_->setPen(QPen(QColor(120, 120, 120), 1, Qt::DashLine));
    frozen_->setBrush(QBrush(QColor(170, 170, 170), Qt::BDiagPattern));
    frozen_->setWidth(0.7);
    // The legend in a row of its own above the bars, which fill the width.
    placeLegendAbove(plot_);
    plot_->setToolTip(tr("Learning-rate multiplier of each part of the encoder in this stage (× the stage's lr).\n"
                         "Click or drag a bar to set it, double-click to type a value, right-click to freeze or reset.\n"
                         "0 freezes the part (it is not updated); Layer Grafted Pretraining gives the MIM-trained lower blocks 0.1."));

    hint_ = new QLabel(this);
    hint_->setWordWrap(true);
    hint_->setStyleSheet("color: gray;");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_, 1);
    layout->addWidget(hint_);

    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (readOnly_ || e->button() != Qt::LeftButton) return;
        dragging_ = barAt(e->pos());
        if (dragging_ >= 0) setValue(dragging_, valueAtPixel(e->pos().y()));
    });
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        if (dragging_ >= 0 && (e->buttons() & Qt::LeftButton)) setValue(dragging_, valueAtPixel(e->pos().y()));
    });
    connect(plot_, &QCustomPlot::mouseRelease, this, [this](QMouseEvent*) {
        if (dragging_ >= 0) {
            dragging_ = -1;
            refresh();  // the y range follows the values once the drag ends
        }
    });
    connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent* e) {
        int bar = barAt(e->pos());
        if (readOnly_ || bar < 0) return;
        dragging_ = -1;
        bool ok = false;
        double v = QInputDialog::getDouble(this, tr("Learning-rate multiplier"), tr("Multiplier of %1 (0 = frozen):").arg(barLabel(bar)),
                                           value(bar), 0.0, 10.0, 3, &ok);
        if (ok) setValue(bar, v);
    });
    plot_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(plot_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        QMenu menu(this);
        int bar = barAt(pos);
        if (bar >= 0 && !readOnly_) {
            menu.addAction(tr("Freeze %1").arg(barLabel(bar)), [this, bar] { setValue(bar, 0.0); });
            menu.addAction(tr("Reset %1 to 1").arg(barLabel(bar)), [this, bar] { setValue(bar, 1.0); });
            menu.addSeparator();
        }
        if (!readOnly_) {
            menu.addAction(tr("Reset all to 1"), [this] {
                for (auto& v : values_) v = 1.0;
                refresh();
                emit edited();
            });
            menu.addSeparator();
        }
        for (const char* suffix : {"png", "pdf", "svg"}) {
            QString s = QString::fromLatin1(suffix);
            menu.addAction(tr("Export as %1…").arg(s.toUpper()), [this, s] { exportPlotInteractively(plot_, "block_lr", s); });
        }
        menu.exec(plot_->mapToGlobal(pos));
    });
    setMultipliers(1.0, {}, 1.0, 0);
}

void BlockLrChart::setMultipliers(double embed, const std::vector<double>& blocks, double head, int depth) {
    depth = std::max(depth, int(blocks.size()));
    values_.assign(size_t(depth) + 2, 1.0);
    values_.front() = embed;
    values_.back() = head;
    for (size_t i = 0; i < blocks.size(); ++i) values_[i + 1] = blocks[i];
    rebuild();
}

std::vector<double> BlockLrChart::blocks() const {
    if (values_.size() < 2) return {};
    std::vector<double> out(values_.begin() + 1, values_.end() - 1);
    if (std::all_of(out.begin(), out.end(), [](double v) { return v == 1.0; })) return {};
    return out;
}

void BlockLrChart::setValue(int bar, double v) {
    if (bar < 0 || bar >= barCount()) return;
    v = std::clamp(std::round(v * 100.0) / 100.0, 0.0, 10.0);
    if (values_[size_t(bar)] == v) return;
    values_[size_t(bar)] = v;
    refresh();
    emit edited();
}

QString BlockLrChart::barLabel(int bar) const {
    if (bar == 0) return tr("embed");
    if (bar == barCount() - 1) return tr("head");
    return tr("block %1").arg(bar - 1);
}

int BlockLrChart::barAt(const QPoint& pos) const {
    if (!plot_->axisRect()->rect().contains(pos)) return -1;
    double x = plot_->xAxis->pixelToCoord(pos.x());
    int bar = int(std::lround(x));
    if (bar < 0 || bar >= barCount() || std::abs(x - bar) > 0.45) return -1;
    return bar;
}

double BlockLrChart::valueAtPixel(int y) const { return std::max(0.0, plot_->yAxis->pixelToCoord(y)); }

void BlockLrChart::setReadOnly(bool readOnly) {
    readOnly_ = readOnly;
    refresh();
}

void BlockLrChart::rebuild() {
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int i = 0; i < barCount(); ++i) {
        QString label = i == 0 ? tr("emb") : i == barCount() - 1 ? tr("head") : QString::number(i - 1);
        ticker->addTick(i, label);
    }
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setLabel(tr("embedding · blocks 0–%1 · head").arg(std::max(0, barCount() - 3)));
    plot_->xAxis->setRange(-0.6, barCount() - 0.4);
    refresh();
}

void BlockLrChart::refresh() {
    QVector<double> keys, on, off;
    double top = 1.0;
    for (int i = 0; i < barCount(); ++i) {
        keys << i;
        double v = values_[size_t(i)];
        on << v;
        top = std::max(top, v);
    }
    // frozen parts: a short hatched bar, so that they stay visible and clickable
    for (int i = 0; i < barCount(); ++i) off << (values_[size_t(i)] == 0.0 ? 0.06 * top : 0.0);
    active_->setData(keys, on, true);
    frozen_->setData(keys, off, true);
    if (dragging_ < 0) plot_->yAxis->setRange(0, top * 1.15);
    plot_->clearItems();
    int frozenCount = 0;
    for (int i = 0; i < barCount(); ++i) {
        double v = values_[size_t(i)];
        if (v == 0.0) ++frozenCount;
        auto* t = new QCPItemText(plot_);
        t->position->setCoords(i, v == 0.0 ? 0.06 * top : v);
        t->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
        t->setText(v == 0.0 ? tr("frozen") : QString::number(v, 'g', 3));
        t->setFont(QFont(font().family(), 7));
        t->setColor(v == 0.0 ? QColor(110, 110, 110) : QColor(30, 30, 30));
        t->setClipToAxisRect(false);
    }
    hint_->setText(readOnly_ ? tr("Per-block multipliers belong to the stages of a staged recipe.")
                             : frozenCount ? tr("%1 of %2 parts frozen. Click or drag a bar to change it.").arg(frozenCount).arg(barCount())
                                           : tr("Click or drag a bar to change it; right-click to freeze."));
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace graftlab
