#pragma once
// The papers' Table 1 for a set of recipes: each trained with the same number of optimizer steps (the budget;
// grafted recipes split them over their stages), for N seeds, then evaluated with every protocol; beside them
// baselines of the same protocols, so that a reader sees whether pretraining helped at all: the same encoder at
// random initialisation (its fine-tuning column is training from scratch, without the pretrained encoders' layer-wise
// lr decay), the same from scratch for the pretraining's steps too (equal total steps), and the raw pixels. Cells
// are mean ± sample standard deviation over seeds; every difference named is tested (base/util/Stats.h: paired
// over seeds where the rows share them), and each row states its training time and FLOPs beside its steps.
// Used by `graftlab-cli table`; torch-side (it trains).
#include "eval/EvaluateCheckpoint.h"
#include "base/recipe/Recipe.h"
#include "base/util/Stats.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

class RunSession;

struct TableBudget {
    std::string name;
    int64_t steps = 0;          // optimizer steps per recipe
    int64_t maxTrain = 0;       // training images for linear / 1% / k-NN (0 = all)
    int finetuneSteps = 0;
};
// "tiny" (a smoke run), "small", "medium", "large", "xlarge"; std::invalid_argument (naming the choices) otherwise.
TableBudget tableBudget(const std::string& name);

// Scales a recipe to `steps` optimizer steps in all, keeping its stages' proportions and warm-ups sensible.
void scaleToBudget(Recipe& r, int64_t steps);

// A table's or sweep's run checked before the first run of the job trains: its recipe as it will train (scaled,
// seeded, grafted) validates, and its batch fits its training set (what the run would say at its start, hours
// later). RecipeError naming the field and `run`. `sizes` caches training-set sizes by data settings.
void checkPlannedRun(const Recipe& r, const std::string& run, std::map<std::string, int64_t>& sizes);
// The analytic training FLOPs of a recipe as it trains (its stages' steps x batch x Objective::countFlops of a
// training image of each stage's method).
double recipeTrainFlops(const Recipe& r, int channels);
// "mae" -> "MAE", "mim_to_cl" -> "MIM → CL", ...; unknown keys unchanged.
std::string methodDisplayName(const std::string& recipeKey);

struct TableEntry {
    std::string key;   // the recipe file's stem: the run directory's name and the CSV's recipe column
    Recipe recipe;     // with the user's overrides, before scaling
};

struct TableRequest {
    std::string outDir;
    std::vector<TableEntry> recipes;
    TableBudget budget;
    int seeds = 1;              // seeds recipe.seed, recipe.seed + 1, ...
    bool baselines = true;      // the random-init and raw-pixel rows
    std::vector<std::string> protocols = kProtocols;  // the columns evaluated (the others stay empty)
    std::string command;        // the command line, for the footnote
    // Train-only share of a table trained by several processes (`table --jobs N`): when trainShards > 0 only
    // the recipe runs numbered k (k = p x recipes + recipe index, p counting the seeds made here: tableSeedsToMake;
    // with graftSteps k = p: a job trains whole seeds) with k % trainShards == trainShard
    // are trained, nothing is evaluated or written beside them; the full table then reuses them.
    int trainShard = 0, trainShards = 0;
    // Grafting onto a finished run, the papers' protocol (Layer Grafted Pretraining grafts MoCo v3 onto a
    // pretrained MAE): with graftSteps > 0, a staged recipe whose first stage's method is the method of a
    // single-stage recipe of this table (mim_to_cl and layer_grafted: mae; cl_to_mim: mocov3) does not train that
    // stage: its next stage starts from that recipe's final checkpoint of the same seed (init = checkpoint) and
    // trains graftSteps steps. Its Steps column counts both. With train shards a job trains whole seeds (the
    // source before its grafts).
    int64_t graftSteps = 0;
    // How the encoder rows' features are pooled for every protocol, the random-init row's included: "cls" (the class
    // token, the papers' default) or "mean" (the mean of the patch tokens; MAE's features are often probed so). The
    // pixels are not pooled. A "mean" table writes table-meanpool.md / .csv / -seeds.csv (tableFileStem), so that it
    // can be made in the directory of the cls table, reusing its runs and its pixel evaluations, and keep that table.
    std::string pooling = "cls";
    // One seed of the table (`table --only-seed S`, S one of the table's seeds): only its runs are trained and
    // evaluated, and instead of the table its rows are written to DIR/<stem>-part-seed<S>.json (tablePartFile), so
    // that the seeds of a long table can be made on several machines (or days). The same command without it, in a
    // directory holding the parts, takes each seed that has a part from it instead of training it.
    std::optional<int64_t> onlySeed;
};

// "table" for a cls table, "table-meanpool" for a mean-pooled one: the stem of its .md, .csv and -seeds.csv files.
std::string tableFileStem(const TableRequest& request);
// DIR/<stem>-part-seed<S>.json: the rows of seed S made by `table --only-seed S`.
std::string tablePartFile(const TableRequest& request, int64_t seed);

struct TableRow {
    std::string key, name;
    bool baseline = false;
    int64_t steps = 0;
    int batch = 0;
    std::string graftedOnto;            // the source row's key for a grafted row (TableRequest::graftSteps), else ""
    int64_t sourceSteps = 0;            // that source's steps (included in `steps`)
    std::vector<std::string> runDirs;   // one per seed
    std::vector<EvalReport> reports;    // one per seed
    std::vector<int64_t> seeds;         // the recipe seed of each report: rows with the same seeds are paired
    std::vector<double> trainSeconds;   // training wall time per seed (a grafted row's source included)
    double trainFlops = 0;              // analytic training FLOPs of one seed (Objective::countFlops x steps x batch)
    std::vector<bool> fromPart;         // per seed: taken from a part file (TableRequest::onlySeed) rather than made here
    // Per seed: the MTL run's gradient-cosine section of the table (markdown, its last probe), "" for other rows.
    std::vector<std::string> gradientCosines;
    // Mean and sample standard deviation (0 with one seed) of the top-1 accuracy (a fraction) over seeds;
    // NaN when the protocol does not apply (fine-tuning raw pixels).
    std::pair<double, double> stat(const std::string& protocol) const;
    // The top-1 accuracy of each seed (NaN where a seed has no result for the protocol).
    std::vector<double> values(const std::string& protocol) const;
};

// One test of a table: row a against row b on one protocol (paired over seeds when both rows have the same seeds,
// else Welch's), and whether it survives Holm's correction over all the table's tests.
struct TableComparison {
    std::string protocol;
    const TableRow* a = nullptr;
    const TableRow* b = nullptr;
    TTest test;
    bool holm = false;
    bool significant() const { return test.significant(); }
};
// Every comparison the table's text makes — each method against each baseline, and each pair of methods — on the
// protocols asked for, with Holm's correction applied over all of them. Needs two or more seeds.
std::vector<TableComparison> tableComparisons(const TableRequest& request, const std::vector<TableRow>& rows);

struct TableResult {
    bool complete = false;      // false: a run was stopped (Ctrl-C); the same command continues
    std::string partFile;       // with TableRequest::onlySeed: the part written (no table then)
    std::vector<TableRow> rows; // baselines first
    std::string markdown, csv;
};

// With request.graftSteps > 0: the single-stage recipe of the request that `entry` grafts onto (nullptr for a
// recipe trained as it is); std::invalid_argument, naming the recipe and the missing method, when a staged recipe
// has no source among the recipes or no recipe is staged at all.
const TableEntry* graftSource(const TableRequest& request, const TableEntry& entry);

// The seeds (recipe seeds) this request makes itself: all the table's, or --only-seed's, less those taken from a part
// file in DIR; the jobs of --jobs train these (TableRequest::trainShards counts their runs). FileError naming a part
// that is damaged or another table's; std::invalid_argument for an --only-seed that is not one of the table's seeds.
std::vector<int64_t> tableSeedsToMake(const TableRequest& request);

// Trains a run of the table with the caller's progress and signal handling; returns false when stopped early.
using TableTrainFn = std::function<bool(RunSession&)>;

// Trains `recipe` into `dir` unless a finished run of the same recipe is there (then reused) or an unfinished one
// (then resumed); returns the final checkpoint, or "" when the training was stopped.
std::string trainOrReuse(const Recipe& recipe, const std::string& dir, const TableTrainFn& train,
                         const std::function<void(const std::string&)>& log);

// Trains what is missing, evaluates, writes DIR/table.md and DIR/table.csv. A finished run is reused only when its
// stored recipe equals the one this table asks for (`threads` aside: it says how a run ran, not what it trained);
// an unfinished one with the same recipe is resumed; any other
// is trained again. Throws FileError / RecipeError naming the file or field.
TableResult runTable(const TableRequest& request, const TableTrainFn& train, const std::function<void(const std::string&)>& log);

// The table's text from finished rows (exposed for tests).
std::string tableMarkdown(const TableRequest& request, const std::vector<TableRow>& rows);
std::string tableCsv(const std::vector<TableRow>& rows);
// One line per row x seed x protocol: what a reader needs to redo the table's tests (DIR/table-seeds.csv).
std::string tableSeedsCsv(const std::vector<TableRow>& rows);

}  // namespace graftlab
