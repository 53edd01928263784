#pragma once
// Views of the image probes: class-token attention (per block and head, and rollout) over the probe images, and
// patch similarity (click a patch: its cosine similarity, or ConMIM's look-up, to every patch as a heat map).
#include "base/probes/Snapshot.h"

#include <QLabel>
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
signals:
    void clicked(double fx, double fy);
protected:
    void resizeEvent(QResizeEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
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
private:
    void render();
    SnapshotHistory* history_;
    QComboBox* block_;
    QComboBox* head_;
    FitImageLabel* image_;
    QLabel* note_;
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
private:
    void render();
    SnapshotHistory* history_;
    QComboBox* mode_;
    QComboBox* blockBox_;
    QComboBox* imageBox_;
    FitImageLabel* image_;
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QLabel* note_;
    int query_ = -1;
};

}  // namespace graftlab
