#pragma once
// The learning-rate schedule of pretraining and fine-tuning (the momentum schedule is methods/Ema.h's cosineRamp).
#include <cstdint>

namespace graftlab {

// Linear warm-up from 0 to `peak` over `warmup` steps, then half-cosine down to `minLr` at `total` steps;
// evaluated every iteration (as MAE's adjust_learning_rate, per step instead of per fractional epoch).
double warmupCosineLr(int64_t step, int64_t total, int64_t warmup, double peak, double minLr);

}  // namespace graftlab
