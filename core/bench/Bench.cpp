#include "bench/Bench.h"
#include "util/CpuFeatures.h"
#include "bench/DeviceTimer.h"
#include "train/Optimizer.h"
#include "base/util/ThreadEnv.h"
#include "data/Dataset.h"
#include "methods/Objective.h"
#include "model/FusedAttention.h"
#include "model/Linear.h"
#include "util/Gemm.h"
#include "probes/Probes.h"
#include "train/Trainer.h"
#include "train/TrainStep.h"
#include "util/Blas.h"
#include "base/util/Errors.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

namespace graftlab {

FlopCount modelFlopsPerImage(const Recipe& r, int channels) {
    const std::string method = r.stages.empty() ? r.method : r.stages.front().method;
    auto obj = makeObjective(r, method, channels, std::vector<float>(size_t(channels), 0.5f), std::vector<float>(size_t(channels), 0.25f));
    FlopCount c;
    obj->countFlops(c, r, channels);
    return c;
}

nlohmann::json BenchResult::toJson() const {
    nlohmann::json j = {{"recipe", recipe},
                        {"method", method},
                        {"device", device},
                        {"precision", precision},
                        {"cpu_bf16", cpuBf16},
                        {"allocator", allocatorTuned ? "tuned (no mmap per block, no trim)" : "glibc default"},
                        {"attention", attention},
                        {"threads", threads},
                        {"batch", batch},
                        {"steps", steps},
                        {"seconds", seconds},
                        {"images_per_s", imagesPerSecond},
                        {"step_ms_median", stepMs},
                        {"gflop_per_image", gflopPerImage},
                        {"achieved_gflops", achievedGflops},
                        {"sgemm_gflops", sgemmGflops},
                        {"sgemm_gflops_torch_mm", sgemmGflopsTorch},
                        {"sgemm_gflops_onednn", sgemmGflopsGemm},
                        {"gemm", gemm},
                        {"optimizer", optimizer},
                        {"timing", timing},
                        {"roofline", roofline},
                        {"roofline_gflops", {{"bf16", rooflineBf16}, {"tf32", rooflineTf32}, {"fp32", rooflineFp32}}},
                        {"mfu", mfu},
                        {"peak_rss_mb", peakRssMb},
                        {"page_faults_per_step", minorFaultsPerStep},
                        {"first_loss", firstLoss},
                        {"split_ms_per_step", {{"forward", 1000 * forwardSeconds / steps}, {"backward", 1000 * backwardSeconds / steps},
                                               {"optimizer", 1000 * optimizerSeconds / steps}, {"momentum_update", 1000 * afterStepSeconds / steps}}},
                        {"last_loss", lastLoss}};
    if (probeShare >= 0) j["probe_share"] = probeShare;
    return j;
}

namespace {

// What the bench runs with: the recipe, device, precision, and which product, attention and optimizer paths the
// step takes on them.
void describeSetup(BenchResult& res, const Recipe& r, const std::string& recipeName, const std::string& method,
                   torch::Device device, bool bf16, const AdamW& opt) {
    res.recipe = recipeName;
    res.method = method;
    res.device = device.str();
    res.precision = bf16 ? "bf16" : "fp32";
    if (!device.is_cuda()) res.cpuBf16 = detectCpuMatrixIsa().describe();
    res.allocatorTuned = tuneAllocator();
    res.gemm = (device.is_cpu() && !bf16 && fastLinearEnabled()) ? gemmBackendName(gemmBackend()) : "LibTorch (at::linear)";
    res.attention = attentionPathFor(torch::empty({1, 1, 3 * r.model.embedDim}, torch::TensorOptions().device(device).dtype(bf16 ? torch::kBFloat16 : torch::kFloat32)));
    res.optimizer = opt.fused() ? "AdamW, fused kernel (at::_fused_adamw_)" : "AdamW (LibTorch, per parameter)";
}

// The per-step phases (forward, backward, optimizer, after-step) of the timed steps, and their median step.
void summariseSteps(BenchResult& res, const std::vector<std::vector<double>>& stepIntervals) {
    std::vector<double> stepSeconds;
    for (const auto& iv : stepIntervals) {
        res.forwardSeconds += iv[0] / 1000;
        res.backwardSeconds += iv[1] / 1000;
        res.optimizerSeconds += iv[2] / 1000;
        res.afterStepSeconds += iv[3] / 1000;
        stepSeconds.push_back((iv[0] + iv[1] + iv[2] + iv[3]) / 1000);
    }
    std::vector<double> sorted = stepSeconds;
    std::sort(sorted.begin(), sorted.end());
    res.stepMs = 1000.0 * sorted[sorted.size() / 2];
}

void measureRoofline(BenchResult& res, torch::Device device, bool bf16, const BenchOptions& o) {
    // The roofline is the fastest product this process can run. CPU: LibTorch's matmul (the BLAS) and, when the
    // model's layers use it, oneDNN's sgemm through util/Gemm.h, the faster of the two. CUDA: a large product in
    // the precision the step runs in (bf16 under autocast; float32 as tf32 when matmul precision allows it, else
    // float32), measured here in the same process.
    if (device.is_cuda()) {
        const bool tf32 = at::globalContext().float32MatmulPrecision() != at::Float32MatmulPrecision::HIGHEST;
        res.rooflineBf16 = measureMatmulGflops(device, torch::kBFloat16, false);
        res.rooflineTf32 = measureMatmulGflops(device, torch::kFloat32, true);
        res.rooflineFp32 = measureMatmulGflops(device, torch::kFloat32, false);
        res.sgemmGflops = bf16 ? res.rooflineBf16 : (tf32 ? res.rooflineTf32 : res.rooflineFp32);
        res.roofline = bf16 ? "bf16 8192^3 matmul" : (tf32 ? "tf32 8192^3 matmul" : "fp32 8192^3 matmul");
    } else {
        res.sgemmGflopsTorch = measureSgemmGflops(o.sgemmSize, 0.6);
        res.sgemmGflopsGemm = gemmBackend() == GemmBackend::OneDnn ? measureGemmGflops(GemmBackend::OneDnn, o.sgemmSize, 0.6) : 0;
        res.rooflineFp32 = std::max(res.sgemmGflopsTorch, res.sgemmGflopsGemm);
        res.sgemmGflops = res.rooflineFp32;
        res.roofline = "fp32 " + std::to_string(o.sgemmSize) + "^3 sgemm";
        if (bf16) {  // the step's products run in bf16 under autocast: their roofline is a bf16 product's rate
            res.rooflineBf16 = measureMatmulGflops(device, torch::kBFloat16, false, o.sgemmSize, 20);
            res.sgemmGflops = res.rooflineBf16;
            res.roofline = "bf16 " + std::to_string(o.sgemmSize) + "^3 matmul";
        }
    }
}

}  // namespace

BenchResult runBench(const Recipe& recipeIn, const BenchOptions& o, const std::string& recipeName) {
    Recipe r = recipeIn;
    auto issues = r.validate();
    if (!issues.empty()) throw RecipeError(issues.front().field, issues.front().message);
    if (o.steps < 1) throw RecipeError("--steps", "must be at least 1");
    if (o.warmup < 0) throw RecipeError("--warmup", "must be >= 0");
    applyThreadSetting(o.threads > 0 ? o.threads : r.threads);
    torch::Device device = resolveDevice(r.device);
    const bool bf16 = useBf16Autocast(r.train.precision, device);
    torch::manual_seed(uint64_t(r.seed));
    const std::string method = r.stages.empty() ? r.method : r.stages.front().method;
    const int batch = r.optim.batchSize;

    // One fixed in-memory batch; its views are made once, outside the timed loop.
    Dataset data = makeSynthetic(std::max(batch, 64), r.data.imageSize, uint64_t(r.seed), Split::Train);
    auto obj = makeObjective(r, method, data.channels(), data.mean, data.std);
    obj->to(device);
    Batch b;
    b.images = data.images.slice(0, 0, batch).to(torch::kFloat32).div(255.0);
    b.views = obj->makeViews(b.images, uint64_t(r.seed) + 1);
    for (auto& v : b.views) v = v.to(device).contiguous();
    b.images = b.images.to(device);
    b.labels = data.labels.slice(0, 0, batch).to(device);

    // AdamW as the trainer builds it (a single-stage recipe: every multiplier 1).
    AdamwGroups built = adamwGroups(*obj, r, [](const std::string&) { return 1.0; });
    AdamW opt(built.groups, torch::optim::AdamWOptions(r.peakLr()));

    std::unique_ptr<ProbeRunner> probes;
    if (r.probes.every > 0) probes = std::make_unique<ProbeRunner>(r, data, device);

    BenchResult res;
    describeSetup(res, r, recipeName, method, device, bf16, opt);
    res.threads = torch::get_num_threads();
    res.batch = batch;
    res.steps = o.steps;
    const int total = o.warmup + o.steps;
    double probeSeconds = 0;
    using clock = std::chrono::steady_clock;
    clock::time_point timedStart;
    long faultsAtStart = 0;
    auto minorFaults = [] {
        struct rusage ru {};
        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_minflt;
    };
    // Five marks a timed step (start, after the forward, the backward, the optimizer, the momentum update), on the
    // device's own clock (bench/DeviceTimer.h): on CUDA nothing in the loop waits for the GPU.
    DeviceTimer timer(device);
    res.timing = timer.method();
    std::vector<std::vector<double>> stepIntervals;
    torch::Tensor lastLoss;
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    auto flushTimer = [&] {
        auto ms = timer.intervalsMs();
        for (size_t k = 0; k + 3 < ms.size(); k += 5) stepIntervals.push_back({ms[k], ms[k + 1], ms[k + 2], ms[k + 3]});
    };
    for (int i = 0; i < total; ++i) {
        if (i == o.warmup) {
            if (device.is_cuda()) torch::cuda::synchronize();
            timedStart = clock::now();
            faultsAtStart = minorFaults();
            if (!o.profilePath.empty()) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(o.profilePath);
        }
        const bool timed = i >= o.warmup;
        StepContext ctx;
        ctx.step = i;
        ctx.totalSteps = total;
        ctx.stageStep = i;
        ctx.stageSteps = total;
        ctx.seed = uint64_t(r.seed);
        ctx.generator = stepGenerator(uint64_t(r.seed), i);  // the trainer's masks
        if (timed) timer.mark();
        StepSettings settings;  // the step the trainer runs, on the path it takes on this device
        settings.device = device;
        settings.bf16 = bf16;
        settings.deviceChecks = opt.fused() && device.is_cuda();
        settings.clipGrad = r.optim.clipGrad;
        if (timed) settings.mark = [&timer] { timer.mark(); };
        StepOutcome done = trainStep(*obj, opt, b, ctx, settings);
        if (done.skipped) throw std::runtime_error("bench: the loss is not finite at step " + std::to_string(i) + "; nothing to time");
        const LossOutput& out = done.out;
        if (i == 0) res.firstLoss = out.total.item<double>();  // in the warm-up: the one read back
        // on CUDA the last loss stays on the device (read once at the end); on the CPU reading it costs nothing, and
        // holding a tensor of the step across steps would change what the allocator reuses
        if (device.is_cuda()) lastLoss = out.total.detach().clone();
        else res.lastLoss = out.total.item<double>();
        if (probes && timed && (i - o.warmup) % r.probes.every == 0) {
            flushTimer();  // probes wait for the device anyway; their time is not a step's
            auto p0 = clock::now();
            probes->run(i, 0, *obj, nullptr, "");
            probeSeconds += std::chrono::duration<double>(clock::now() - p0).count();
        }
    }
    flushTimer();
    if (device.is_cuda()) torch::cuda::synchronize();
    res.seconds = std::chrono::duration<double>(clock::now() - timedStart).count();
    if (lastLoss.defined()) res.lastLoss = lastLoss.item<double>();
    res.minorFaultsPerStep = double(minorFaults() - faultsAtStart) / o.steps;
    profile.reset();  // writes the trace
    summariseSteps(res, stepIntervals);
    const double trainSeconds = res.seconds - probeSeconds;
    res.imagesPerSecond = double(batch) * o.steps / trainSeconds;
    FlopCount f;
    obj->countFlops(f, r, data.channels());
    res.gflopPerImage = f.trainStep / 1e9;
    res.achievedGflops = res.gflopPerImage * res.imagesPerSecond;
    measureRoofline(res, device, bf16, o);
    res.mfu = res.sgemmGflops > 0 ? res.achievedGflops / res.sgemmGflops : 0;
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    res.peakRssMb = double(ru.ru_maxrss) / 1024.0;
    if (probes) res.probeShare = probeSeconds / res.seconds;
    return res;
}

}  // namespace graftlab
