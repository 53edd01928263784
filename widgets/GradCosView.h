#pragma once
// Per-layer gradient cosines between the MIM and CL losses (Layer Grafted Pretraining): the mean per parameter
// group over steps (a line per block), a group x step heat map on a diverging scale, the per-image values at
// a chosen step, and the depth profile (x = group from the input up, y = mean cosine with the 10-90 % band over
// the probe images, one line per training phase; base/probes/DepthProfile.h).
#include "base/probes/Snapshot.h"

#include <utility>

#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPItemText;
class QCPColorMap;
class QComboBox;
class QLabel;
class QSlider;

namespace graftlab {

class GradCosView : public QWidget {
    Q_OBJECT
public:
    explicit GradCosView(QWidget* parent = nullptr);
    // Takes "gradcos" snapshots (others are ignored); an unavailable one shows its reason until data arrives.
    void addSnapshot(const Snapshot& s);
    void clear();
    int snapshotCount() const { return snaps_.size(); }
    QCustomPlot* linePlot() const { return lines_; }
    QCustomPlot* heatPlot() const { return heat_; }
    QCustomPlot* samplePlot() const { return samples_; }
    QCustomPlot* profilePlot() const { return profile_; }
    // The depth profile's key to its lines ("solid: mean ... dashed: percentiles"), under its x-axis.
    QString profileKeyText() const;
    // The cosine range of the lines and the heat map: a fixed symmetric ±range (a colour keeps its meaning while
    // the run goes on), or 0 = auto, sized to the largest mean over the whole run so far. Kept in QSettings.
    void setCosineRange(double range);
    double cosineRange() const { return fixedRange_; }
    QString cosineRangeText() const;  // what the range box shows
    std::pair<double, double> shownRange() const;  // what the colour bar shows now (lower, upper)

private:
    void rebuild();
    void applyCosineRange(double range);  // setCosineRange without saving the choice
    void showStep(int index);
    QVector<Snapshot> snaps_;
    QLabel* status_;
    QCustomPlot* lines_;
    QCustomPlot* heat_;
    QCustomPlot* samples_;
    QCustomPlot* profile_;
    void rebuildProfile();
    QCPColorMap* map_ = nullptr;
    QSlider* slider_;
    bool followLatest_ = true;
    double fixedRange_ = 0;
    QComboBox* rangeBox_ = nullptr;
};

}  // namespace graftlab
