#pragma once
#include <QMap>
#include <QPair>
#include <QTimer>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;
class QCPAxisRect;
class QLabel;

namespace graftlab {

// Losses per component (left axis) and the learning rate per parameter group (right axis) against the step;
// below them, throughput (images/s) and the momentum of a momentum encoder. Rows may arrive in
// bursts; they collapse into one redraw every ~40 ms.
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

private:
    QCPGraph* graphFor(const QString& key);
    void scheduleReplot();

    QCustomPlot* plot_;
    QLabel* empty_;
    QMap<QString, QCPGraph*> graphs_;
    QTimer replotTimer_;
    QCPAxisRect* lower_;  // throughput and momentum
    int points_ = 0, losses_ = 0, lrs_ = 0;
};

}  // namespace graftlab
