#include "train/Schedule.h"

#include <algorithm>
#include <cmath>

namespace graftlab {

double warmupCosineLr(int64_t step, int64_t total, int64_t warmup, double peak, double minLr) {
    if (warmup > 0 && step < warmup) return peak * double(step) / double(warmup);
    if (total <= warmup) return peak;
    double t = std::clamp(double(step - warmup) / double(total - warmup), 0.0, 1.0);
    return minLr + (peak - minLr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

}  // namespace graftlab
