#pragma once
#include <QMap>
#include <QPair>
#include <QTimer>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;
class QCPAxisRect;
class QCPItemStraightLine;
class QCheckBox;
class QLabel;
class QSlider;

namespace graftlab {

// Losses per component (left axis) and the learning rate per parameter group (right axis) against the step;
// below them, throughput (images/s) and the momentum of a momentum encoder. Rows may arrive in
// bursts; they collapse into one redraw every ~40 ms.
// TensorBoard's curve habits: an EMA smoothing slider for the losses (debiased as TensorBoard does, the raw
// curve drawn faint behind), a log-scale toggle for the loss axis, and a read-out of step and values under the
// mouse.
class LossPlotView : public QWidget {
    Q_OBJECT
public:
    explicit LossPlotView(QWidget* parent = nullptr);

    void addRow(qint64 step, const QVector<QPair<QString, double>>& values);
    // A dotted vertical line where a stage of a grafted run begins, labelled with its name.
    void markStage(qint64 step, const QString& name);
    void clear();
    int pointCount() const { return points_; }
    QCustomPlot* plot() const { return plot_; }
    // The curve drawn for a metric (smoothed for losses), its faint raw curve (losses only), or null.
    QCPGraph* graph(const QString& key) const { return graphs_.value(key, nullptr); }
    QCPGraph* rawGraph(const QString& key) const { return raw_.value(key, nullptr); }
    int curveCount() const { return int(graphs_.size()); }
    // The legend's entries, top left to bottom right (the same order for every run).
    QStringList legendOrder() const;

    // 0 = raw losses; w in (0, 1): exponential moving average with weight w (TensorBoard's slider).
    void setSmoothing(double weight);
    double smoothing() const { return smoothing_; }
    void setLogScale(bool on);
    bool logScale() const;
    QSlider* smoothingSlider() const { return smoothingSlider_; }
    QCheckBox* logScaleBox() const { return logBox_; }
    QString readout() const;
    // The read-out for the step nearest to `step` (what hovering over that step shows).
    void showReadoutAt(double step);

    // TensorBoard's debiased EMA of `values` (a NaN stays NaN and leaves the average as it was).
    static QVector<double> smoothed(const QVector<double>& values, double weight);
    // The pen of a learning-rate curve ("lr", "lr/x1", "lr/x0.1", ...), the `index`-th such curve of the plot.
    static QPen lrPen(const QString& key, int index);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    QCPGraph* graphFor(const QString& key);
    void scheduleReplot();
    void orderLegend();
    void resmoothAll();
    struct Ema { double last = 0; int count = 0; };
    double emaStep(Ema& e, double v) const;

    QCustomPlot* plot_;
    QWidget* page_;
    QLabel* empty_;
    QMap<QString, QCPGraph*> graphs_;
    QMap<QString, QCPGraph*> raw_;         // losses: the unsmoothed curve, faint
    QMap<QString, Ema> ema_;
    double smoothing_ = 0.6;
    QSlider* smoothingSlider_;
    QLabel* smoothingValue_;
    QCheckBox* logBox_;
    QLabel* readout_;
    QCPItemStraightLine* cursor_ = nullptr;
    QTimer replotTimer_;
    QCPAxisRect* lower_;  // throughput and momentum
    int points_ = 0, losses_ = 0, lrs_ = 0;
};

}  // namespace graftlab
