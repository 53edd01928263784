#pragma once
// Follows a run directory on disk: metrics.jsonl rows and probe snapshots (snapshots/index.jsonl) as they are
// written, by this process or by graftlab-cli on this or another machine (a shared or network file system).
// Polls; a torn last line is left until it is complete; a metrics file that shrank (a resumed run truncates
// its history) restarts the history.
#include "base/probes/Snapshot.h"

#include <QDateTime>
#include <QObject>
#include <QPair>
#include <QSet>
#include <QString>
#include <QTimer>
#include <QVector>

namespace graftlab {

using MetricValues = QVector<QPair<QString, double>>;

class RunTailer : public QObject {
    Q_OBJECT
public:
    explicit RunTailer(QObject* parent = nullptr);

    // Reads what the directory holds now (synchronously, through the signals) and then follows it every
    // `intervalMs` (0 = read once, do not follow). Returns false with `error` when it holds no run.
    bool open(const QString& dir, int intervalMs, QString* error = nullptr);
    void close();
    QString dir() const { return dir_; }
    bool isFollowing() const { return timer_.isActive(); }
    // Reads what is new; returns the number of rows and snapshots that came.
    int poll();
    qint64 rowsRead() const { return rows_; }
    qint64 snapshotsRead() const { return snapshotCount_; }
    qint64 lastStep() const { return lastStep_; }
    // When the run last wrote metrics or snapshots (invalid before anything was read).

    // Exports the metrics of a run directory to CSV (one column per key, rows in file order); returns an
    // error message naming the file, empty on success.
    static QString exportMetricsCsv(const QString& runDir, const QString& csvPath);

signals:
    void metricsRow(qint64 step, qint64 epoch, int stage, const graftlab::MetricValues& values);
    void snapshot(const graftlab::Snapshot& s);
    // The metrics file was rewritten shorter (a resumed run): views should clear; everything is read again.
    void restarted();
    void warning(const QString& text);

private:
    int readMetrics();
    int readSnapshots();

    QString dir_;
    QTimer timer_;
    qint64 offset_ = 0;
    QByteArray partial_;
    qint64 lineNumber_ = 0;  // lines of metrics.jsonl read so far, to name a damaged one
    QSet<QString> seenSnapshots_;
    QDateTime indexTime_;
    qint64 indexSize_ = -1;
    qint64 rows_ = 0, snapshotCount_ = 0, lastStep_ = -1;
};

}  // namespace graftlab

Q_DECLARE_METATYPE(graftlab::Snapshot)
