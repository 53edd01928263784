#include "RunTailer.h"

#include <nlohmann/json.hpp>
#include "base/run/RunLayout.h"
#include "base/run/Observer.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>
#include <QTextStream>

#include <cmath>

namespace graftlab {

RunTailer::RunTailer(QObject* parent) : QObject(parent) {
    qRegisterMetaType<graftlab::Snapshot>("graftlab::Snapshot");
    qRegisterMetaType<graftlab::MetricValues>("graftlab::MetricValues");
    connect(&timer_, &QTimer::timeout, this, [this] { poll(); });
}

bool RunTailer::open(const QString& dir, int intervalMs, QString* error) {
    close();
    if (!RunLayout(dir.toStdString()).holdsRun()) {
        if (error) *error = tr("%1 is not a run directory: it holds no recipe.json").arg(dir);
        return false;
    }
    dir_ = dir;
    poll();
    if (intervalMs > 0) timer_.start(intervalMs);
    return true;
}

void RunTailer::close() {
    timer_.stop();
    dir_.clear();
    offset_ = 0;
    lineNumber_ = 0;
    partial_.clear();
    seenSnapshots_.clear();
    indexTime_ = {};
    indexSize_ = -1;
    rows_ = snapshotCount_ = 0;
    lastStep_ = -1;
}

int RunTailer::poll() {
    if (dir_.isEmpty()) return 0;
    return readMetrics() + readSnapshots();
}

int RunTailer::readMetrics() {
    QFileInfo info(QString::fromStdString(RunLayout(dir_.toStdString()).metrics()));
    if (!info.exists()) return 0;
    if (info.size() < offset_) {
        // Rewritten shorter: a resumed run dropped the rows after its checkpoint.
        offset_ = 0;
        lineNumber_ = 0;
        partial_.clear();
        rows_ = 0;
        lastStep_ = -1;
        seenSnapshots_.clear();
        indexSize_ = -1;
        emit restarted();
    }
    if (info.size() == offset_) return 0;
    QFile f(info.filePath());
    if (!f.open(QIODevice::ReadOnly)) {
        emit warning(tr("%1: cannot be read: %2").arg(info.filePath(), f.errorString()));
        return 0;
    }
    f.seek(offset_);
    QByteArray data = partial_ + f.readAll();
    offset_ = f.pos();
    int lastNewline = data.lastIndexOf('\n');
    partial_ = data.mid(lastNewline + 1);  // an incomplete last line waits for the next poll
    int count = 0;
    const QList<QByteArray> lines = lastNewline < 0 ? QList<QByteArray>() : data.left(lastNewline).split('\n');
    for (const QByteArray& line : lines) {
        ++lineNumber_;
        if (line.trimmed().isEmpty()) continue;
        std::string why;
        auto row = MetricsRow::parseLine(std::string_view(line.constData(), size_t(line.size())), &why);
        if (!row) {  // the same words as report's and resume's reader (MetricsRow::readFile)
            emit warning(tr("%1:%2: %3, row skipped").arg(info.filePath()).arg(lineNumber_).arg(QString::fromStdString(why)));
            continue;
        }
        MetricValues values;
        values.reserve(qsizetype(row->values.size()));
        for (const auto& [k, v] : row->values) values.append({QString::fromStdString(k), v});
        ++rows_;
        ++count;
        lastStep_ = row->step;
        emit metricsRow(row->step, row->epoch, row->stage, values);
    }
    return count;
}

int RunTailer::readSnapshots() {
    QString snapDir = QString::fromStdString(RunLayout(dir_.toStdString()).snapshots());
    QFileInfo index(QDir(snapDir).filePath("index.jsonl"));
    if (!index.exists()) return 0;
    if (index.size() == indexSize_ && index.lastModified() == indexTime_) return 0;
    indexSize_ = index.size();
    indexTime_ = index.lastModified();
    int count = 0;
    for (const auto& e : SnapshotStore::readIndex(snapDir.toStdString())) {
        QString key = QString::fromStdString(e.kind) + "/" + QString::number(e.step);
        if (seenSnapshots_.contains(key)) continue;
        try {
            Snapshot s = readSnapshotFile(QDir(snapDir).filePath(QString::fromStdString(e.file)).toStdString());
            seenSnapshots_.insert(key);
            ++snapshotCount_;
            ++count;
            emit snapshot(s);
        } catch (const std::exception& ex) {
            // thinned away since the index was read, or being replaced: the next poll sees the new index
            if (QFileInfo::exists(QDir(snapDir).filePath(QString::fromStdString(e.file))))
                emit warning(QString::fromStdString(ex.what()));
        }
    }
    return count;
}

QString RunTailer::exportMetricsCsv(const QString& runDir, const QString& csvPath) {
    QFile in(QString::fromStdString(RunLayout(runDir.toStdString()).metrics()));
    if (!in.open(QIODevice::ReadOnly)) return tr("%1: cannot be read: %2").arg(in.fileName(), in.errorString());
    std::vector<nlohmann::json> rows;
    QStringList columns = {"step", "epoch", "stage"};
    while (!in.atEnd()) {
        QByteArray line = in.readLine().trimmed();
        if (line.isEmpty()) continue;
        auto j = nlohmann::json::parse(line.constData(), line.constData() + line.size(), nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;  // a torn last line
        for (auto it = j.begin(); it != j.end(); ++it) {
            QString k = QString::fromStdString(it.key());
            if (!columns.contains(k)) columns << k;
        }
        rows.push_back(std::move(j));
    }
    if (rows.empty()) return tr("%1 holds no metrics rows yet").arg(in.fileName());
    QSaveFile out(csvPath);
    if (!out.open(QIODevice::WriteOnly | QIODevice::Text)) return tr("%1: cannot be written: %2").arg(csvPath, out.errorString());
    QTextStream ts(&out);
    ts << columns.join(',') << '\n';
    for (const auto& j : rows) {
        QStringList cells;
        for (const auto& c : columns) {
            auto it = j.find(c.toStdString());
            if (it == j.end() || it->is_null()) cells << QString();
            else if (it->is_number_integer()) cells << QString::number(it->get<qint64>());
            else if (it->is_number()) cells << QString::number(it->get<double>(), 'g', 9);
            else cells << QString::fromStdString(it->dump());
        }
        ts << cells.join(',') << '\n';
    }
    ts.flush();
    if (!out.commit()) return tr("%1: cannot be written: %2").arg(csvPath, out.errorString());
    return {};
}

}  // namespace graftlab
