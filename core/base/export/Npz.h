#pragma once
// NumPy's .npy and .npz formats, so that `numpy.load` reads probe results as named arrays (no pickle needed).
// .npy: "\x93NUMPY", version 1.0, little-endian header length, a Python-literal dict {'descr', 'fortran_order',
// 'shape'} padded to a multiple of 64 bytes, then the values. .npz: a zip archive (stored, no compression) of
// NAME.npy files.
#include "base/probes/Snapshot.h"

#include <cstdint>
#include <string>
#include <vector>

namespace graftlab {

struct NpyArray {
    std::string name;
    std::string descr;            // "<f4", "<i8", "<U12" (UTF-32LE text of 12 characters)
    std::vector<int64_t> shape;   // {} = a 0-d array
    std::string bytes;
};

NpyArray npyFloat32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& values);
NpyArray npyInt64(const std::string& name, const std::vector<int64_t>& shape, const std::vector<int64_t>& values);
// A 0-d unicode array: numpy.load(...)[name].item() is the text (e.g. JSON).
NpyArray npyText(const std::string& name, const std::string& utf8);

std::string npyBytes(const NpyArray& a);
// Writes atomically; throws FileError naming `path`.
void writeNpz(const std::string& path, const std::vector<NpyArray>& arrays);

// A snapshot's arrays under `prefix` + their names, and prefix + "meta": JSON {kind, step, stage, meta}.
std::vector<NpyArray> snapshotArrays(const Snapshot& s, const std::string& prefix = "");

}  // namespace graftlab
