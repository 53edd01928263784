#pragma once
#include <cstdint>

namespace graftlab {

// Linear warm-up from 0 to `peak` over `warmup` steps, then half-cosine down to `minLr` at `total` steps;
// evaluated every iteration (as MAE's adjust_learning_rate, per step instead of per fractional epoch).
double warmupCosineLr(int64_t step, int64_t total, int64_t warmup, double peak, double minLr);

// Cosine ramp from `start` to `end` over the run (MoCo v3 momentum, ConMIM EMA).
double cosineRamp(int64_t step, int64_t total, double start, double end);

}  // namespace graftlab
