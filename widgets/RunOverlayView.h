#pragma once
// Several runs on one plot (TensorBoard's run list): a list of runs with check boxes and colours (the run shown in
// the other tabs, runs opened before, a sweep's or a table's runs), and one curve of every ticked run on shared
// axes: a loss, a learning rate, throughput, or the gradient cosine of one parameter group against the step, the
// training wall time or the fraction of training, with each run's stage boundaries; or the gradient-cosine depth
// profile of each run's last phase. Runs still being written are re-read every 2 s while the view is shown.
#include "RunCurves.h"

#include <QColor>
#include <QTimer>
#include <QVector>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPGraph;
class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QListWidgetItem;
class QPushButton;

namespace graftlab {

class RunOverlayView : public QWidget {
    Q_OBJECT
public:
    explicit RunOverlayView(QWidget* parent = nullptr);

    // Lists a run directory (a listed one keeps its place and colour; `checked` ticks it). False, with why in
    // `error`, when the directory holds no run.
    bool addRun(const QString& dir, bool checked = true, QString* error = nullptr);
    // Lists every run under a folder (a sweep's or a table's; a run directory is itself); returns how many.
    int addRunsUnder(const QString& dir, bool checked = true);
    void removeRun(const QString& dir);
    QStringList runs() const;
    QStringList checkedRuns() const;
    void setChecked(const QString& dir, bool checked);
    QColor colourOf(const QString& dir) const;

    // The curve drawn: a metric key ("loss", "loss/mim", "lr/x1", "images_per_s", ...), "cos:<group>" for the
    // gradient cosine of a parameter group, or "profile" for the depth profile. curveKeys() lists what the runs
    // hold, in the curve box's order.
    QStringList curveKeys() const;
    QString curve() const;
    void setCurve(const QString& key);
    OverlayAxis axis() const { return axis_; }
    void setAxis(OverlayAxis axis);
    void setSmoothing(double weight);

    QCustomPlot* plot() const { return plot_; }
    // Ticked runs NAME-seedN of one folder drawn as one curve (their mean at the steps all logged) in a band of ± one
    // sample sd; on by default. series() of any of them is that curve.
    QCheckBox* seedsTogetherBox() const { return seedsBox_; }
    // The line drawn for a run (null when it is not ticked or has no such curve), and how many runs are drawn.
    QCPGraph* series(const QString& dir) const;
    int seriesCount() const;
    int stageLineCount() const { return stageLines_; }
    QString noteText() const;  // which ticked runs lack the curve
    QString readout() const;
    void showReadoutAt(double x);

    // Re-reads the runs whose files changed on disk and redraws; returns how many were re-read.
    int reload();
    // The run list in QSettings (dirs, unticked ones), written on every change, restored at start-up.
    void restoreRuns();

signals:
    void runsChanged();

private:
    struct Entry {
        RunCurves curves;
        QColor colour;
        QListWidgetItem* item = nullptr;
    };
    int indexOf(const QString& dir) const;
    QColor nextColour() const;
    void rebuildCurveBox();
    void redraw();
    void drawProfile();
    void saveRuns() const;
    static QString curveLabel(const QString& key);

    QVector<Entry> entries_;
    QListWidget* list_;
    QPushButton *addButton_, *removeButton_;
    QComboBox* curveBox_;
    QComboBox* axisBox_;
    QDoubleSpinBox* smoothingBox_;
    QCheckBox* logBox_;
    QCheckBox* seedsBox_;
    QCustomPlot* plot_;
    QLabel* note_;
    QLabel* readout_;
    QTimer poll_;
    OverlayAxis axis_ = OverlayAxis::Step;
    double smoothing_ = 0.6;
    QString wantedCurve_ = QStringLiteral("loss");
    int stageLines_ = 0;
    bool restoring_ = false;
};

}  // namespace graftlab
