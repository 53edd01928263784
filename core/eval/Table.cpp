#include "eval/Table.h"
#include "data/Dataset.h"
#include "base/probes/Snapshot.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/RunSession.h"
#include "train/Trainer.h"
#include "methods/Flops.h"
#include "methods/Objective.h"
#include "base/run/Observer.h"
#include "base/util/AtomicFile.h"
#include "base/util/Csv.h"
#include "base/util/StopSignals.h"
#include "base/util/Errors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

// What decides whether a stored run is the one asked for: its recipe without `threads`, which says how many cores
// ran it, not what was trained (a run trained with --set threads=1 beside another one is the same experiment).
// What a run trained, not how it ran: every field filled in (a run written before a field existed has its default),
// the thread count and where the views were made left out.
nlohmann::json experimentOf(nlohmann::json recipe) {
    std::vector<RecipeIssue> issues;
    Recipe parsed = Recipe::fromJson(recipe, issues);
    if (issues.empty()) recipe = parsed.toJson();
    if (recipe.is_object()) {
        recipe.erase("threads");
        if (recipe.contains("data") && recipe["data"].is_object()) recipe["data"].erase("augment_on");
    }
    return recipe;
}

// Whether two stage checkpoint paths name the same file: the same string, the same existing file, or a relative path
// written from another working directory (a table run once from the repository root as runs/t/..., once from runs/
// as t/...) that is a trailing part of the other's absolute path.
bool sameCheckpointFile(const std::string& a, const std::string& b) {
    if (a == b) return true;
    if (a.empty() || b.empty()) return false;
    std::error_code ec;
    if (fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec)) return true;
    auto tailOf = [](const std::string& rel, const std::string& other) {
        std::error_code aec;  // a working directory that cannot be read: the other path as given
        const fs::path abs = fs::absolute(other, aec);
        fs::path r = fs::path(rel).lexically_normal(), o = (aec ? fs::path(other) : abs).lexically_normal();
        if (r.is_absolute() || r.empty() || *r.begin() == "..") return false;
        std::vector<fs::path> rp(r.begin(), r.end()), op(o.begin(), o.end());
        return rp.size() <= op.size() && std::equal(rp.rbegin(), rp.rend(), op.rbegin());
    };
    return tailOf(a, b) || tailOf(b, a);
}

// The stored experiment with each stage checkpoint that names the planned one's file written as the planned one's.
nlohmann::json alignCheckpointPaths(nlohmann::json stored, const nlohmann::json& planned) {
    if (!stored.contains("stages") || !planned.contains("stages")) return stored;
    auto& ss = stored["stages"];
    const auto& ps = planned["stages"];
    if (!ss.is_array() || !ps.is_array()) return stored;
    for (size_t i = 0; i < std::min(ss.size(), ps.size()); ++i) {
        if (!ss[i].is_object() || !ps[i].is_object()) continue;
        auto a = ss[i].find("checkpoint");
        auto b = ps[i].find("checkpoint");
        if (a != ss[i].end() && b != ps[i].end() && a->is_string() && b->is_string() &&
            sameCheckpointFile(a->get<std::string>(), b->get<std::string>()))
            *a = *b;
    }
    return stored;
}

// The first field (in document order) where two experiments differ, with both values: "optim.batch_size (64 there,
// 8 now)". Empty when they are the same.
std::string firstDifference(const nlohmann::json& there, const nlohmann::json& now, const std::string& path = "") {
    auto show = [](const nlohmann::json& v) {
        std::string s = v.dump();
        return s.size() > 80 ? s.substr(0, 77) + "..." : s;
    };
    if (there.is_object() && now.is_object()) {
        for (auto it = now.begin(); it != now.end(); ++it) {
            std::string sub = path.empty() ? it.key() : path + "." + it.key();
            auto t = there.find(it.key());
            if (t == there.end()) return sub + " (absent there, " + show(it.value()) + " now)";
            std::string d = firstDifference(*t, it.value(), sub);
            if (!d.empty()) return d;
        }
        for (auto it = there.begin(); it != there.end(); ++it)
            if (!now.contains(it.key())) return (path.empty() ? it.key() : path + "." + it.key()) + " (" + show(it.value()) + " there, absent now)";
        return "";
    }
    if (there.is_array() && now.is_array() && there.size() == now.size()) {
        for (size_t i = 0; i < now.size(); ++i) {
            std::string d = firstDifference(there[i], now[i], path + (path.empty() ? "" : ".") + std::to_string(i));
            if (!d.empty()) return d;
        }
        return "";
    }
    if (there == now) return "";
    return (path.empty() ? std::string("the recipe") : path) + " (" + show(there) + " there, " + show(now) + " now)";
}

// A directory beside `dir` that does not exist yet: DIR.replaced-1, DIR.replaced-2, ...
std::string asideName(const std::string& dir) {
    fs::path d = fs::path(dir).lexically_normal();
    if (d.filename().empty()) d = d.parent_path();
    for (int i = 1;; ++i) {
        fs::path p = d;
        p += ".replaced-" + std::to_string(i);
        if (!fs::exists(p)) return p.string();
    }
}

std::string cell(const TableRow& r, const std::string& protocol, int seeds) {
    auto [mean, sd] = r.stat(protocol);
    if (!std::isfinite(mean)) return "–";
    char buf[48];
    if (seeds > 1) std::snprintf(buf, sizeof buf, "%.1f ± %.1f", 100 * mean, 100 * sd);
    else std::snprintf(buf, sizeof buf, "%.1f", 100 * mean);
    return buf;
}

std::string num(double v) {
    if (!std::isfinite(v)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

std::string protocolLabel(const std::string& protocol) {
    static const std::map<std::string, std::string> label = {{"linear", "Linear"}, {"fewshot", "1%"}, {"knn", "k-NN"}, {"finetune", "Fine-tuning"}};
    return label.at(protocol);
}

// The training wall time of a run from its metrics rows (probes included), at `batch` images a step (one process).
double runTrainSeconds(const std::string& dir, int batch) {
    return trainingSeconds(MetricsRow::readFile(RunLayout(dir).metrics()), double(batch));
}

std::string minutes(double seconds) {
    char buf[32];
    if (seconds < 60) std::snprintf(buf, sizeof buf, "%.0f s", seconds);
    else std::snprintf(buf, sizeof buf, seconds >= 600 ? "%.0f min" : "%.1f min", seconds / 60.0);
    return buf;
}

std::string teraFlops(double flops) {
    char buf[32];
    std::snprintf(buf, sizeof buf, flops >= 1000e12 ? "%.0f" : "%.3g", flops / 1e12);
    return buf;
}


// What a part (`table --only-seed`) must have been made by: this table but for the seed it holds, and but for how its
// runs ran (threads, --jobs, --out): budget, seeds, baselines, protocols, pooling, grafting and every recipe as trained.
nlohmann::json tableIdentity(const TableRequest& req) {
    nlohmann::json budget = nlohmann::json::object();
    budget["name"] = req.budget.name;
    budget["steps"] = req.budget.steps;
    budget["max_train"] = req.budget.maxTrain;
    budget["finetune_steps"] = req.budget.finetuneSteps;
    nlohmann::json recipes = nlohmann::json::array();
    for (const auto& e : req.recipes) {
        nlohmann::json r = nlohmann::json::object();
        r["key"] = e.key;
        r["recipe"] = experimentOf(e.recipe.toJson());
        recipes.push_back(r);
    }
    nlohmann::json id = nlohmann::json::object();
    id["budget"] = budget;
    id["seeds"] = req.seeds;
    id["baselines"] = req.baselines;
    id["protocols"] = req.protocols;
    id["pooling"] = req.pooling;
    id["graft_steps"] = req.graftSteps;
    id["recipes"] = recipes;
    return id;
}

// The MTL run's per-block mean gradient cosine (its last probe) as the table prints it; "" when the run has none.
std::string gradientCosineSection(const std::string& runDir) {
    auto snaps = SnapshotStore::load(RunLayout(runDir).snapshots(), "gradcos");
    const Snapshot* last = nullptr;
    for (const auto& s : snaps)
        if (s.unavailable().empty() && s.find("summary")) last = &s;
    if (!last) return "";
    auto groups = last->meta["groups"].get<std::vector<std::string>>();
    const auto& sum = *last->find("summary");
    std::ostringstream md;
    md << "\nGradient cosine between the MIM and CL losses in the MTL run (step " << last->step
       << ", mean over the probe images; Layer Grafted Pretraining's C_MIM,CL):\n\n| Group | mean cos | share negative |\n|---|---:|---:|\n";
    for (size_t g = 0; g < groups.size(); ++g) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f | %.0f%%", sum.at({int64_t(g), kCosMean}), 100.0 * sum.at({int64_t(g), kCosFracNegative}));
        md << "| " << groups[g] << " | " << buf << " |\n";
    }
    return md.str();
}

// Seed index s's entries of a row as a part file holds them (run directories by name: the part may come from another --out).
nlohmann::json partRowJson(const TableRow& r, size_t s) {
    nlohmann::json j = nlohmann::json::object();
    j["key"] = r.key;
    j["baseline"] = r.baseline;
    j["steps"] = r.steps;
    j["batch"] = r.batch;
    j["grafted_onto"] = r.graftedOnto;
    j["source_steps"] = r.sourceSteps;
    j["run_dir"] = fs::path(r.runDirs.at(s)).filename().string();
    j["seed"] = r.seeds.at(s);
    j["train_seconds"] = r.trainSeconds.at(s);
    j["train_flops"] = r.trainFlops;
    j["gradient_cosines"] = s < r.gradientCosines.size() ? r.gradientCosines[s] : std::string();
    j["report"] = r.reports.at(s).toJson();
    return j;
}

// The part of seed `seed` in the table's directory, checked: nullopt when there is none; FileError naming the file
// when it is not a part, holds another seed, or was made by another table (naming the first field that differs).
std::optional<nlohmann::json> readTablePart(const TableRequest& req, int64_t seed) {
    const std::string file = tablePartFile(req, seed);
    std::error_code ec;
    if (!fs::exists(file, ec)) return std::nullopt;
    const nlohmann::json j = nlohmann::json::parse(readFile(file), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw FileError(file, "not JSON (a table part written by `table --only-seed` was expected); remove it to train seed " +
                                  std::to_string(seed) + " here");
    if (j.value("graftlab_table_part", 0) != 1) throw FileError(file, "not a table part (no \"graftlab_table_part\": 1)");
    if (!j.contains("seed") || !j["seed"].is_number_integer() || j["seed"].get<int64_t>() != seed)
        throw FileError(file, "holds seed " + (j.contains("seed") ? j["seed"].dump() : std::string("(none)")) + ", not seed " + std::to_string(seed));
    if (!j.contains("table") || !j["table"].is_object()) throw FileError(file, "does not say what table made it (no \"table\" object)");
    const std::string d = firstDifference(j["table"], tableIdentity(req));
    if (!d.empty())
        throw FileError(file, "is a part of another table: " + d + " (made by `" + j.value("command", std::string("?")) +
                                  "`); move it away to train seed " + std::to_string(seed) + " here");
    if (!j.contains("rows") || !j["rows"].is_array()) throw FileError(file, "has no \"rows\" array");
    return j;
}
}  // namespace

// Each stage's steps x batch x the FLOPs of a training image of its method
// (Objective::countFlops; frozen blocks are counted as trained: an upper bound for grafted stages).
double recipeTrainFlops(const Recipe& r, int channels) {
    double total = 0;
    for (const auto& st : r.effectiveStages()) {
        FlopCount f;
        makeObjective(r, st.method, channels, std::vector<float>(size_t(channels), 0.5f), std::vector<float>(size_t(channels), 0.25f))
            ->countFlops(f, r, channels);
        total += f.trainStep * double(st.steps) * double(r.optim.batchSize);
    }
    return total;
}

TableBudget tableBudget(const std::string& name) {
    if (name == "tiny") return {name, 20, 0, 10};
    if (name == "small") return {name, 600, 10000, 200};
    if (name == "medium") return {name, 3000, 0, 1000};
    if (name == "large") return {name, 12000, 0, 2000};
    if (name == "xlarge") return {name, 48000, 0, 4000};
    throw std::invalid_argument("budget must be tiny, small, medium, large or xlarge, got \"" + name + "\"");
}

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

void checkPlannedRun(const Recipe& r, const std::string& run, std::map<std::string, int64_t>& sizes) {
    auto issues = r.validate();
    if (!issues.empty()) throw RecipeError(issues.front().field, issues.front().message + " (in the run " + run + ")");
    const std::string key = r.data.dataset + "\n" + r.data.root + "\n" + std::to_string(r.data.imageSize) + "\n" +
                            std::to_string(r.data.syntheticSize) + "\n" + std::to_string(r.data.fallbackToSynthetic);  // sizes do not depend on the seed
    auto it = sizes.find(key);
    if (it == sizes.end()) it = sizes.emplace(key, loadDataset(r.data, Split::Train, uint64_t(r.seed)).size()).first;
    if (r.optim.batchSize > it->second)
        throw RecipeError("optim.batch_size", "batch size " + std::to_string(r.optim.batchSize) + " is larger than the training set (" +
                                                  std::to_string(it->second) + " images) of the run " + run +
                                                  "; nothing was trained");
}

std::string methodDisplayName(const std::string& recipe) {
    static const std::map<std::string, std::string> names = {
        {"mae", "MAE"}, {"mocov3", "MoCo v3"}, {"mtl", "MTL (MAE + MoCo v3)"}, {"cl_to_mim", "CL → MIM"},
        {"mim_to_cl", "MIM → CL"}, {"layer_grafted", "Layer Grafted"}, {"conmim", "ConMIM"},
        {"random_init", "Random-init encoder (baseline)"}, {"raw_pixels", "Raw pixels (baseline)"},
        {"scratch_equal_steps", "From scratch, equal total steps (baseline)"}};
    auto it = names.find(recipe);
    return it == names.end() ? recipe : it->second;
}

std::vector<double> TableRow::values(const std::string& protocol) const {
    std::vector<double> v;
    for (const auto& r : reports) {
        const ProtocolResult* p = r.find(protocol);
        v.push_back(p ? p->top1 : NAN);
    }
    return v;
}

std::pair<double, double> TableRow::stat(const std::string& protocol) const {
    std::vector<double> v;
    for (const auto& r : reports)
        if (const ProtocolResult* p = r.find(protocol)) v.push_back(p->top1);
    if (v.empty()) return {NAN, NAN};
    double mean = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    return {mean, v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0.0};
}

namespace {
struct RunOutcome {
    std::string checkpoint;  // empty: stopped before the end
};
RunOutcome ensureTrained(const Recipe& recipe, const std::string& dir, const TableTrainFn& train,
                         const std::function<void(const std::string&)>& log, bool randomInitOnly);
}  // namespace

std::string trainOrReuse(const Recipe& recipe, const std::string& dir, const TableTrainFn& train,
                         const std::function<void(const std::string&)>& log) {
    return ensureTrained(recipe, dir, train, log, false).checkpoint;
}

namespace {

// Trains `recipe` into `dir`, or reuses / resumes what is there when its recipe is the same.
RunOutcome ensureTrained(const Recipe& recipe, const std::string& dir, const TableTrainFn& train,
                         const std::function<void(const std::string&)>& log, bool randomInitOnly) {
    const RunLayout layout(dir);
    if (layout.holdsRun()) {
        const nlohmann::json planned = experimentOf(recipe.toJson());
        const nlohmann::json stored = alignCheckpointPaths(experimentOf(nlohmann::json::parse(readFile(layout.recipe()), nullptr, false)), planned);
        if (stored == planned) {
            std::string last = latestGoodCheckpoint(layout.checkpoints());
            int64_t need = randomInitOnly ? 0 : recipe.totalSteps();
            if (!last.empty() && readCheckpointMeta(last).step >= need) {
                log("reusing the finished run in " + dir);
                return {last};
            }
            if (!last.empty() && !randomInitOnly) {
                RunSession session(recipe, dir, last, false);
                log("resuming " + dir + " at step " + std::to_string(session.trainer().step()));
                if (!train(session) || !session.complete()) return {};
                return {latestGoodCheckpoint(layout.checkpoints())};
            }
        } else {
            // Never lose a run: what is there is moved aside, not overwritten (a path written differently, a changed
            // --set or budget would otherwise cost the hours that run took).
            std::string aside = asideName(dir);
            fs::rename(dir, aside);
            log(dir + " holds a run of another recipe (or budget): " + firstDifference(stored, planned) + "; moved it to " +
                aside + " and training it again");
        }
    }
    RunSession session(recipe, dir, RunDirMode::Force);
    if (randomInitOnly) {
        std::string ckpt = session.trainer().saveCheckpointNow();
        log("random-init encoder of the same size written to " + ckpt);
        return {ckpt};
    }
    log("training " + std::to_string(recipe.totalSteps()) + " steps into " + dir);
    if (!train(session) || !session.complete()) return {};
    return {latestGoodCheckpoint(layout.checkpoints())};
}

}  // namespace

const TableEntry* graftSource(const TableRequest& req, const TableEntry& e) {
    if (req.graftSteps <= 0) return nullptr;
    bool anyStaged = false;
    for (const auto& f : req.recipes) anyStaged = anyStaged || f.recipe.stages.size() >= 2;
    if (!anyStaged) throw std::invalid_argument("no staged recipe (mim_to_cl, layer_grafted, cl_to_mim) among the recipes to graft");
    if (e.recipe.stages.size() < 2) return nullptr;
    const std::string& m = e.recipe.stages.front().method;
    for (const auto& f : req.recipes)
        if (f.recipe.stages.empty() && f.recipe.method == m) return &f;
    throw std::invalid_argument(e.key + " starts with a " + m + " stage, and no " + m +
                                " recipe among the recipes trains one to graft onto (add " + m + ")");
}

namespace {
// The seed indices a request makes (all, or --only-seed's) and, of those, the ones whose part file is in DIR.
struct SeedPlan {
    std::vector<int> indices;
    std::map<int, nlohmann::json> parts;
};
SeedPlan planSeeds(const TableRequest& req) {
    SeedPlan plan;
    const int64_t firstSeed = req.recipes.front().recipe.seed;
    if (req.onlySeed) {
        const int64_t s = *req.onlySeed - firstSeed;
        if (s < 0 || s >= req.seeds)
            throw std::invalid_argument("seed " + std::to_string(*req.onlySeed) + " is not one of the table's seeds (" + std::to_string(firstSeed) +
                                        (req.seeds > 1 ? " to " + std::to_string(firstSeed + req.seeds - 1) : std::string()) + ")");
        plan.indices.push_back(int(s));
        return plan;  // a part is made whole here, never taken from another part
    }
    for (int s = 0; s < req.seeds; ++s) {
        plan.indices.push_back(s);
        if (auto part = readTablePart(req, firstSeed + s)) plan.parts[s] = *part;
    }
    return plan;
}
}  // namespace

std::vector<int64_t> tableSeedsToMake(const TableRequest& req) {
    if (req.recipes.empty()) throw std::invalid_argument("a table needs at least one recipe");
    const SeedPlan plan = planSeeds(req);
    std::vector<int64_t> out;
    for (int s : plan.indices)
        if (!plan.parts.count(s)) out.push_back(req.recipes.front().recipe.seed + s);
    return out;
}

namespace {
TableResult makeTable(const TableRequest& req, const TableTrainFn& train, const std::function<void(const std::string&)>& logFn) {
    if (req.recipes.empty()) throw std::invalid_argument("a table needs at least one recipe");
    if (req.seeds < 1 || req.seeds > 100) throw std::invalid_argument("seeds must be in 1..100");
    if (req.pooling != "cls" && req.pooling != "mean") throw std::invalid_argument("pooling must be cls or mean, got \"" + req.pooling + "\"");
    auto log = [&](const std::string& m) {
        if (logFn) logFn(m);
    };
    fs::create_directories(req.outDir);
    TableResult result;
    std::vector<TableRow> rows;
    auto rowFor = [&](const std::string& key, bool baseline) -> TableRow& {
        for (auto& r : rows)
            if (r.key == key) return r;
        TableRow r;
        r.key = key;
        r.name = methodDisplayName(key);
        r.baseline = baseline;
        rows.push_back(r);
        return rows.back();
    };
    const auto asked = [&](const std::string& p) { return std::find(req.protocols.begin(), req.protocols.end(), p) != req.protocols.end(); };
    if (req.baselines) {
        rowFor("random_init", true);
        if (asked("finetune")) rowFor("scratch_equal_steps", true);
        rowFor("raw_pixels", true);
    }
    for (const auto& e : req.recipes) rowFor(e.key, false);

    const int64_t firstSeed = req.recipes.front().recipe.seed;
    const SeedPlan plan = planSeeds(req);
    const std::vector<int>& seedIndices = plan.indices;
    const std::map<int, nlohmann::json>& parts = plan.parts;

    // How many evaluations the table makes (a seed: each recipe, then the baselines), counted in the log as they
    // start: the evaluations of the larger budgets take hours.
    const int evaluationsPerSeed = int(req.recipes.size()) +
                                   (req.baselines ? 1 + int(asked("finetune")) + int(req.protocols != std::vector<std::string>{"finetune"}) : 0);
    const int evaluations = int(seedIndices.size() - parts.size()) * evaluationsPerSeed;
    int evaluationsStarted = 0;
    // `adjust` sets what a baseline evaluates differently (features, protocols, fine-tuning from scratch).
    auto evaluate = [&](const std::string& ckpt, const Recipe& recipe, const std::string& key,
                        const std::function<void(EvalRequest&)>& adjust = {}) {
        log(key + ": evaluation " + std::to_string(++evaluationsStarted) + " of " + std::to_string(evaluations) + " (seed " +
            std::to_string(recipe.seed) + ")");
        EvalRequest er;
        er.checkpoint = ckpt;
        er.maxTrain = req.budget.maxTrain;
        er.finetuneSteps = req.budget.finetuneSteps;
        er.seed = uint64_t(recipe.seed);
        er.protocols = req.protocols;
        er.pooling = req.pooling;
        er.stopRequested = [] { return stopSignalReceived() != 0; };  // a fine-tuning saves its state and stops at once
        if (adjust) adjust(er);
        EvalReport rep = evaluateStored(er, RunLayout::evaluationStore(req.outDir),
                                        [&](const std::string& m) { log(key + ": " + m); });
        // the run's own eval.json, which the GUI compares, holds the cls evaluation
        if (key != "raw_pixels" && key != "scratch_equal_steps" && req.pooling == "cls") writeEvalJson(rep);
        return rep;
    };
    // What a row's seed cost to train: wall time from its metrics and analytic FLOPs (a graft's source included).
    auto addCompute = [&](TableRow& row, const Recipe& recipe, const std::string& dir, const std::string& ckpt,
                          const TableEntry* source) {
        double seconds = runTrainSeconds(dir, recipe.optim.batchSize);
        double flops = recipeTrainFlops(recipe, readCheckpointMeta(ckpt).channels);
        if (source) {
            const TableRow& src = rowFor(source->key, false);
            if (!src.trainSeconds.empty()) seconds += src.trainSeconds.back();
            flops += src.trainFlops;
        }
        row.trainSeconds.push_back(seconds);
        row.trainFlops = flops;
    };

    auto sourceOf = [&](const TableEntry& e) { return graftSource(req, e); };
    std::vector<const TableEntry*> order;  // sources before the recipes grafted onto them
    for (const auto& e : req.recipes)
        if (!sourceOf(e)) order.push_back(&e);
    for (const auto& e : req.recipes)
        if (sourceOf(e)) order.push_back(&e);

    // Seed index s of a recipe: its recipe and its run directory. A grafted recipe keeps its stages after the first,
    // the next one starting from the source's final checkpoint (`sourceCkpt`, this seed's).
    auto planned = [&](int s, const TableEntry& e, const std::string& sourceCkpt) {
        Recipe recipe = e.recipe;
        recipe.seed += s;
        if (sourceOf(e)) {
            recipe.stages.erase(recipe.stages.begin());
            recipe.stages.front().init = "checkpoint";
            recipe.stages.front().checkpoint = sourceCkpt;
            recipe.method = recipe.stages.front().method;
            scaleToBudget(recipe, req.graftSteps);
        } else {
            scaleToBudget(recipe, req.budget.steps);
        }
        std::string dir = (fs::path(req.outDir) / (req.seeds > 1 ? e.key + "-seed" + std::to_string(recipe.seed) : e.key)).string();
        return std::pair{recipe, dir};
    };
    // Trains (or reuses) seed s's runs of `entries` in order, handing each to `done`; false when a run was stopped.
    auto trainSeed = [&](int s, const std::vector<const TableEntry*>& entries, const std::function<void(const TableEntry&, const Recipe&, const std::string&, const std::string&)>& done) {
        std::map<std::string, std::string> finals;
        for (const TableEntry* e : entries) {
            if (stopSignalReceived()) return false;  // a stop during the last evaluation: the same command continues
            const TableEntry* src = sourceOf(*e);
            auto [recipe, dir] = planned(s, *e, src ? finals.at(src->key) : std::string());
            RunOutcome out = ensureTrained(recipe, dir, train, [&](const std::string& m) { log(e->key + ": " + m); }, false);
            if (out.checkpoint.empty()) return false;  // stopped: the same command continues
            finals[e->key] = out.checkpoint;
            if (done) done(*e, recipe, dir, out.checkpoint);
        }
        return true;
    };
    {
        // Every run of the table checked before the first one trains (a grafted run's source checkpoint is made first).
        std::map<std::string, int64_t> sizes;
        for (int s : seedIndices)
            for (const TableEntry* e : order) {
                auto [recipe, dir] = planned(s, *e, (fs::path(req.outDir) / "source.ckpt").string());
                checkPlannedRun(recipe, fs::path(dir).filename().string(), sizes);
            }
    }
    if (req.trainShards > 0) {
        if (req.trainShard < 0 || req.trainShard >= req.trainShards) throw std::invalid_argument("train shard out of range");
        // The seeds to make here (not those taken from parts), numbered p = 0, 1, ... as the CLI counts its jobs' runs.
        size_t p = 0;
        for (int s : seedIndices) {
            if (parts.count(s)) continue;  // made elsewhere
            std::vector<const TableEntry*> mine;
            for (size_t i = 0; i < order.size(); ++i) {
                // k = seed x recipes + recipe; when grafting a job trains whole seeds, the source before its grafts
                size_t k = req.graftSteps > 0 ? p : p * order.size() + i;
                if (k % size_t(req.trainShards) == size_t(req.trainShard)) mine.push_back(order[i]);
            }
            if (!trainSeed(s, mine, nullptr)) return result;
            ++p;
        }
        result.complete = true;
        return result;
    }

    // A seed's rows from its part file: every row of the table, with this directory's run names.
    auto takePart = [&](int s, const nlohmann::json& part) {
        const std::string file = tablePartFile(req, firstSeed + s);
        std::set<std::string> seen;
        try {
            for (const auto& j : part["rows"]) {
                const std::string key = j.at("key").get<std::string>();
                auto it = std::find_if(rows.begin(), rows.end(), [&](const TableRow& r) { return r.key == key; });
                if (it == rows.end() || it->baseline != j.at("baseline").get<bool>())
                    throw FileError(file, "has a row \"" + key + "\" that this table does not make");
                if (!seen.insert(key).second) throw FileError(file, "has the row \"" + key + "\" twice");
                TableRow& row = *it;
                row.steps = j.at("steps").get<int64_t>();
                row.batch = j.at("batch").get<int>();
                row.graftedOnto = j.at("grafted_onto").get<std::string>();
                row.sourceSteps = j.at("source_steps").get<int64_t>();
                // a run's directory name (as written), placed under this table's --out whatever the file says
                row.runDirs.push_back((fs::path(req.outDir) / fs::path(j.at("run_dir").get<std::string>()).filename()).string());
                row.seeds.push_back(j.at("seed").get<int64_t>());
                row.trainSeconds.push_back(j.at("train_seconds").get<double>());
                row.trainFlops = j.at("train_flops").get<double>();
                row.gradientCosines.push_back(j.at("gradient_cosines").get<std::string>());
                row.reports.push_back(EvalReport::fromJson(j.at("report")));
                row.fromPart.push_back(true);
            }
        } catch (const nlohmann::json::exception& e) {
            throw FileError(file, std::string("a row is malformed: ") + e.what());
        }
        for (const auto& r : rows)
            if (!seen.count(r.key)) throw FileError(file, "lacks the row \"" + r.key + "\"");
        log("seed " + std::to_string(firstSeed + s) + ": taken from " + file + " (made by `" + part.value("command", std::string("?")) + "`)");
    };

    for (int s : seedIndices) {
        if (auto p = parts.find(s); p != parts.end()) {
            takePart(s, p->second);
            continue;
        }
        const bool trained = trainSeed(s, order, [&](const TableEntry& e, const Recipe& recipe, const std::string& dir, const std::string& ckpt) {
            TableRow& row = rowFor(e.key, false);
            row.steps = recipe.totalSteps();
            if (const TableEntry* src = sourceOf(e)) {
                Recipe source = src->recipe;
                scaleToBudget(source, req.budget.steps);
                row.graftedOnto = src->key;
                row.sourceSteps = source.totalSteps();
                row.steps += row.sourceSteps;
            }
            row.batch = recipe.optim.batchSize;
            row.runDirs.push_back(dir);
            row.seeds.push_back(recipe.seed);
            addCompute(row, recipe, dir, ckpt, sourceOf(e));
            row.reports.push_back(evaluate(ckpt, recipe, e.key));
            row.fromPart.push_back(false);
            row.gradientCosines.push_back(row.reports.back().method == "mtl" ? gradientCosineSection(dir) : std::string());
        });
        if (!trained || stopSignalReceived()) return result;
        if (req.baselines) {
            // The first recipe's architecture and data at step 0; its checkpoint also names the data and the
            // normalisation for the raw-pixel row.
            Recipe recipe = req.recipes.front().recipe;
            recipe.seed += s;
            scaleToBudget(recipe, req.budget.steps);
            std::string dir = (fs::path(req.outDir) / (req.seeds > 1 ? "random_init-seed" + std::to_string(recipe.seed) : "random_init")).string();
            RunOutcome out = ensureTrained(recipe, dir, train, [&](const std::string& m) { log("random_init: " + m); }, true);
            auto baselineRow = [&](const std::string& key) -> TableRow& {
                TableRow& row = rowFor(key, true);
                row.batch = recipe.optim.batchSize;
                row.runDirs.push_back(dir);
                row.seeds.push_back(recipe.seed);
                row.trainSeconds.push_back(0);
                row.fromPart.push_back(false);
                row.gradientCosines.emplace_back();
                return row;
            };
            // Fine-tuned from random init: training from scratch, without the layer-wise decay meant for pretrained blocks.
            baselineRow("random_init").reports.push_back(
                evaluate(out.checkpoint, recipe, "random_init", [](EvalRequest& er) { er.finetuneFromScratch = true; }));
            if (asked("finetune"))  // from scratch with the pretraining's steps too: equal total optimizer steps
                baselineRow("scratch_equal_steps").reports.push_back(evaluate(out.checkpoint, recipe, "scratch_equal_steps", [&](EvalRequest& er) {
                    er.protocols = {"finetune"};
                    er.finetuneFromScratch = true;
                    er.finetuneSteps = int(req.budget.steps + req.budget.finetuneSteps);
                }));
            if (req.protocols != std::vector<std::string>{"finetune"})
                baselineRow("raw_pixels").reports.push_back(evaluate(out.checkpoint, recipe, "raw_pixels", [](EvalRequest& er) {
                    er.features = "pixels";
                    er.pooling = "cls";  // pixels are not pooled: the cls table's evaluation is the same one, reused
                    std::erase(er.protocols, std::string("finetune"));  // pixels are not fine-tuned
                }));
        }
    }
    result.rows = rows;
    if (req.onlySeed) {
        // One seed of the table: its rows, for the table made where every seed's part is gathered.
        nlohmann::json part = nlohmann::json::object();
        part["graftlab_table_part"] = 1;
        part["seed"] = *req.onlySeed;
        part["command"] = req.command;
        part["table"] = tableIdentity(req);
        nlohmann::json partRows = nlohmann::json::array();
        for (const auto& r : rows)
            if (!r.reports.empty()) partRows.push_back(partRowJson(r, r.reports.size() - 1));
        part["rows"] = partRows;
        result.partFile = tablePartFile(req, *req.onlySeed);
        writeFileAtomically(result.partFile, part.dump(1) + "\n");
        result.complete = true;
        return result;
    }
    result.markdown = tableMarkdown(req, rows);
    result.csv = tableCsv(rows);
    const std::string stem = tableFileStem(req);
    writeFileAtomically((fs::path(req.outDir) / (stem + ".md")).string(), result.markdown);
    writeFileAtomically((fs::path(req.outDir) / (stem + ".csv")).string(), result.csv);
    writeFileAtomically((fs::path(req.outDir) / (stem + "-seeds.csv")).string(), tableSeedsCsv(rows));
    result.complete = true;
    return result;
}
}  // namespace

TableResult runTable(const TableRequest& req, const TableTrainFn& train, const std::function<void(const std::string&)>& logFn) {
    try {
        return makeTable(req, train, logFn);
    } catch (const EvaluationStopped& e) {  // a stop signal during an evaluation: what it kept is said; not complete
        if (logFn) logFn(e.what());
        return TableResult{};
    }
}

std::string tableFileStem(const TableRequest& req) { return req.pooling == "mean" ? "table-meanpool" : "table"; }

std::string tablePartFile(const TableRequest& req, int64_t seed) {
    return (fs::path(req.outDir) / (tableFileStem(req) + "-part-seed" + std::to_string(seed) + ".json")).string();
}

std::vector<TableComparison> tableComparisons(const TableRequest& req, const std::vector<TableRow>& rows) {
    std::vector<TableComparison> out;
    if (req.seeds < 2) return out;
    const auto asked = [&](const std::string& p) { return std::find(req.protocols.begin(), req.protocols.end(), p) != req.protocols.end(); };
    std::vector<const TableRow*> methods, baselines;
    for (const auto& r : rows) {
        if (r.reports.empty()) continue;
        (r.baseline ? baselines : methods).push_back(&r);
    }
    auto compare = [&](const std::string& p, const TableRow* a, const TableRow* b) {
        std::vector<double> va = a->values(p), vb = b->values(p);
        auto finite = [](const std::vector<double>& v) { return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); }); };
        if (va.empty() || vb.empty() || !finite(va) || !finite(vb)) return;  // the protocol does not apply to a row
        TableComparison c;
        c.protocol = p;
        c.a = a;
        c.b = b;
        // Paired where both rows ran the same seeds: seed s set the pretraining and the evaluation randomness of both.
        const bool paired = a->seeds.size() == va.size() && a->seeds == b->seeds;
        c.test = paired ? pairedTTest(va, vb) : welchTTest(va, vb);
        if (c.test.valid) out.push_back(c);
    };
    for (const std::string& p : kProtocols) {
        if (!asked(p)) continue;
        for (const TableRow* m : methods)
            for (const TableRow* b : baselines) compare(p, m, b);
        for (size_t i = 0; i < methods.size(); ++i)
            for (size_t j = i + 1; j < methods.size(); ++j) compare(p, methods[i], methods[j]);
    }
    std::vector<double> ps;
    for (const auto& c : out) ps.push_back(c.test.p);
    auto holm = holmRejects(ps, 0.05);
    for (size_t i = 0; i < out.size(); ++i) out[i].holm = holm[i];
    return out;
}

namespace {

bool askedFor(const TableRequest& req, const std::string& p) {
    return std::find(req.protocols.begin(), req.protocols.end(), p) != req.protocols.end();
}

// The table itself: a row per method and baseline, steps and compute beside the accuracies.
void writeResultsTable(std::ostringstream& md, const TableRequest& req, const std::vector<TableRow>& rows) {
    md << "| Method | Steps | Train time | Train TFLOP | Linear | 1% | k-NN | Fine-tuning |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : rows) {
        if (r.reports.empty()) continue;
        std::string steps = r.baseline ? std::string("0") : std::to_string(r.steps);
        if (!r.graftedOnto.empty()) steps = std::to_string(r.sourceSteps) + " + " + std::to_string(r.steps - r.sourceSteps);
        const double seconds = r.trainSeconds.empty() ? 0.0 : meanOf(r.trainSeconds);
        md << "| " << (r.baseline ? "*" + r.name + "*" : r.name) << " | " << steps << " | "
           << (r.baseline ? std::string("–") : minutes(seconds)) << " | " << (r.baseline ? std::string("–") : teraFlops(r.trainFlops));
        for (const std::string& p : kProtocols) md << " | " << cell(r, p, req.seeds);
        md << " |\n";
    }
}

// What the table measured and how: data, seeds, budget, compute, the baselines.
void writeTableNotes(std::ostringstream& md, const TableRequest& req, const std::vector<TableRow>& rows, const TableRow& first) {
    const EvalReport& rep = first.reports.front();
    md << "\nTop-1 accuracy (%) on the " << rep.dataset << " test split (" << rep.testImages << " images)";
    if (req.seeds > 1) md << ", mean ± standard deviation over " << req.seeds << " seeds (" << rep.step << " steps each)";
    md << "; budget `" << req.budget.name << "`: " << req.budget.steps << " optimizer steps per method at batch " << first.batch
       << (req.graftSteps > 0 ? ". " : " (grafted recipes split them over their stages). ")
       << "Equal optimizer steps are not equal compute: *Train time* is the mean wall time of a seed's pretraining on the "
          "machine that made the table (probes included, a grafted row's source run too), *Train TFLOP* the analytic "
          "training FLOPs of one seed (forward + backward of the linear layers and attention; frozen blocks counted as "
          "trained). Linear and 1% use "
       << rep.trainImages << " training images; ";
    if (askedFor(req, "finetune")) md << "fine-tuning " << req.budget.finetuneSteps << " steps.";
    else md << "fine-tuning not run (--protocol).";
    if (req.pooling == "mean")
        md << " Features: the mean of the encoder's patch tokens (--pool mean), for every protocol and every encoder row, the "
              "random-init one included; the class token is not used.";
    for (const auto& r : rows)
        if (!r.graftedOnto.empty()) {
            md << " Grafted rows (Steps *a + b*): not trained from scratch; their second stage starts from the "
               << methodDisplayName(r.graftedOnto) << " row's final checkpoint of the same seed (" << r.sourceSteps
               << " steps) and trains " << (r.steps - r.sourceSteps)
               << " more, as the papers graft onto a finished MAE (--graft-steps).";
            break;
        }
    if (req.baselines) {
        md << " Baselines: the same encoder at random initialisation (its fine-tuning column is training from scratch, "
              "without the layer-wise lr decay of the pretrained rows and with a warm-up of a tenth of its steps)";
        if (askedFor(req, "finetune"))
            md << ", the same from scratch for " << (req.budget.steps + req.budget.finetuneSteps)
               << " steps (the pretraining's steps plus the fine-tuning's: equal total optimizer steps)";
        md << ", and the normalised pixels themselves as features.";
    }
    std::set<int64_t> partSeeds;
    for (const auto& r : rows)
        for (size_t i = 0; i < r.fromPart.size() && i < r.seeds.size(); ++i)
            if (r.fromPart[i]) partSeeds.insert(r.seeds[i]);
    if (!partSeeds.empty()) {
        std::string list;
        for (int64_t sd : partSeeds) list += (list.empty() ? "" : ", ") + std::to_string(sd);
        if (partSeeds.size() == 1)
            md << " Seed " << list << " was trained and evaluated by itself (`--only-seed`) and taken from its part file ("
               << tableFileStem(req) << "-part-seed" << list << ".json); its *Train time* is that of the machine that made it.";
        else
            md << " Seeds " << list << " were each trained and evaluated by themselves (`--only-seed`) and taken from their part files ("
               << tableFileStem(req) << "-part-seedS.json); their *Train time* is that of the machines that made them.";
    }
    md << "\n";
}

// Which differences the tests support: each method against the baselines, then the methods between themselves.
void writeVerdicts(std::ostringstream& md, const TableRequest& req, const std::vector<TableRow>& rows) {
    std::vector<const TableRow*> methods;
    for (const auto& r : rows)
        if (!r.baseline && !r.reports.empty()) methods.push_back(&r);
    const bool anyBaseline = std::any_of(rows.begin(), rows.end(), [](const TableRow& r) { return r.baseline && !r.reports.empty(); });
    if (req.seeds < 2) {
        if (anyBaseline || methods.size() >= 2)
            md << "\nOne seed: no test is possible, so no difference is called significant here (run with --seeds 3 or more).\n";
        return;
    }
    const auto comps = tableComparisons(req, rows);
    auto find = [&](const TableRow* a, const TableRow* b, const std::string& p) -> const TableComparison* {
        for (const auto& c : comps)
            if (c.protocol == p && ((c.a == a && c.b == b) || (c.a == b && c.b == a))) return &c;
        return nullptr;
    };
    bool anyPaired = false, anyWelch = false;
    for (const auto& c : comps) (c.test.paired ? anyPaired : anyWelch) = true;
    md << "\nTests: " << comps.size() << " comparisons, each two-sided at 5 %";
    if (anyPaired) md << "; rows that share their seeds are compared seed by seed (paired t-test on the per-seed differences, "
                      << req.seeds - 1 << (req.seeds == 2 ? " degree" : " degrees") << " of freedom)";
    if (anyWelch) md << "; rows that do not, by Welch's t-test";
    md << ". † marks a difference that also survives Holm's correction over all " << comps.size() << " comparisons.\n";

    const TableRow* ri = nullptr;
    const TableRow* px = nullptr;
    const TableRow* longScratch = nullptr;
    for (const auto& r : rows) {
        if (r.reports.empty()) continue;
        if (r.key == "random_init") ri = &r;
        if (r.key == "raw_pixels") px = &r;
        if (r.key == "scratch_equal_steps") longScratch = &r;
    }
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
        return s.empty() ? std::string("none") : s;
    };
    if (ri) {
        md << "\nAgainst the baselines (significantly above; † for every comparison of the statement):\n\n";
        for (const std::string& p : kProtocols) {
            if (!askedFor(req, p)) continue;
            std::vector<const TableRow*> against = {ri};
            if (p == "finetune" && longScratch) against.push_back(longScratch);
            if (p != "finetune" && px) against.push_back(px);
            std::vector<std::string> all, firstOnly, neither;
            for (const TableRow* m : methods) {
                bool aboveAll = true, aboveFirst = false, holmAll = true;
                for (size_t k = 0; k < against.size(); ++k) {
                    const TableComparison* c = find(m, against[k], p);
                    const bool above = c && c->significant() && (c->a == m ? c->test.diff > 0 : c->test.diff < 0);
                    if (k == 0) aboveFirst = above;
                    aboveAll = aboveAll && above;
                    holmAll = holmAll && above && c->holm;
                }
                if (aboveAll) all.push_back(m->name + (holmAll ? "†" : ""));
                else if (aboveFirst) firstOnly.push_back(m->name);
                else neither.push_back(m->name);
            }
            md << "- " << protocolLabel(p) << ": ";
            if (against.size() == 1) md << "above the random-init encoder: " << join(all);
            else if (p == "finetune") md << "above both from-scratch rows: " << join(all) << "; above the shorter one only: " << join(firstOnly);
            else md << "above both baselines: " << join(all) << "; above random init only: " << join(firstOnly);
            md << "; not above: " << join(neither) << "\n";
        }
    }
    if (methods.size() >= 2) {
        md << "\nBetween the methods, the significant differences (difference ± its standard error, in points; p):\n\n";
        for (const std::string& p : kProtocols) {
            if (!askedFor(req, p)) continue;
            std::string line;
            for (const auto& c : comps) {
                if (c.protocol != p || c.a->baseline || c.b->baseline || !c.significant()) continue;
                const TableRow* hi = c.test.diff >= 0 ? c.a : c.b;
                const TableRow* lo = hi == c.a ? c.b : c.a;
                line += (line.empty() ? "" : "; ") + hi->name + " > " + lo->name + describeDifference(c.test, "+", c.holm);
            }
            md << "- " << protocolLabel(p) << ": " << (line.empty() ? "none: no difference is significant at 5 %" : line) << "\n";
        }
    }
}

// The MTL run's per-block mean gradient cosine (its last probe, first seed).
void writeGradientCosines(std::ostringstream& md, const std::vector<TableRow>& rows) {
    for (const auto& r : rows)
        if (!r.baseline && !r.gradientCosines.empty()) md << r.gradientCosines.front();
}

}  // namespace

std::string tableMarkdown(const TableRequest& req, const std::vector<TableRow>& rows) {
    const TableRow* first = nullptr;
    for (const auto& r : rows)
        if (!r.baseline && !r.reports.empty()) first = first ? first : &r;
    if (!first) return "";
    std::ostringstream md;
    writeResultsTable(md, req, rows);
    writeTableNotes(md, req, rows, *first);
    writeVerdicts(md, req, rows);
    md << "\nCommand: `" << req.command << "`\n";
    writeGradientCosines(md, rows);
    return md.str();
}

std::string tableCsv(const std::vector<TableRow>& rows) {
    std::ostringstream csv;
    csv << "recipe,method,baseline,steps,batch,seeds";
    for (const std::string& p : kProtocols) csv << ',' << p << ',' << p << "_sd";
    csv << ",grafted_onto,train_seconds,train_flops\n";
    for (const auto& r : rows) {
        if (r.reports.empty()) continue;
        csv << csvField(r.key) << ',' << csvField(r.reports.front().method) << ',' << (r.baseline ? 1 : 0) << ',' << r.steps << ',' << r.batch << ','
            << r.reports.size();
        for (const std::string& p : kProtocols) {
            auto [m, sd] = r.stat(p);
            csv << ',' << num(std::isfinite(m) ? 100 * m : NAN) << ',' << num(std::isfinite(sd) ? 100 * sd : NAN);
        }
        csv << ',' << csvField(r.graftedOnto) << ',' << num(r.trainSeconds.empty() ? NAN : meanOf(r.trainSeconds)) << ','
            << (r.baseline ? std::string() : std::to_string(int64_t(std::llround(r.trainFlops)))) << '\n';
    }
    return csv.str();
}

std::string tableSeedsCsv(const std::vector<TableRow>& rows) {
    std::ostringstream csv;
    csv << "recipe,method,baseline,seed,protocol,top1,steps,train_seconds,train_flops,run_dir\n";
    for (const auto& r : rows)
        for (size_t s = 0; s < r.reports.size(); ++s)
            for (const std::string& p : kProtocols) {
                const ProtocolResult* res = r.reports[s].find(p);
                if (!res) continue;
                csv << csvField(r.key) << ',' << csvField(r.reports[s].method) << ',' << (r.baseline ? 1 : 0) << ','
                    << (s < r.seeds.size() ? std::to_string(r.seeds[s]) : std::string()) << ',' << p << ',' << num(100 * res->top1) << ','
                    << (r.baseline ? 0 : r.steps) << ',' << num(s < r.trainSeconds.size() ? r.trainSeconds[s] : NAN) << ','
                    << (r.baseline ? std::string() : std::to_string(int64_t(std::llround(r.trainFlops)))) << ','
                    << csvField(s < r.runDirs.size() ? r.runDirs[s] : std::string()) << '\n';
            }
    return csv.str();
}

}  // namespace graftlab
