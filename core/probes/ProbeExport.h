#pragma once
// PNG and CSV exports of probe snapshots (the CLI's `probe` command, and any tool that wants files).
#include "base/probes/Snapshot.h"

#include <string>

namespace graftlab {

struct ProbeExportOptions {
    int scale = 4;       // upscaling of the probe images in PNGs
    int query = -1;      // similarity: query patch (row-major index); -1 = the centre patch
    int head = -1;       // attention: one head; -1 = the mean over heads
    int maxImages = 8;   // rows of a PNG
};

// Writes a CSV in long format for the snapshot's kind (gradcos, attention, similarity, reconstruction); for
// gradcos also <stem>_summary.csv. Returns the files written. Throws FileError naming the file.
std::vector<std::string> exportSnapshotCsv(const Snapshot& s, const std::string& path);

// Writes a PNG: gradcos as a group x image heatmap on a diverging scale (-1 blue, 0 white, +1 red); attention
// as class-token attention (per block, and rollout) over each image; similarity as the chosen query patch's
// similarity (and ConMIM look-up) over each image; reconstruction as MAE's four panels. Throws FileError.
void exportSnapshotPng(const Snapshot& s, const std::string& path, const ProbeExportOptions& options = {});
// The same figure as PNG bytes (TensorBoard images, reports). Throws std::runtime_error when the snapshot
// cannot be drawn, or the build has no OpenCV (snapshotPngAvailable() is false then).
std::string renderSnapshotPng(const Snapshot& s, const ProbeExportOptions& options = {});
bool snapshotPngAvailable();
// The masked panel of a reconstruction snapshot's image i as the PNG draws it, (H, W, 3) RGB uint8: the original with
// the masked patches filled magenta and hatched. Throws where snapshotPngAvailable() is false or the snapshot has no
// "original" and "mask".
torch::Tensor reconstructionMaskedPanel(const Snapshot& s, int64_t i, int scale = 1);

}  // namespace graftlab
