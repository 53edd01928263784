#pragma once
// Views of the image probes: class-token attention (per block and head, and rollout) over the probe images, and
// patch similarity (click a patch: its cosine similarity, or ConMIM's look-up, to every patch as a heat map).
#include "base/probes/Snapshot.h"

#include <QLabel>
#include <QPointF>

#include <QMap>

#include <cmath>
#include <QVector>
#include <QWidget>

class QComboBox;
class QCustomPlot;
class QCPColorMap;
class QSlider;

namespace graftlab {

// A label showing a pixmap scaled to fit; reports clicks in image coordinates ([0, 1] x [0, 1]).
class FitImageLabel : public QLabel {
    Q_OBJECT
public:
    explicit FitImageLabel(QWidget* parent = nullptr);
    void setImage(const QImage& image);
    const QImage& image() const { return image_; }
    // Where a point of the widget falls in the image ([0, 1] x [0, 1]), or (-1, -1) outside it.
    QPointF imagePoint(const QPointF& widgetPos) const;
signals:
    void clicked(double fx, double fy);
    void hovered(double fx, double fy);  // (-1, -1): the mouse left the image
protected:
    void resizeEvent(QResizeEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void leaveEvent(QEvent* e) override;
private:
    void refresh();
    QImage image_;
    QRect shown_;
};

// Keeps one kind's snapshots in step order and a slider over them.
class SnapshotHistory : public QWidget {
    Q_OBJECT
public:
    SnapshotHistory(const QString& kind, QWidget* parent = nullptr);
    // Returns false for other kinds; an unavailable snapshot sets the empty-state text.
    bool add(const Snapshot& s);
    void clear();
    int count() const { return snaps_.size(); }
    const Snapshot* current() const;
    const QVector<Snapshot>& all() const { return snaps_; }
    QSlider* slider() const { return slider_; }
signals:
    void currentChanged();
    void unavailable(const QString& reason);
private:
    QString kind_;
    QVector<Snapshot> snaps_;
    QSlider* slider_;
    QLabel* caption_;
    bool followLatest_ = true;
};

class AttentionView : public QWidget {
    Q_OBJECT
public:
    explicit AttentionView(QWidget* parent = nullptr);
    void addSnapshot(const Snapshot& s);
    void clear();
    int snapshotCount() const { return history_->count(); }
    QString exportCurrent(const QString& path) const;
    static constexpr int kAllHeads = -2;
    // -1 = the mean of heads, kAllHeads = every head at once (images x heads), else one head.
    void setHead(int head);
    void setBlock(int block);          // -1 = rollout
    void setSharedScale(bool shared);  // one colour scale per block (default) or one per panel
    // DINO's mask instead of the heat map: the patches holding `mass` (e.g. 0.6) of the attention shown, the rest
    // dimmed; 0 = the heat map.
    void setMassMask(double mass);
    // The heat map's opacity over the image (0 = the image only, 1 = the heat map only); kept in QSettings.
    void setOpacity(double opacity);
    double opacity() const;
    // What the panel under a point of the picture shows ([0, 1] x [0, 1] of shownImage()): image, head, patch and
    // its attention; empty outside every panel.
    QString valueAt(double fx, double fy) const;
    QString hoverText() const;
    // The colour scale of the panels shown (0 to the block's largest attention), NaN when each panel has its own.
    QPair<double, double> shownRange() const { return range_; }
    QImage shownImage() const { return image_->image(); }
private:
    void render();
    SnapshotHistory* history_;
    QComboBox* block_;
    QComboBox* head_;
    QComboBox* scale_;
    QComboBox* show_;
    QSlider* opacity_;
    QPair<double, double> range_{NAN, NAN};
    FitImageLabel* image_;
    QLabel* note_;
    QLabel* hover_;
    struct Panel {
        QRect rect;  // in shownImage()
        int image = 0, head = -1, grid = 1;  // head -1 = mean of heads (or rollout)
        std::vector<float> values;
    };
    QVector<Panel> panels_;
};

class SimilarityView : public QWidget {
    Q_OBJECT
public:
    explicit SimilarityView(QWidget* parent = nullptr);
    void addSnapshot(const Snapshot& s);
    void clear();
    int snapshotCount() const { return history_->count(); }
    void setQuery(int patch);
    int query() const { return query_; }
    // -1 = the probe's block (probes.similarity_block), else a block whose similarity the snapshot stores.
    void setBlock(int block);
    int blockChoices() const;
    QCustomPlot* plot() const { return plot_; }
    // The colour range: auto (default: the least and largest value of every stored snapshot of the run, for the mode
    // and block shown, so a colour keeps its meaning across queries, images and steps) or fixed (-1..1; look-up 0..1).
    void setAutoRange(bool on);
    QPair<double, double> shownRange() const { return range_; }
private:
    void render();
    SnapshotHistory* history_;
    QComboBox* mode_;
    QComboBox* rangeBox_;
    QPair<double, double> range_{NAN, NAN};
    QMap<QString, QPair<double, double>> runRanges_;  // "mode/block" -> least and largest value of the run
    QComboBox* blockBox_;
    QComboBox* imageBox_;
    FitImageLabel* image_;
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QLabel* note_;
    int query_ = -1;
};

}  // namespace graftlab
