#pragma once
// One run's curves as read from its directory (metrics.jsonl, recipe.json and the gradient-cosine snapshots), for
// drawing several runs on one set of axes (RunOverlayView). Torch-free; reading never throws: a run that cannot be
// read says why in `error`.
#include "base/probes/DepthProfile.h"

#include <QMap>
#include <QPair>
#include <QString>
#include <QStringList>
#include <QVector>

namespace graftlab {

// What the x-axis of an overlay counts: the step, the training wall time (minutes, from the logged images/s; each
// run from its own start), or the fraction of the run's planned steps (runs of different lengths side by side).
enum class OverlayAxis { Step, WallTime, Fraction };

struct RunCurves {
    QString dir;
    QString label;                 // "<recipe name> · <folder>"
    QString error;                 // why the run could not be read ("" when it was)
    qint64 totalSteps = 0;         // the recipe's planned steps (every stage); 0 when unknown
    double imagesPerStep = 0;      // the recipe's batch
    QVector<double> step;          // per metrics row
    QVector<double> minutes;       // training wall time up to each row (probes included)
    QMap<QString, QVector<double>> values;    // per metric key, aligned with `step`; NaN where a row lacks the key
    QVector<QPair<qint64, QString>> stages;   // where each stage begins (runs of several stages), with its name
    QStringList groups;                       // gradient-cosine parameter groups, input to output ("encoder" = all)
    QVector<double> cosStep;                  // steps of the gradient-cosine probes
    QVector<QVector<double>> cosMean;         // [group][probe]: mean cosine over the probe images
    DepthProfile profile;                     // phases of the gradient-cosine depth profile
    qint64 metricsBytes = -1, indexBytes = -1;  // sizes read, to see when the run has grown

    static RunCurves load(const QString& dir);
    // Whether the files on disk differ in size from what was read (the run is still being written).
    bool changedOnDisk() const;
    // x of a step on `axis` (wall time interpolated between logged rows; NaN when the axis cannot place it).
    double x(double atStep, OverlayAxis axis) const;
};

// NAME of a run directory named NAME-seedN (a table's or a sweep's seeds); the name itself otherwise.
QString seedGroup(const QString& runName);

// The runs under `dir`: the run itself when it holds one, else every run directory below it (a sweep's or a
// table's folder), searched `depth` levels down, in name order.
QStringList runDirsUnder(const QString& dir, int depth = 3);

}  // namespace graftlab
