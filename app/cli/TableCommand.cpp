// graftlab-cli table: the papers' Table 1 for a set of recipes.
#include "CliCommon.h"
#include "recipe/Recipe.h"
#include "util/Errors.h"
#include "util/Log.h"
#include "eval/Evaluate.h"
#include "probes/Snapshot.h"
#include "train/Checkpoint.h"
#include "train/RunDir.h"
#include "train/Trainer.h"
#include "util/AtomicFile.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kTableHelp =
    "Usage: graftlab-cli table --out DIR [--recipes mae,mocov3,mtl,cl_to_mim,mim_to_cl,layer_grafted]\n"
    "                          [--budget tiny|small|medium] [--set key=value ...] [--seed S]\n"
    "\n"
    "Trains each recipe into DIR/<recipe> with the same number of steps (the budget; grafted recipes split\n"
    "them over their stages in the recipe's proportions), evaluates every protocol, and writes DIR/table.md\n"
    "and DIR/table.csv in the layout of the papers' Table 1 (Linear, 1%, k-NN, Fine-tuning), plus the MTL\n"
    "run's per-block mean gradient cosine. Budgets: tiny (synthetic-sized smoke run), small, medium.\n";

std::string displayName(const std::string& recipe) {
    static const std::map<std::string, std::string> names = {
        {"mae", "MAE"}, {"mocov3", "MoCo v3"}, {"mtl", "MTL (MAE + MoCo v3)"}, {"cl_to_mim", "CL → MIM"},
        {"mim_to_cl", "MIM → CL"}, {"layer_grafted", "Layer Grafted"}, {"conmim", "ConMIM"}};
    auto it = names.find(recipe);
    return it == names.end() ? recipe : it->second;
}

// Scales a recipe to `steps` optimizer steps in all, keeping its stages' proportions and warm-ups sensible.
void scaleToBudget(Recipe& r, int64_t steps) {
    r.optim.warmupSteps = std::min<int64_t>(r.optim.warmupSteps, std::max<int64_t>(1, steps / 10));
    if (r.stages.empty()) {
        r.train.steps = steps;
        return;
    }
    int64_t total = r.totalSteps(), used = 0;
    for (size_t i = 0; i < r.stages.size(); ++i) {
        auto& st = r.stages[i];
        int64_t n = i + 1 == r.stages.size() ? steps - used : std::max<int64_t>(1, std::llround(double(st.steps) * steps / double(total)));
        st.steps = std::max<int64_t>(1, n);
        used += st.steps;
        if (st.warmupSteps >= 0) st.warmupSteps = std::min<int64_t>(st.warmupSteps, std::max<int64_t>(1, st.steps / 10));
    }
    r.train.steps = r.totalSteps();
}

}  // namespace

int cmdTable(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"out", "recipes", "budget", "set", "seed"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kTableHelp;
        return kExitOk;
    }
    if (!a.has("out")) throw UsageError("table needs --out DIR");
    setupLogging(a.has("verbose"));
    std::string budget = a.get("budget", "small");
    int64_t steps = 0, maxTrain = 0;
    int ftSteps = 0;
    if (budget == "tiny") steps = 20, maxTrain = 0, ftSteps = 10;
    else if (budget == "small") steps = 600, maxTrain = 10000, ftSteps = 200;
    else if (budget == "medium") steps = 3000, maxTrain = 0, ftSteps = 1000;
    else throw UsageError("--budget must be tiny, small or medium");
    std::vector<std::string> names;
    {
        std::stringstream ss(a.get("recipes", "mae,mocov3,mtl,cl_to_mim,mim_to_cl,layer_grafted"));
        std::string n;
        while (std::getline(ss, n, ',')) if (!n.empty()) names.push_back(n);
    }
    if (names.empty()) throw UsageError("--recipes lists no recipe");
    std::vector<std::string> sets = a.options["set"];
    if (a.has("seed")) sets.push_back("seed=" + std::to_string(parseInt("seed", a.get("seed"))));
    fs::create_directories(a.get("out"));
    logBlasAtStartup();

    struct Row { std::string name; Recipe recipe; EvalReport report; };
    std::vector<Row> rows;
    for (const auto& name : names) {
        std::string file = resolveRecipe(name);
        bool ok = false;
        Recipe recipe = loadRecipeOrExit(file, sets, ok);
        if (!ok) return kExitUsage;
        scaleToBudget(recipe, steps);
        std::string dirPath = (fs::path(a.get("out")) / fs::path(file).stem()).string();
        std::string key = fs::path(file).stem().string();
        // An interrupted table continues: finished runs are reused, unfinished ones resumed.
        std::string ckpt;
        if (RunDir::holdsRun(dirPath)) {
            RunDir dir(dirPath, RunDirMode::Resume);
            std::string last = latestGoodCheckpoint(dir.checkpointDir());
            if (!last.empty() && readCheckpointMeta(last).step >= recipe.totalSteps()) {
                spdlog::info("{}: reusing the finished run in {}", key, dirPath);
                ckpt = last;
            } else if (!last.empty()) {
                TrainerOptions opts;
                opts.checkpointDir = dir.checkpointDir();
                opts.snapshotDir = dir.snapshotDir();
                Recipe stored = loadRecipeOrExit(dir.recipePath(), {}, ok);
                if (!ok) return kExitUsage;
                Trainer trainer(stored, opts);
                trainer.prepare();
                trainer.resumeFrom(last);
                dir.truncateMetricsAfter(trainer.step());
                if (int rc = runTraining(trainer, &dir, dir.path(), isatty(STDERR_FILENO)); rc != kExitOk) return rc;
                ckpt = latestGoodCheckpoint(dir.checkpointDir());
            }
        }
        if (ckpt.empty()) {
            RunDir dir(dirPath, RunDirMode::Force);
            TrainerOptions opts;
            opts.checkpointDir = dir.checkpointDir();
            opts.snapshotDir = dir.snapshotDir();
            Trainer trainer(recipe, opts);
            trainer.prepare();
            dir.writeRecipe(recipe);
            spdlog::info("{}: training {} steps into {}", key, recipe.totalSteps(), dirPath);
            if (int rc = runTraining(trainer, &dir, dir.path(), isatty(STDERR_FILENO)); rc != kExitOk) return rc;
            if (trainer.step() < recipe.totalSteps()) {
                spdlog::info("stopped; run the same command again to continue the table");
                return kExitFailure;
            }
            ckpt = latestGoodCheckpoint(dir.checkpointDir());
        }
        EvalRequest req;
        req.checkpoint = ckpt;
        req.maxTrain = maxTrain;
        req.finetuneSteps = ftSteps;
        req.seed = uint64_t(recipe.seed);
        EvalReport rep = evaluateCheckpoint(req, [&](const std::string& m) { spdlog::info("{}: {}", key, m); });
        writeEvalJson(rep);
        rows.push_back({key, recipe, rep});
    }

    // Table 1's layout: one row per method, Linear / 1% / k-NN / Fine-tuning top-1 on the test split.
    auto cell = [](const EvalReport& r, const char* p) {
        const ProtocolResult* x = r.find(p);
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.1f", x ? 100.0 * x->top1 : NAN);
        return std::string(buf);
    };
    std::ostringstream md, csv;
    const EvalReport& first = rows.front().report;
    md << "| Method | Steps | Linear | 1% | k-NN | Fine-tuning |\n|---|---:|---:|---:|---:|---:|\n";
    csv << "recipe,method,steps,batch,linear,fewshot,knn,finetune\n";
    for (const auto& r : rows) {
        md << "| " << displayName(r.name) << " | " << r.recipe.totalSteps() << " | " << cell(r.report, "linear") << " | "
           << cell(r.report, "fewshot") << " | " << cell(r.report, "knn") << " | " << cell(r.report, "finetune") << " |\n";
        csv << r.name << ',' << r.report.method << ',' << r.recipe.totalSteps() << ',' << r.recipe.optim.batchSize << ','
            << cell(r.report, "linear") << ',' << cell(r.report, "fewshot") << ',' << cell(r.report, "knn") << ','
            << cell(r.report, "finetune") << '\n';
    }
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += std::string(i ? " " : "") + argv[i];
    md << "\nTop-1 accuracy (%) on the " << first.dataset << " test split (" << first.testImages << " images); budget `" << budget
       << "`: " << steps << " optimizer steps per method at batch " << rows.front().recipe.optim.batchSize
       << " (grafted recipes split them over their stages), seed " << rows.front().recipe.seed << ". Linear and 1% use "
       << first.trainImages << " training images; fine-tuning " << ftSteps << " steps. One seed: differences of a point or two are noise.\n\n"
       << "Command: `" << cmd << "`\n";
    // The MTL run's per-block mean gradient cosine (its last probe).
    for (const auto& r : rows) {
        if (r.report.method != "mtl") continue;
        auto snaps = SnapshotStore::load((fs::path(a.get("out")) / r.name / "snapshots").string(), "gradcos");
        const Snapshot* last = nullptr;
        for (const auto& s : snaps)
            if (s.unavailable().empty() && s.find("summary")) last = &s;
        if (!last) continue;
        auto groups = last->meta["groups"].get<std::vector<std::string>>();
        const auto& sum = *last->find("summary");
        md << "\nGradient cosine between the MIM and CL losses in the MTL run (step " << last->step
           << ", mean over the probe images; Layer Grafted Pretraining's C_MIM,CL):\n\n| Group | mean cos | share negative |\n|---|---:|---:|\n";
        for (size_t g = 0; g < groups.size(); ++g) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.3f | %.0f%%", sum.at({int64_t(g), 0}), 100.0 * sum.at({int64_t(g), 6}));
            md << "| " << groups[g] << " | " << buf << " |\n";
        }
    }
    writeFileAtomically((fs::path(a.get("out")) / "table.md").string(), md.str());
    writeFileAtomically((fs::path(a.get("out")) / "table.csv").string(), csv.str());
    std::cout << md.str();
    spdlog::info("wrote {}/table.md and table.csv", a.get("out"));
    return kExitOk;
}

}  // namespace graftlab::cli
