// graftlab-cli recipe and bench.
#include "CliCommon.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "bench/Bench.h"
#include "base/util/AtomicFile.h"

#include <cstdio>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kBenchHelp =
    "Usage: graftlab-cli bench [--recipe FILE|PRESET] [--steps N] [--warmup K] [--threads T] [--json OUT]\n"
    "                          [--set key=value ...]\n"
    "\n"
    "Times N training steps (after K warm-up steps) of the recipe's objective on one fixed in-memory synthetic\n"
    "batch whose views are made once: forward, backward, AdamW, momentum/EMA update; no I/O, no augmentation.\n"
    "Prints images/s, the model's GFLOP per image (analytic: linear layers, patch embedding and attention\n"
    "matmuls, forward + backward = 3x forward for trained parts), the GFLOP/s achieved, the sgemm GFLOP/s\n"
    "measured in the same run (512 x 512 x 512; the faster of torch::mm and oneDNN's sgemm, which the linear\n"
    "layers use when LibTorch loaded it; on CUDA an 8192^3 matmul in the step's precision, bf16 or tf32/fp32)\n"
    "and their ratio (model FLOP utilisation), peak RSS, the share of time in probes when probes.every > 0,\n"
    "and on a CPU its bf16 matrix instructions as read from the processor (AMX-BF16, AVX512-BF16 or none:\n"
    "train.precision=bf16 is worth trying with either, and slower than fp32 without).\n"
    "benchmarks/pytorch_reference.py times eager PyTorch alike.\n"
    "\n"
    "  --recipe   recipe file or preset (default: bench_mae_tiny)\n"
    "  --steps    timed steps (default 20)      --warmup  untimed steps first (default 3)\n"
    "  --threads  intra-op threads (default: the recipe's threads; 0 there = every core)\n"
    "  --json     also write the figures to this JSON file\n"
    "  --profile  write a Chrome trace of the timed steps (every ATen op) to FILE;\n"
    "             benchmarks/profile_summary.py FILE prints the ops by self time\n"
    "\n"
    "For comparisons (environment): GRAFTLAB_GEMM=blas runs the products on the BLAS instead of oneDNN,\n"
    "GRAFTLAB_FAST_LINEAR=0 and GRAFTLAB_FUSED_ATTENTION=0 use LibTorch's own linear layers and attention,\n"
    "GRAFTLAB_SDPA=all takes scaled_dot_product_attention on the CPU too (default: on CUDA only; =0 nowhere; LibTorch >= 2.1),\n"
    "GRAFTLAB_FUSED_ADAMW=0 LibTorch's per-parameter AdamW instead of the fused kernel (LibTorch >= 2.0 CUDA, 2.4 CPU),\n"
    "GRAFTLAB_MALLOC=default keeps glibc's allocator settings (see benchmarks/RESULTS.md).\n";

const char* kRecipeHelp =
    "Usage: graftlab-cli recipe [--recipe FILE|PRESET] [--set key=value ...] | --fields\n"
    "\n"
    "Prints the recipe with every default filled in (after validation), or with --fields every field\n"
    "with its help text.\n";

}  // namespace

int cmdRecipe(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"recipe", "set"}, {"fields", "help"});
    if (a.has("help")) {
        std::cout << kRecipeHelp;
        return kExitOk;
    }
    if (a.has("fields")) {
        for (const auto& f : recipeFields()) {
            std::cout << f.path << " (" << f.kind << ")";
            if (!f.choices.empty()) {
                std::cout << " one of:";
                for (const auto& c : f.choices) std::cout << " " << c;
            }
            std::cout << "\n    " << f.help << "\n";
        }
        return kExitOk;
    }
    std::string file = resolveRecipe(a.get("recipe", "mae"));
    bool ok = false;
    Recipe r = loadRecipeOrExit(file, a.options["set"], ok);
    if (!ok) return kExitUsage;
    std::cout << r.toJson().dump(2) << "\n";
    return kExitOk;
}

int cmdBench(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"recipe", "steps", "warmup", "threads", "json", "set", "profile"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kBenchHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    setupLogging(a.has("verbose"));
    std::string file = resolveRecipe(a.get("recipe", "bench_mae_tiny"));
    bool ok = false;
    Recipe r = loadRecipeOrExit(file, a.options["set"], ok);
    if (!ok) return kExitUsage;
    logBlasAtStartup();
    BenchOptions o;
    o.steps = int(parseInt("steps", a.get("steps", "20")));
    o.warmup = int(parseInt("warmup", a.get("warmup", "3")));
    o.threads = parseThreads(a.get("threads", "0"));
    o.profilePath = a.get("profile");
    if (a.has("profile")) {  // checked before the benchmark runs: LibTorch would only fail after it, with a stack trace
        if (o.profilePath.empty()) throw UsageError("--profile needs a FILE");
        std::ofstream probe(o.profilePath, std::ios::app);
        if (!probe) throw FileError(o.profilePath, std::string("cannot be written (") + std::strerror(errno) + ")");
    }
    if (o.steps < 1 || o.warmup < 0 || o.threads < 0) throw UsageError("--steps must be >= 1, --warmup and --threads >= 0");
    BenchResult res = runBench(r, o, r.name);
    std::printf("bench %s (%s) on %s (%s), %d threads, batch %d, %d steps after %d warm-up, %s allocator\n", res.recipe.c_str(),
                res.method.c_str(), res.device.c_str(), res.precision.c_str(), res.threads, res.batch, res.steps, o.warmup,
                res.allocatorTuned ? "tuned" : "default");
    if (!res.cpuBf16.empty()) std::printf("  cpu bf16 products   %s\n", res.cpuBf16.c_str());
    std::printf("  linear layers       %s\n", res.gemm.c_str());
    std::printf("  attention           %s\n", res.attention.c_str());
    std::printf("  optimizer           %s\n", res.optimizer.c_str());
    std::printf("  timed with          %s\n", res.timing.c_str());
    std::printf("  images/s            %10.1f\n", res.imagesPerSecond);
    std::printf("  step (median)       %10.1f ms\n", res.stepMs);
    std::printf("  per step (mean)     forward %.1f ms · backward %.1f ms · optimizer %.1f ms · momentum update %.1f ms\n",
                1000 * res.forwardSeconds / res.steps, 1000 * res.backwardSeconds / res.steps, 1000 * res.optimizerSeconds / res.steps,
                1000 * res.afterStepSeconds / res.steps);
    std::printf("  model GFLOP/image   %10.4f  (forward + backward, analytic)\n", res.gflopPerImage);
    std::printf("  achieved GFLOP/s    %10.2f\n", res.achievedGflops);
    if (res.rooflineBf16 > 0) {
        std::string rates;
        for (auto [name, v] : {std::pair{"bf16", res.rooflineBf16}, {"tf32", res.rooflineTf32}, {"fp32", res.rooflineFp32}})
            if (v > 0) rates += (rates.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(int64_t(v));
        std::printf("  roofline GFLOP/s    %10.1f  (%s, measured now; %s)\n", res.sgemmGflops, res.roofline.c_str(), rates.c_str());
    }
    else if (res.sgemmGflopsGemm > 0)
        std::printf("  sgemm GFLOP/s       %10.2f  (measured now, n = %d: oneDNN %.1f, torch::mm %.1f; the faster one)\n",
                    res.sgemmGflops, o.sgemmSize, res.sgemmGflopsGemm, res.sgemmGflopsTorch);
    else
        std::printf("  sgemm GFLOP/s       %10.2f  (measured now, n = %d)\n", res.sgemmGflops, o.sgemmSize);
    std::printf("  model FLOP util.    %10.1f %%\n", 100.0 * res.mfu);
    std::printf("  peak RSS            %10.0f MB\n", res.peakRssMb);
    std::printf("  page faults / step  %10.0f\n", res.minorFaultsPerStep);
    if (res.probeShare >= 0) std::printf("  probe share         %10.1f %%\n", 100.0 * res.probeShare);
    std::printf("  loss                %10.4f -> %.4f\n", res.firstLoss, res.lastLoss);
    if (a.has("json")) {
        writeFileAtomically(a.get("json"), res.toJson().dump(2) + "\n");
        spdlog::info("wrote {}", a.get("json"));
    }
    return kExitOk;
}

}  // namespace graftlab::cli
