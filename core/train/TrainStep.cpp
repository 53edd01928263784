#include "train/TrainStep.h"
#include "data/Augment.h"
#include "dist/Distributed.h"
#include "train/Device.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace graftlab {

at::Generator stepGenerator(uint64_t seed, int64_t step) {
    return at::detail::createCPUGenerator(streamSeed(seed, uint64_t(step), 0x4d41534bull /*MASK*/));
}

StepOutcome trainStep(Objective& objective, AdamW& optimizer, const Batch& batch, StepContext& ctx, const StepSettings& s) {
    auto mark = [&] {
        if (s.mark) s.mark();
    };
    StepOutcome o;
    optimizer.zero_grad();
    {
        AutocastScope autocast(s.bf16, s.device);
        o.out = objective.computeLoss(batch, ctx);
    }
    mark();
    if (s.deviceChecks) {
        o.deviceLoss = o.out.total.detach().to(at::kFloat);
        o.bad = o.deviceLoss.isfinite().logical_not();
        o.out.total.backward();
        mark();
        if (s.clipGrad > 0) clipGradNorm(objective.parameters(), s.clipGrad);
        optimizer.stepWithFlag(o.bad.to(at::kFloat));
        mark();
        ctx.skipped = o.bad;  // the update after the step keeps its target where the step was skipped
        objective.afterOptimizerStep(ctx, o.extra);
        ctx.skipped = at::Tensor();
        mark();
        return o;
    }
    o.loss = o.out.total.item<double>();
    bool finite = std::isfinite(o.loss);
    if (s.dist) {
        // one rank's non-finite loss is every rank's: they skip or stop together
        auto bad = torch::full({1}, finite ? 0.0f : 1.0f);
        s.dist->allReduceSum(bad, "non-finite loss check");
        if (bad.item<float>() > 0 && finite) {
            finite = false;
            o.loss = std::nan("");
        }
    }
    if (!finite) {
        o.skipped = true;
        return o;
    }
    o.out.total.backward();
    mark();
    if (s.dist) s.dist->averageGradients(objective.parameters());
    if (s.clipGrad > 0) clipGradNorm(objective.parameters(), s.clipGrad);
    optimizer.step();
    mark();
    objective.afterOptimizerStep(ctx, o.extra);
    mark();
    return o;
}

}  // namespace graftlab
