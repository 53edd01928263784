#pragma once
// Turning probe snapshots into pictures (no torch): probe images, heat-map overlays, the MAE grid.
#include "base/probes/Snapshot.h"

#include <QColor>
#include <QFont>
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
// MAE's four panels as a figure to read: a title over each column, every image `tile` x `tile` px (nearest
// neighbour), the masked patches of the "masked" panel filled with a hatched magenta that no image content shares
// (from the snapshot's "mask", n x L, 1 = masked), and each image's masked-patch loss left of its row (when the
// snapshot holds "loss_per_image"); the images in `blocks` blocks side by side. Null when a panel is missing.
QImage reconstructionFigure(const Snapshot& s, int tile, const QFont& font, int blocks = 1);
// The tile and number of blocks at which reconstructionFigure fits `area` with the largest tiles (a whole multiple
// of the image size from 3x up: crisp pixels), at least 8 px.
struct ReconstructionLayout {
    int tile = 8, blocks = 1;
};
ReconstructionLayout reconstructionLayoutFor(const Snapshot& s, const QSize& area, const QFont& font);
// The colour of masked patches in reconstructionFigure.
QColor maskedPatchColour();
// DINO's attention mask: the fewest patches whose attention adds up to at least `mass` (0..1) of the total, by
// descending attention (true = kept).
std::vector<bool> attentionMassMask(const std::vector<float>& attention, double mass);
// `image` with the patches outside `keep` (a grid x grid mask) dimmed to a fifth, at `image`'s size.
QImage maskedImage(const QImage& image, const std::vector<bool>& keep, int grid);
// Values [offset, offset + count) of an array.
std::vector<float> slice(const SnapshotArray& a, int64_t offset, int64_t count);

}  // namespace graftlab
