#pragma once
#include <QImage>
#include <QVector>
#include <QWidget>

class QLabel;
class QSlider;

namespace graftlab {

// MAE's four panels for the fixed probe images, one grid per probe step; a slider walks through history.
class ReconstructionView : public QWidget {
    Q_OBJECT
public:
    explicit ReconstructionView(QWidget* parent = nullptr);

    void addSnapshot(qint64 step, const QImage& grid, double loss, const QString& note);
    void clear();
    // The text shown while there is no reconstruction (e.g. why the probe is unavailable).
    void setEmptyText(const QString& text);
    int snapshotCount() const { return snapshots_.size(); }
    // Saves the grid shown now; returns an error message, empty on success.
    QString exportCurrent(const QString& path) const;

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void show(int index);

    struct Snapshot {
        qint64 step;
        QImage grid;
        double loss;
        QString note;
    };
    QVector<Snapshot> snapshots_;
    QLabel* image_;
    QLabel* caption_;
    QSlider* slider_;
    bool followLatest_ = true;
};

}  // namespace graftlab
