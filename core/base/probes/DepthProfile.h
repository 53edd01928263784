#pragma once
// The depth profile of the gradient cosine between the MIM and CL losses (Layer Grafted Pretraining's finding that
// the two conflict more in deeper blocks): x = parameter group from the input up, y = the mean cosine over the
// probe images, with the band from their 10th to 90th percentile, one line per training phase. Torch-free: the
// GUI, the HTML report and the CLI's CSV draw the same numbers.
#include "base/probes/Snapshot.h"

#include <string>
#include <vector>

namespace graftlab {

struct DepthProfilePhase {
    std::string label;             // "stage 2, steps 300–600" or "steps 0–150"
    int64_t firstStep = 0, lastStep = 0;
    int snapshots = 0;             // gradcos probes averaged into this phase
    std::vector<double> mean, q10, q90, batch;  // per group (batch: whole-batch cosine, NaN when not stored)
};

struct DepthProfile {
    std::vector<std::string> groups;   // parameter groups without the "encoder" total, input to output
    std::vector<DepthProfilePhase> phases;
};

// From "gradcos" snapshots (others and unavailable ones are skipped), oldest first: one phase per training stage
// when the run has several, otherwise up to `phases` equal spans of the probed steps. Each phase averages its
// probes' per-group mean, 10th and 90th percentile (summary columns) and whole-batch cosine.
DepthProfile depthProfile(const std::vector<Snapshot>& snapshots, int phases = 4);

// CSV: phase,first_step,last_step,probes,group,depth,mean,q10,q90,batch_cos
std::string depthProfileCsv(const DepthProfile& p);

}  // namespace graftlab
