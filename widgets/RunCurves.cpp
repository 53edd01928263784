#include "RunCurves.h"
#include "base/probes/Snapshot.h"
#include "base/recipe/Recipe.h"
#include "base/run/Observer.h"
#include "base/run/RunLayout.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

#include <cmath>
#include <set>

namespace graftlab {

namespace {
qint64 fileSize(const QString& path) {
    QFileInfo f(path);
    return f.exists() ? f.size() : -1;
}
}  // namespace

RunCurves RunCurves::load(const QString& dir) {
    RunCurves c;
    c.dir = QDir(dir).absolutePath();
    const RunLayout layout(c.dir.toStdString());
    c.label = QFileInfo(c.dir).fileName();
    if (!layout.holdsRun()) {
        c.error = QObject::tr("%1 holds no run (no recipe.json)").arg(c.dir);
        return c;
    }
    c.metricsBytes = fileSize(QString::fromStdString(layout.metrics()));
    c.indexBytes = fileSize(QString::fromStdString(layout.snapshots() + "/index.jsonl"));
    try {
        std::vector<RecipeIssue> issues;
        const Recipe r = loadRecipeFile(layout.recipe(), {}, issues);
        // the recipe's name, and the folder's where it says more ("mae · mae-lr2"; "mae" for a folder named mae)
        const QString name = QString::fromStdString(r.name);
        if (c.label != name) c.label = name + " · " + c.label;
        c.totalSteps = r.totalSteps();
        c.imagesPerStep = r.optim.batchSize;
        const auto stages = r.effectiveStages();
        if (stages.size() > 1) {
            qint64 start = 0;
            for (const auto& s : stages) {
                c.stages.append({start, QString::fromStdString(s.name)});
                start += s.steps;
            }
        }
    } catch (const std::exception& e) {
        c.error = QString::fromStdString(e.what());
        return c;
    }

    const auto rows = MetricsRow::readFile(layout.metrics());
    std::set<std::string> keys;
    for (const auto& r : rows)
        for (const auto& kv : r.values) keys.insert(kv.first);
    for (const auto& k : keys) c.values[QString::fromStdString(k)].reserve(int(rows.size()));
    double seconds = 0;
    int64_t previous = rows.empty() ? 0 : std::min<int64_t>(0, rows.front().step);
    for (const auto& r : rows) {
        // the same wall time as the tables' "Train time" (base/run/Observer.h trainingSeconds), row by row
        const double ips = r.value("images_per_s", 0.0);
        if (ips > 0 && r.step > previous) seconds += double(r.step - previous) * c.imagesPerStep / ips;
        previous = r.step;
        c.step.append(double(r.step));
        c.minutes.append(seconds / 60.0);
        for (const auto& k : keys) c.values[QString::fromStdString(k)].append(r.value(k, NAN));
    }

    std::vector<Snapshot> snaps = SnapshotStore::load(layout.snapshots(), "gradcos");
    std::erase_if(snaps, [](const Snapshot& s) {  // unavailable, or a summary without its columns (a damaged file)
        const SnapshotArray* sum = s.find("summary");
        return !s.unavailable().empty() || !sum || sum->shape.size() != 2 || sum->shape[1] <= kCosMean;
    });
    if (!snaps.empty()) {
        for (const auto& g : snaps.back().meta.value("groups", std::vector<std::string>{})) c.groups << QString::fromStdString(g);
        c.cosMean.resize(c.groups.size());
        for (const auto& s : snaps) {
            const SnapshotArray* sum = s.find("summary");
            c.cosStep.append(double(s.step));
            for (int g = 0; g < c.groups.size(); ++g)
                c.cosMean[g].append(g < sum->shape[0] ? double(sum->at({g, kCosMean})) : NAN);
        }
        c.profile = depthProfile(snaps);
    }
    return c;
}

bool RunCurves::changedOnDisk() const {
    const RunLayout layout(dir.toStdString());
    return fileSize(QString::fromStdString(layout.metrics())) != metricsBytes ||
           fileSize(QString::fromStdString(layout.snapshots() + "/index.jsonl")) != indexBytes;
}

double RunCurves::x(double atStep, OverlayAxis axis) const {
    switch (axis) {
    case OverlayAxis::Step:
        return atStep;
    case OverlayAxis::Fraction:
        return totalSteps > 0 ? atStep / double(totalSteps) : NAN;
    case OverlayAxis::WallTime: {
        if (step.isEmpty()) return NAN;
        if (atStep <= 0) return 0.0;
        // between rows the time grows linearly; before the first row from 0 at step 0
        double s0 = 0, m0 = 0;
        for (int i = 0; i < step.size(); ++i) {
            if (atStep <= step[i]) return step[i] > s0 ? m0 + (minutes[i] - m0) * (atStep - s0) / (step[i] - s0) : minutes[i];
            s0 = step[i];
            m0 = minutes[i];
        }
        return NAN;  // after the last logged row: not timed yet
    }
    }
    return NAN;
}

QString seedGroup(const QString& runName) {
    static const QRegularExpression seeded(QStringLiteral("^(.+)-seed\\d+$"));
    const auto m = seeded.match(runName);
    return m.hasMatch() ? m.captured(1) : runName;
}

QStringList runDirsUnder(const QString& dir, int depth) {
    if (RunLayout(dir.toStdString()).holdsRun()) return {QDir(dir).absolutePath()};
    QStringList out;
    if (depth <= 0) return out;
    const QDir d(dir);
    for (const QString& sub : d.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name))
        out += runDirsUnder(d.filePath(sub), depth - 1);
    return out;
}

}  // namespace graftlab
