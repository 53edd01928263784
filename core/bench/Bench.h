#pragma once
// The speed benchmark (`graftlab-cli bench`): training steps of a recipe's objective on one fixed, in-memory
// synthetic batch whose views are made once (no I/O, no augmentation in the timed loop), timed after a
// warm-up; the model's FLOPs counted analytically; the sgemm rate measured in the same run as the roofline.
// benchmarks/pytorch_reference.py times the same models and steps in eager PyTorch.
#include "methods/Flops.h"
#include "base/recipe/Recipe.h"

#include <nlohmann/json.hpp>

#include <string>

namespace graftlab {

// The analytic FLOPs of one training image of the recipe's (first stage's) objective (methods/Flops.h).
FlopCount modelFlopsPerImage(const Recipe& r, int channels = 1);

struct BenchOptions {
    int steps = 20;
    int warmup = 3;
    int threads = 0;         // 0 = the recipe's threads (0 there = every core)
    int sgemmSize = 512;     // n of the n x n sgemm that sets the roofline
    std::string profilePath; // non-empty: a Chrome trace of the timed steps (every ATen op), see benchmarks/profile_summary.py
};

struct BenchResult {
    std::string recipe, method, device, precision;
    bool allocatorTuned = false;  // tuneAllocator() in effect (base/util/ThreadEnv.h)
    std::string gemm;             // what the linear layers' products run on (model/Linear.h)
    std::string attention;        // which attention core ran (model/FusedAttention.h)
    std::string optimizer;        // fused AdamW kernel or LibTorch's (train/Optimizer.h)
    std::string timing;           // how steps were timed (bench/DeviceTimer.h)
    std::string roofline;         // what mfu is measured against
    std::string cpuBf16;          // CPU: its bf16 matrix instructions, detected (util/CpuFeatures.h); "" on CUDA
    double rooflineBf16 = 0, rooflineTf32 = 0, rooflineFp32 = 0;  // CUDA: large matmul rates (GFLOP/s), 0 on CPU
    int threads = 0, batch = 0, steps = 0;
    double seconds = 0;              // timed steps only
    double imagesPerSecond = 0;
    double stepMs = 0;               // median step time
    double gflopPerImage = 0;        // trainStep FLOPs / 1e9
    double achievedGflops = 0;
    double sgemmGflops = 0;          // the roofline (GFLOP/s): CPU the faster of the two below, CUDA the matmul rate in the step's precision
    double sgemmGflopsTorch = 0;     // torch::mm (LibTorch's BLAS), n x n x n
    double sgemmGflopsGemm = 0;      // oneDNN's sgemm through util/Gemm.h when the layers use it, else 0
    double mfu = 0;                  // achieved / sgemm
    double peakRssMb = 0;
    double minorFaultsPerStep = 0;  // page faults (minor) per timed step: memory handed back and re-faulted
    double probeShare = -1;          // share of the timed loop in probes; -1 when probes are off
    double firstLoss = 0, lastLoss = 0;
    // where the timed steps went: forward (loss), backward, optimizer step, momentum / EMA update
    double forwardSeconds = 0, backwardSeconds = 0, optimizerSeconds = 0, afterStepSeconds = 0;
    nlohmann::json toJson() const;
};

// Throws RecipeError / FileError naming what is wrong.
BenchResult runBench(const Recipe& recipe, const BenchOptions& options, const std::string& recipeName);

}  // namespace graftlab
