#pragma once
// Turning probe snapshots into pictures (no torch): probe images, heat-map overlays, the MAE grid.
#include "base/probes/Snapshot.h"

#include <QColor>
#include <QImage>

#include <vector>

namespace graftlab {

// Image i of an (n, C, H, W) array of [0, 1] values, as RGB.
QImage snapshotImage(const SnapshotArray& images, int64_t i);
// Viridis colour of t in [0, 1].
QColor viridis(double t);
// A grid x grid heat map (values scaled from lo to hi) blended over `image` (alpha = weight of the heat map),
// at `image`'s size.
QImage heatOverlay(const QImage& image, const std::vector<float>& values, int grid, double lo, double hi, double alpha = 0.6);
// MAE's four panels for every image of a reconstruction snapshot, `scale`x, 2-px white gaps.
QImage reconstructionGrid(const Snapshot& s, int scale);
// Values [offset, offset + count) of an array.
std::vector<float> slice(const SnapshotArray& a, int64_t offset, int64_t count);

}  // namespace graftlab
