#pragma once
#include "base/probes/Snapshot.h"

#include <QImage>
#include <QVector>
#include <QWidget>

class QLabel;
class QSlider;

namespace graftlab {

// MAE's four panels for the fixed probe images, one figure per probe step (SnapshotImages' reconstructionFigure: a
// title over each column, masked patches hatched in magenta, each image's masked-patch loss); the tiles grow with the
// view (whole multiples of the image size); a slider walks through history.
class ReconstructionView : public QWidget {
    Q_OBJECT
public:
    explicit ReconstructionView(QWidget* parent = nullptr);

    // A "reconstruction" snapshot (original, masked, reconstruction, pasted; mask and loss_per_image where stored);
    // `note` is added to the caption (e.g. the mask ratio and seed of the Inspect window).
    void addSnapshot(const Snapshot& s, const QString& note = {});
    void clear();
    // The text shown while there is no reconstruction (e.g. why the probe is unavailable).
    void setEmptyText(const QString& text);
    int snapshotCount() const { return snapshots_.size(); }
    // The side of one image in the figure shown now (0 before any).
    int tileSize() const { return tile_; }
    QString caption() const;
    // Saves the figure shown now; returns an error message, empty on success.
    QString exportCurrent(const QString& path) const;

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void showIndex(int index);

    struct Entry {
        Snapshot snapshot;
        QString note;
    };
    QVector<Entry> snapshots_;
    QImage shown_;
    int tile_ = 0;
    QLabel* image_;
    QLabel* caption_;
    QSlider* slider_;
    bool followLatest_ = true;
};

}  // namespace graftlab
