// graftlab-cli sweep: one recipe over a grid of field values (core/eval/Sweep).
#include "CliCommon.h"
#include "eval/Sweep.h"
#include "base/run/RunLock.h"
#include "train/RunSession.h"
#include "base/util/Errors.h"
#include "util/Log.h"

#include <algorithm>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace graftlab::cli {

namespace {

const char* kSweepHelp =
    "Usage: graftlab-cli sweep --recipe FILE|PRESET --out DIR --grid key=v1,v2,... [--grid key=...]\n"
    "                          [--budget tiny|small|medium|large|xlarge] [--protocol linear,fewshot,knn,finetune] [--set key=value ...]\n"
    "                          [--seeds N] [--jobs N]\n"
    "\n"
    "Trains the recipe for every combination of the grid values (one or two keys, each a recipe field as --set\n"
    "spells it, e.g. --grid optim.base_lr=1e-3,3e-3 --grid conmim.mask_ratio=0.3,0.5), each into its own run\n"
    "directory DIR/<key=value,...> with the budget's optimizer steps, evaluates each (default linear and k-NN), and\n"
    "writes DIR/sweep.csv, DIR/sweep.md (with each point's training time and FLOPs), DIR/sweep-seeds.csv (one line a\n"
    "point and protocol, with its seed) and DIR/sweep.svg: top-1 per protocol over one key, or a heat map of the\n"
    "first protocol over two. DIR/sweep.json lists the runs: the GUI's Evaluate & compare adds them all with\n"
    "Add run… on DIR. An interrupted sweep continues where it stopped; a finished run is reused when its recipe is\n"
    "the same, and its evaluation when DIR/evaluations.json holds it (the same checkpoint and protocols). Several fields can move together under one name: --grid 'lower:stages.1.lr_mult.embed+\n"
    "stages.1.lr_mult.blocks.0+stages.1.lr_mult.blocks.1=0,0.01,0.1,1' (Layer Grafted Pretraining's lr search).\n"
    "  --seeds N  train and evaluate every grid point with N seeds (the recipe's seed, seed + 1, ...; runs in\n"
    "             DIR/<key=value,...>-seedS): cells are mean ± sd, every seed's result is in sweep-seeds.csv, and\n"
    "             sweep.md says, per protocol, which points are significantly below the best one (paired t-test\n"
    "             over seeds at 5 %, Holm's correction stated). Default 1 (no test).\n"
    "  --jobs N   train the runs in N processes side by side (a process a run, each with 1/N of the cores),\n"
    "             then evaluate them all here; as table --jobs.\n";

}  // namespace

int cmdSweep(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"recipe", "out", "grid", "budget", "protocol", "set", "seeds", "jobs", "train-shard"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kSweepHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    if (!a.has("out")) throw UsageError("sweep needs --out DIR");
    if (!a.has("grid")) throw UsageError("sweep needs at least one --grid key=v1,v2,...");
    setupLogging(a.has("verbose"));
    SweepRequest req;
    req.outDir = a.get("out");
    req.recipeFile = resolveRecipe(a.get("recipe", "mae"));
    req.sets = a.options["set"];
    try {
        for (const auto& g : a.options["grid"]) req.axes.push_back(parseSweepAxis(g));
        req.budget = tableBudget(a.get("budget", "tiny"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    if (req.axes.size() > 2) throw UsageError("a sweep takes one or two --grid keys");
    for (size_t i = 0; i < req.axes.size(); ++i)
        for (size_t j = 0; j < i; ++j) {
            if (req.axes[i].key == req.axes[j].key) throw UsageError("--grid " + req.axes[i].key + " is given twice: list its values once (key=v1,v2)");
            for (const auto& f : req.axes[i].fields)
                if (std::find(req.axes[j].fields.begin(), req.axes[j].fields.end(), f) != req.axes[j].fields.end())
                    throw UsageError("--grid: field " + f + " is moved by two grid keys (" + req.axes[j].key + ", " + req.axes[i].key +
                                     "): a run could not hold both values");
        }
    if (a.has("protocol")) req.protocols = parseProtocols(a.get("protocol"));
    req.seeds = int(parseInt("seeds", a.get("seeds", "1")));
    if (req.seeds < 1 || req.seeds > 100) throw UsageError("--seeds must be in 1..100");
    bool ok = false;
    req.base = loadRecipeOrExit(req.recipeFile, req.sets, ok);
    if (!ok) return kExitUsage;
    for (int i = 0; i < argc; ++i) req.command += std::string(i ? " " : "") + argv[i];
    const TrainJobs jobs = trainJobsOf(a);
    req.trainShard = jobs.shard;
    req.trainShards = jobs.shards;
    logBlasAtStartup();
    const bool tty = isatty(STDERR_FILENO) && !jobs.isJob();
    int runs = req.seeds;
    for (const auto& axis : req.axes) runs *= int(axis.values.size());
    // One sweep job writes --out at a time (its jobs of --jobs are its own children; every run in it has its own lock).
    std::optional<RunLock> jobLock;
    if (!jobs.isJob()) jobLock.emplace(req.outDir);
    if (int status = trainInJobs(argc, argv, jobs, runs, "sweep"); status != kExitOk) return status;
    SweepResult res = runSweep(
        req, [&](RunSession& s) { return runTraining(s, tty) == kExitOk && s.complete(); }, [](const std::string& m) { spdlog::info("{}", m); });
    if (!res.complete) {
        if (!jobs.isJob()) spdlog::info("stopped; run the same command again to continue the sweep");
        return kExitFailure;
    }
    if (jobs.isJob()) return kExitOk;  // a job of --jobs: its run is trained, the sweep is the parent's
    std::cout << res.markdown;
    spdlog::info("wrote {}/sweep.md, sweep.csv, sweep-seeds.csv and sweep.svg ({} runs)", req.outDir, res.points.size() * size_t(req.seeds));
    return kExitOk;
}

}  // namespace graftlab::cli
