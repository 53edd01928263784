#pragma once
// The learning-rate multipliers of one stage as bars: patch/position embedding, each transformer block, and
// the head (final norm and heads). Click or drag a bar to set it, double-click to type a value, right-click
// for "freeze" / "reset to 1" / export. A multiplier of 0 freezes the part: its bar is drawn grey and labelled.
#include <QWidget>

#include <vector>

class QCustomPlot;
class QCPBars;
class QLabel;

namespace graftlab {

class BlockLrChart : public QWidget {
    Q_OBJECT
public:
    explicit BlockLrChart(QWidget* parent = nullptr);

    // `blocks` may be empty (all 1) or hold one multiplier per block; `depth` is the model's depth.
    void setMultipliers(double embed, const std::vector<double>& blocks, double head, int depth);
    double embed() const { return values_.empty() ? 1.0 : values_.front(); }
    double head() const { return values_.empty() ? 1.0 : values_.back(); }
    // One per block; empty when every block is 1 (the recipe's "all 1").
    std::vector<double> blocks() const;
    // Bars: 0 = embedding, 1..depth = blocks 0..depth-1, depth+1 = head.
    int barCount() const { return int(values_.size()); }
    double value(int bar) const { return values_.at(size_t(bar)); }
    void setValue(int bar, double v);  // clamps to [0, 10], snaps to 0.01; emits edited()
    bool isFrozen(int bar) const { return value(bar) == 0.0; }
    QString barLabel(int bar) const;
    // The bar under a widget position of the plot, or -1.
    int barAt(const QPoint& plotPos) const;
    QCustomPlot* plot() const { return plot_; }
    void setReadOnly(bool readOnly);

signals:
    void edited();

private:
    void rebuild();
    void refresh();
    double valueAtPixel(int y) const;

    QCustomPlot* plot_;
    QCPBars* active_;
    QCPBars* frozen_;
    QLabel* hint_;
    std::vector<double> values_;
    int dragging_ = -1;
    bool readOnly_ = false;
};

}  // namespace graftlab
