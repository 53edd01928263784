// graftlab-cli table: the papers' Table 1 for a set of recipes, with baselines and seeds (core/eval/Table).
#include "CliCommon.h"
#include "eval/Table.h"
#include "base/recipe/Recipe.h"
#include "base/run/RunLock.h"
#include "train/RunSession.h"
#include "base/util/Errors.h"
#include "util/Log.h"

#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kTableHelp =
    "Usage: graftlab-cli table --out DIR [--recipes mae,mocov3,mtl,cl_to_mim,mim_to_cl,layer_grafted]\n"
    "                          [--budget tiny|small|medium|large|xlarge] [--seeds N] [--no-baselines] [--set key=value ...]\n"
    "                          [--seed S] [--jobs N] [--protocol linear,fewshot,knn,finetune] [--graft-steps N]\n"
    "                          [--pool cls|mean] [--only-seed S]\n"
    "\n"
    "Trains each recipe into DIR/<recipe> (DIR/<recipe>-seed<S> with --seeds) with the same number of optimizer\n"
    "steps (the budget; grafted recipes split them over their stages in the recipe's proportions; equal optimizer\n"
    "steps, not equal compute: each row states its training time and analytic FLOPs), evaluates every protocol,\n"
    "and writes DIR/table.md and DIR/table.csv in the layout of the papers' Table 1 (Linear, 1%, k-NN,\n"
    "Fine-tuning), DIR/table-seeds.csv (every seed's result), and the MTL run's per-block mean gradient cosine.\n"
    "  --seeds N       train and evaluate every recipe N times (seeds S, S+1, ...); cells are mean ± sd, and the\n"
    "                  table tests which rows are above the baselines and which methods differ: a paired t-test\n"
    "                  on the per-seed differences (seed s sets both rows' randomness), two-sided at 5 %, with\n"
    "                  the number of comparisons and Holm's correction stated (N >= 3 recommended)\n"
    "  baselines       rows with the same protocols: the first recipe's encoder at random initialisation\n"
    "                  (DIR/random_init; fine-tuned from scratch without layer-wise lr decay), the same fine-tuned\n"
    "                  for the pretraining's steps too (equal total steps), and the normalised raw pixels as\n"
    "                  features; --no-baselines leaves them out\n"
    "  --protocol L    evaluate only these protocols (default all four); e.g. linear,fewshot,knn leaves out\n"
    "                  fine-tuning, the longest evaluation at the larger budgets (its column stays empty)\n"
    "  --jobs N        train the runs in N processes side by side, each with 1/N of the cores (threads), then\n"
    "                  evaluate them all here; small models train faster so (a width-96 ViT on 2 cores: 1.14x\n"
    "                  in bench, benchmarks/jobs_throughput.sh). Ctrl-C stops every job with a checkpoint.\n"
    "  --graft-steps N graft instead of splitting: mim_to_cl and layer_grafted take their MAE stage from the\n"
    "                  table's mae run of the same seed (trained to the budget, or reused) and train only their\n"
    "                  MoCo v3 stage, N steps, from its final checkpoint; cl_to_mim likewise from mocov3. The\n"
    "                  papers' protocol (MoCo v3 grafted onto a finished MAE). Needs the source among --recipes,\n"
    "                  e.g. --recipes mae,mim_to_cl,layer_grafted; with --jobs a job trains whole seeds.\n"
    "  --pool mean     features from the mean of the patch tokens instead of the class token, for every protocol\n"
    "                  and every encoder row (random init included); writes DIR/table-meanpool.md, .csv and\n"
    "                  -seeds.csv, so the same command with --pool mean after a cls table reuses its runs and keeps it\n"
    "  --only-seed S   make one seed of the table (S, one of its seeds): train and evaluate only that seed's runs\n"
    "                  and write DIR/table-part-seedS.json instead of the table. Seeds of a long table can so be\n"
    "                  made on several machines, or on several days: gather the parts in one DIR and run the same\n"
    "                  command without --only-seed; it takes each seed with a part from it (nothing is trained\n"
    "                  again) and makes the rest. A part made by another table (budget, recipes, --set, protocols)\n"
    "                  is refused, naming the field that differs.\n"
    "Budgets: tiny (synthetic-sized smoke run: 20 steps), small (600 steps, 10,000 images for the frozen\n"
    "protocols), medium (3,000 steps, all images), large (12,000 steps, all images, fine-tuning 2,000 steps),\n"
    "xlarge (48,000 steps, about 51 epochs at batch 64, fine-tuning 4,000 steps: hours a run on a CPU).\n"
    "An interrupted table continues where it stopped; a finished\n"
    "run is reused only when its recipe.json equals the one asked for (same budget, seed and --set; `threads`\n"
    "aside, so seeds trained side by side with --set threads=1 count; a graft's source checkpoint counts as\n"
    "the same file when the table is run from another directory). A run of another recipe is never\n"
    "overwritten: it is moved to DIR/NAME.replaced-1 (-2, ...) and the log names the field that differs.\n"
    "Each evaluation is stored in\n"
    "DIR/evaluations.json as soon as it is made, so a table stopped during its evaluations (4,000 fine-tuning\n"
    "steps a run at xlarge) redoes only the missing ones; the log counts the evaluations as they start\n"
    "(\"mae: evaluation 5 of 18 (seed 1)\").\n";

}  // namespace

int cmdTable(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"out", "recipes", "budget", "protocol", "set", "seed", "seeds", "jobs", "train-shard", "graft-steps", "pool", "only-seed"}, {"no-baselines", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kTableHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    if (!a.has("out")) throw UsageError("table needs --out DIR");
    setupLogging(a.has("verbose"));
    TableRequest req;
    req.outDir = a.get("out");
    try {
        req.budget = tableBudget(a.get("budget", "small"));
    } catch (const std::invalid_argument&) {
        throw UsageError("--budget must be tiny, small, medium, large or xlarge");
    }
    req.seeds = int(parseInt("seeds", a.get("seeds", "1")));
    if (req.seeds < 1 || req.seeds > 100) throw UsageError("--seeds must be in 1..100");
    req.baselines = !a.has("no-baselines");
    req.pooling = a.get("pool", "cls");
    if (req.pooling != "cls" && req.pooling != "mean") throw UsageError("--pool must be cls or mean, got \"" + req.pooling + "\"");
    if (a.has("protocol")) req.protocols = parseProtocols(a.get("protocol"));
    req.graftSteps = a.has("graft-steps") ? parseInt("graft-steps", a.get("graft-steps")) : 0;
    if (a.has("graft-steps") && req.graftSteps < 1) throw UsageError("--graft-steps must be a positive number of steps");
    std::vector<std::string> sets = a.options["set"];
    if (a.has("seed")) sets.push_back("seed=" + std::to_string(parseInt("seed", a.get("seed"))));
    std::stringstream names(a.get("recipes", "mae,mocov3,mtl,cl_to_mim,mim_to_cl,layer_grafted"));
    for (std::string n; std::getline(names, n, ',');) {
        if (n.empty()) continue;
        std::string file = resolveRecipe(n);
        bool ok = false;
        Recipe recipe = loadRecipeOrExit(file, sets, ok);
        if (!ok) return kExitUsage;
        req.recipes.push_back({fs::path(file).stem().string(), recipe});
    }
    if (req.recipes.empty()) throw UsageError("--recipes lists no recipe");
    try {
        for (const auto& e : req.recipes) graftSource(req, e);
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--graft-steps: ") + e.what());
    }
    if (a.has("only-seed")) {
        const int64_t only = parseInt("only-seed", a.get("only-seed"));
        const int64_t first = req.recipes.front().recipe.seed;
        if (only < first || only >= first + req.seeds)
            throw UsageError("--only-seed " + std::to_string(only) + " is not one of the table's seeds (" + std::to_string(first) +
                             (req.seeds > 1 ? " to " + std::to_string(first + req.seeds - 1) : std::string()) + ")");
        req.onlySeed = only;
    }
    for (int i = 0; i < argc; ++i) req.command += std::string(i ? " " : "") + argv[i];
    const TrainJobs jobs = trainJobsOf(a);
    const bool tty = isatty(STDERR_FILENO) && !jobs.isJob();
    req.trainShard = jobs.shard;
    req.trainShards = jobs.shards;
    logBlasAtStartup();

    // One table job writes --out at a time (its jobs of --jobs are its own children; every run in it has its own lock).
    std::optional<RunLock> jobLock;
    if (!jobs.isJob()) jobLock.emplace(req.outDir);
    const std::vector<int64_t> toMake = tableSeedsToMake(req);  // less the seeds taken from parts (--only-seed)
    if (int status = trainInJobs(argc, argv, jobs, (req.graftSteps > 0 ? 1 : int(req.recipes.size())) * int(toMake.size()), "table"); status != kExitOk) return status;
    TableResult res = runTable(
        req, [&](RunSession& session) { return runTraining(session, tty) == kExitOk && session.complete(); },
        [](const std::string& m) { spdlog::info("{}", m); });
    if (!res.complete) {
        if (req.trainShards == 0) spdlog::info("stopped; run the same command again to continue the table");
        return kExitFailure;
    }
    if (req.trainShards > 0) return kExitOk;  // a job of --jobs: its runs are trained, the table is the parent's
    if (req.onlySeed) {
        spdlog::info("seed {} of the table made: wrote {}. With every seed's part in one directory, the same command without "
                     "--only-seed makes the table from them (nothing is trained again).",
                     *req.onlySeed, res.partFile);
        return kExitOk;
    }
    std::cout << res.markdown;
    const std::string stem = tableFileStem(req);
    spdlog::info("wrote {}/{}.md, {}.csv and {}-seeds.csv", req.outDir, stem, stem, stem);
    return kExitOk;
}

}  // namespace graftlab::cli
