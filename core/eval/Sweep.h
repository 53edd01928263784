#pragma once
// A sweep: one recipe trained for every combination of grid values (`--set` keys, e.g. optim.base_lr or
// conmim.mask_ratio), each as its own run directory, each evaluated; one table (CSV and markdown) and one figure
// (SVG: a line per protocol over one key, a heat map over two). DIR/sweep.json lists the runs, so the GUI can add
// them all to Evaluate & compare.
#include "eval/Table.h"

#include <string>
#include <utility>
#include <vector>

namespace graftlab {

struct SweepAxis {
    std::string key;                  // the axis' name in the table and the run directories' names
    std::vector<std::string> fields;  // recipe fields as --set spells them, all set to the axis' value
    std::vector<std::string> values;  // as --set spells them
};
// "key=v1,v2,..." (a value may not contain a comma). Several fields move together with '+', under a name given
// before ':' — e.g. Layer Grafted Pretraining's lower-block lr multiplier:
// "lower:stages.1.lr_mult.embed+stages.1.lr_mult.blocks.0+stages.1.lr_mult.blocks.1=0,0.01,0.1,1".
// std::invalid_argument naming the problem.
SweepAxis parseSweepAxis(const std::string& arg);

struct SweepRequest {
    std::string outDir;
    Recipe base;                       // the recipe with the user's --set
    std::string recipeFile;            // to re-apply grid values on top of the file and --set
    std::vector<std::string> sets;
    std::vector<SweepAxis> axes;       // one or two
    TableBudget budget;
    std::vector<std::string> protocols = {"linear", "knn"};
    std::string command;
    // --seeds N: every grid point trained and evaluated with the recipe's seed, seed + 1, ..., seed + N - 1 (seed s
    // sets both the pretraining's and the evaluation's randomness, so points are compared seed by seed).
    int seeds = 1;
    // Train-only share (`sweep --jobs N`, as TableRequest's): when trainShards > 0 only the grid points k (in
    // the sweep's order) with k % trainShards == trainShard are trained; nothing is evaluated or written.
    int trainShard = 0, trainShards = 0;
};

struct SweepPoint {
    std::vector<std::string> values;   // one per axis
    std::vector<std::string> runDirs;  // one per seed
    std::vector<EvalReport> reports;   // one per seed
    std::vector<int64_t> seeds;        // the recipe seed of each
    int64_t steps = 0;
    std::vector<double> trainSeconds;  // training wall time of each seed's run (from its metrics rows)
    double trainFlops = 0;             // analytic training FLOPs of one run
    std::vector<double> top1s(const std::string& protocol) const;  // one per seed, NaN where the protocol is absent
    double mean(const std::string& protocol) const;                // NaN when absent
};

// One test of a sweep: on `protocol`, the point with the highest mean top-1 (`best`) against another point, paired
// over their seeds; `holm` when it also survives Holm's correction over all the sweep's tests.
struct SweepComparison {
    std::string protocol;
    size_t best = 0, other = 0;        // indices into the points
    TTest test;                        // best - other, in top-1 fractions
    bool holm = false;
    bool significant() const { return test.significant(); }
};
// For every protocol, the best point against each other point (paired t-test on the per-seed differences, n - 1
// degrees of freedom), Holm's correction over all of them. Empty below two seeds.
std::vector<SweepComparison> sweepComparisons(const SweepRequest& request, const std::vector<SweepPoint>& points);

struct SweepResult {
    bool complete = false;
    std::vector<SweepPoint> points;
    std::string csv, markdown, svg;
};

// Throws RecipeError (a grid value that does not parse or validate, with the field), FileError.
SweepResult runSweep(const SweepRequest& request, const TableTrainFn& train, const std::function<void(const std::string&)>& log);

// sweep.csv: a line per point, the grid values then each protocol's mean top-1 (and its sd with --seeds > 1).
std::string sweepCsv(const SweepRequest& request, const std::vector<SweepPoint>& points);
// sweep.md: the table (mean ± sd with seeds), compute, what was measured, the tests' verdicts and the command.
std::string sweepMarkdown(const SweepRequest& request, const std::vector<SweepPoint>& points);
// The figure: one key -> top-1 per protocol over its values; two keys -> a heat map of the first protocol.
std::string sweepSvg(const SweepRequest& request, const std::vector<SweepPoint>& points);
// One line per point x seed x protocol (DIR/sweep-seeds.csv): the grid values, seed, top-1, steps and compute.
std::string sweepSeedsCsv(const SweepRequest& request, const std::vector<SweepPoint>& points);

}  // namespace graftlab
