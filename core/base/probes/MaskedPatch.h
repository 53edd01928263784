#pragma once
// How GraftLab's pictures of MAE reconstructions draw a masked patch: magenta with a light diagonal hatch (a grey
// fill looks like cloth on Fashion-MNIST). One rule for the CLI's grid and PNG (probes/Reconstruction), the HTML
// report and the GUI's colour (widgets/SnapshotImages).
#include "base/probes/Snapshot.h"

#include <cstdint>
#include <optional>

namespace graftlab {

struct Rgb8 {
    uint8_t r, g, b;
};
inline constexpr Rgb8 kMaskedPatchFill{220, 0, 150};
inline constexpr Rgb8 kMaskedPatchHatch{240, 150, 220};
// Whether pixel (y, x) of an image lies on the hatch (every 6th and 7th diagonal).
inline constexpr bool onMaskedPatchHatch(int64_t y, int64_t x) { return (y + x) % 6 < 2; }

// `original` (n, C, H, W) in [0, 1] as RGB (n, 3, H, W) with the patches where `mask` (n', L = g*g, 1 = masked)
// is set drawn in the fill and hatch above. Empty when the shapes do not fit (fewer mask rows than images, L not a
// square grid dividing H and W: a damaged file): callers fall back to the stored panel.
std::optional<SnapshotArray> maskedInMagenta(const SnapshotArray& original, const SnapshotArray& mask);

}  // namespace graftlab
