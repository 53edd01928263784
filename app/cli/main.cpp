// graftlab-cli: the headless face of GraftLab. Every sub-command has --help; user errors exit 2 with the
// field or file named, runtime failures exit 1.
#include "data/Dataset.h"
#include "methods/Mae.h"
#include "probes/Reconstruction.h"
#include "recipe/Recipe.h"
#include "train/Checkpoint.h"
#include "train/RunDir.h"
#include "train/Trainer.h"
#include "util/Errors.h"
#include "util/ImageIO.h"
#include "util/Log.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <csignal>
#include <set>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace graftlab;

namespace {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2;

std::atomic<Trainer*> g_trainer{nullptr};
void onSignal(int) {
    if (Trainer* t = g_trainer.load()) t->requestStop();
}

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> options;
    bool has(const std::string& k) const { return options.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = {}) const {
        auto it = options.find(k);
        return it == options.end() || it->second.empty() ? def : it->second.back();
    }
};

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Parses --key value / --key=value / --flag. `flags` take no value.
Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valued, const std::set<std::string>& flags) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            std::string key = s.substr(2), value;
            auto eq = key.find('=');
            bool inlineValue = eq != std::string::npos;
            if (inlineValue) {
                value = key.substr(eq + 1);
                key = key.substr(0, eq);
            }
            if (flags.count(key)) {
                a.options[key].push_back("1");
            } else if (valued.count(key)) {
                if (!inlineValue) {
                    if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
                    value = argv[++i];
                }
                a.options[key].push_back(value);
            } else {
                throw UsageError("unknown option --" + key);
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

int64_t parseInt(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos != v.size()) throw std::invalid_argument("trailing");
        return x;
    } catch (const std::exception&) {
        throw UsageError("--" + opt + " expects an integer, got \"" + v + "\"");
    }
}

std::vector<std::string> recipeDirs() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("GRAFTLAB_RECIPE_DIR")) dirs.push_back(env);
    // installed layout first (<prefix>/bin/../share/graftlab/recipes), then the source tree of a build
    std::error_code ec;
    auto exe = fs::canonical("/proc/self/exe", ec);
    if (!ec) dirs.push_back((exe.parent_path() / GRAFTLAB_INSTALL_RECIPE_DIR).lexically_normal().string());
    dirs.push_back(GRAFTLAB_SOURCE_RECIPE_DIR);
    return dirs;
}

// A recipe argument is a file path, or the name of a preset (e.g. "mae").
std::string resolveRecipe(const std::string& arg) {
    if (fs::exists(arg)) return arg;
    if (arg.find('/') == std::string::npos) {
        for (const auto& d : recipeDirs()) {
            auto p = fs::path(d) / (arg + (arg.size() > 5 && arg.substr(arg.size() - 5) == ".json" ? "" : ".json"));
            if (fs::exists(p)) return p.string();
        }
    }
    throw FileError(arg, "recipe file not found (give a path, or a preset name such as \"mae\")");
}

// Progress on a terminal (one redrawn line), plain log lines otherwise.
class ProgressPrinter : public TrainerObserver {
public:
    explicit ProgressPrinter(bool tty) : tty_(tty) {}
    void onRunStarted(const RunInfo& info) override {
        total_ = info.totalSteps;
        start_ = info.startStep;
        t0_ = std::chrono::steady_clock::now();
        spdlog::info("training {} on {} ({} images, device {}), {} parameters, steps {}..{}",
                     info.recipe.value("name", "?"), info.dataset, info.trainImages, info.device, info.parameters,
                     info.startStep, info.totalSteps);
    }
    void onMetrics(const MetricsRow& row) override {
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        double done = double(row.step - start_);
        double eta = done > 0 ? elapsed / done * double(total_ - row.step) : 0;
        char etaBuf[32];
        std::snprintf(etaBuf, sizeof etaBuf, "%02d:%02d", int(eta) / 60, int(eta) % 60);
        if (tty_) {
            const int width = 28;
            int filled = int(width * double(row.step) / double(std::max<int64_t>(1, total_)));
            std::string bar(size_t(filled), '#');
            bar += std::string(size_t(width - filled), '.');
            std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  %.0f img/s  ETA %s   ", bar.c_str(),
                         (long long)row.step, (long long)total_, row.value("loss"), row.value("images_per_s"), etaBuf);
            std::fflush(stderr);
            lineOpen_ = true;
        } else {
            spdlog::info("step {}/{} loss {:.4f} lr {:.3g} {:.0f} img/s ETA {}", row.step, total_, row.value("loss"),
                         row.value("lr"), row.value("images_per_s"), etaBuf);
        }
    }
    void onCheckpoint(const std::string& path, int64_t step) override {
        closeLine();
        spdlog::debug("checkpoint {} (step {})", path, step);
    }
    void onStateChanged(TrainerState s, const std::string& detail) override {
        if (s == TrainerState::Running || s == TrainerState::Paused) return;
        closeLine();
    }
    void closeLine() {
        if (lineOpen_) std::fputc('\n', stderr);
        lineOpen_ = false;
    }

private:
    bool tty_;
    bool lineOpen_ = false;
    int64_t total_ = 0, start_ = 0;
    std::chrono::steady_clock::time_point t0_;
};

const char* kMainHelp =
    "graftlab-cli - self-supervised ViT pretraining (MAE) from the command line\n"
    "\n"
    "Usage: graftlab-cli <command> [options]\n"
    "\n"
    "Commands:\n"
    "  train        train a recipe into a run directory\n"
    "  resume       continue a run directory from its newest checkpoint\n"
    "  reconstruct  MAE demo grid (original / masked / reconstruction / + visible) from a checkpoint\n"
    "  recipe       print a recipe with every default filled in, or the list of fields\n"
    "\n"
    "Options: --version, --help.  `graftlab-cli <command> --help` describes each command.\n";

const char* kTrainHelp =
    "Usage: graftlab-cli train [--recipe FILE|PRESET] [--out DIR] [--steps N] [--set key=value ...]\n"
    "                          [--force] [--stop-at K] [--verbose]\n"
    "\n"
    "  --recipe   recipe JSON file, or a preset name from resources/recipes (default: mae)\n"
    "  --out      run directory to create (default: runs/<recipe name>-<date-time>)\n"
    "  --steps    override train.steps\n"
    "  --set      override any field, e.g. --set optim.batch_size=64 --set data.dataset=synthetic\n"
    "  --force    replace a run that DIR already holds\n"
    "  --stop-at  stop after K steps with a checkpoint, as an interruption would (resume continues)\n"
    "\n"
    "Writes DIR/recipe.json, DIR/metrics.jsonl and DIR/checkpoints/. Ctrl-C stops after the current step\n"
    "and writes a checkpoint. Recipe errors are all listed, with their field, and exit with status 2.\n";

const char* kResumeHelp =
    "Usage: graftlab-cli resume DIR [--verbose]\n"
    "\n"
    "Continues the run in DIR from its newest readable checkpoint to the recipe's train.steps.\n";

const char* kReconstructHelp =
    "Usage: graftlab-cli reconstruct --ckpt FILE --out GRID.png [--images N] [--seed S]\n"
    "\n"
    "Writes MAE's four panels per image (original, masked, reconstruction, reconstruction + visible)\n"
    "for N test images (default 8) chosen, with the mask, from seed S (default 0).\n";

const char* kRecipeHelp =
    "Usage: graftlab-cli recipe [--recipe FILE|PRESET] [--set key=value ...] | --fields\n"
    "\n"
    "Prints the recipe with every default filled in (after validation), or with --fields every field\n"
    "with its help text.\n";

Recipe loadRecipeOrExit(const std::string& file, const std::vector<std::string>& sets, bool& ok) {
    std::vector<RecipeIssue> issues;
    Recipe r = loadRecipeFile(file, sets, issues);
    bool malformed = !issues.empty() && issues.front().field.empty();
    if (!malformed) {
        // Fields that failed to parse kept their defaults; report the remaining problems too, once per field.
        for (auto& v : r.validate()) {
            bool seen = std::any_of(issues.begin(), issues.end(), [&](const RecipeIssue& i) { return i.field == v.field; });
            if (!seen) issues.push_back(v);
        }
    }
    ok = issues.empty();
    if (!ok) std::cerr << "error: recipe " << file << " has " << issues.size() << " problem(s):\n" << formatIssues(issues);
    return r;
}

int runTraining(Trainer& trainer, RunDir& dir, bool tty) {
    ProgressPrinter progress(tty);
    trainer.addObserver(&dir);
    trainer.addObserver(&progress);
    g_trainer = &trainer;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    TrainerState s;
    try {
        s = trainer.run();
    } catch (...) {
        g_trainer = nullptr;
        progress.closeLine();
        throw;
    }
    g_trainer = nullptr;
    if (s == TrainerState::Failed) {
        std::cerr << "error: " << trainer.failure() << "\n";
        return kExitFailure;
    }
    if (s == TrainerState::Stopped)
        spdlog::info("stopped at step {}; continue with: graftlab-cli resume {}", trainer.step(), dir.path());
    else
        spdlog::info("finished {} steps; run directory {}", trainer.step(), dir.path());
    return kExitOk;
}

int cmdTrain(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"recipe", "out", "steps", "set", "stop-at"}, {"force", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kTrainHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    setupLogging(a.has("verbose"));
    std::string file = resolveRecipe(a.get("recipe", "mae"));
    std::vector<std::string> sets = a.options["set"];
    if (a.has("steps")) sets.push_back("train.steps=" + std::to_string(parseInt("steps", a.get("steps"))));
    bool ok = false;
    Recipe recipe = loadRecipeOrExit(file, sets, ok);
    if (!ok) return kExitUsage;
    logBlasAtStartup();

    std::string out = a.get("out");
    if (out.empty()) {
        auto now = std::time(nullptr);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
        out = "runs/" + recipe.name + "-" + buf;
    }
    RunDir dir(out, a.has("force") ? RunDirMode::Force : RunDirMode::Create);
    TrainerOptions opts;
    opts.checkpointDir = dir.checkpointDir();
    if (a.has("stop-at")) opts.stopAtStep = parseInt("stop-at", a.get("stop-at"));
    Trainer trainer(recipe, opts);
    trainer.prepare();
    dir.writeRecipe(recipe);
    spdlog::info("run directory: {}", dir.path());
    return runTraining(trainer, dir, isatty(STDERR_FILENO));
}

int cmdResume(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kResumeHelp;
        return kExitOk;
    }
    if (a.positional.size() != 1) throw UsageError("resume needs exactly one run directory");
    setupLogging(a.has("verbose"));
    RunDir dir(a.positional[0], RunDirMode::Resume);
    bool ok = false;
    Recipe recipe = loadRecipeOrExit(dir.recipePath(), {}, ok);
    if (!ok) return kExitUsage;
    std::string ckpt = latestGoodCheckpoint(dir.checkpointDir());
    if (ckpt.empty()) throw FileError(dir.checkpointDir(), "no readable checkpoint to resume from");
    logBlasAtStartup();
    TrainerOptions opts;
    opts.checkpointDir = dir.checkpointDir();
    Trainer trainer(recipe, opts);
    trainer.prepare();
    trainer.resumeFrom(ckpt);
    dir.truncateMetricsAfter(trainer.step());
    if (trainer.step() >= recipe.totalSteps()) {
        spdlog::info("{} is already complete ({} of {} steps)", dir.path(), trainer.step(), recipe.totalSteps());
        return kExitOk;
    }
    return runTraining(trainer, dir, isatty(STDERR_FILENO));
}

int cmdReconstruct(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "images", "seed"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kReconstructHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("reconstruct needs --ckpt FILE");
    if (!a.has("out")) throw UsageError("reconstruct needs --out GRID.png");
    setupLogging(a.has("verbose"));
    int64_t n = parseInt("images", a.get("images", "8"));
    int64_t seed = parseInt("seed", a.get("seed", "0"));
    if (n < 1 || n > 64) throw UsageError("--images must be in 1..64");
    std::string ckpt = a.get("ckpt");
    CheckpointMeta meta = readCheckpointMeta(ckpt);
    std::vector<RecipeIssue> issues;
    Recipe recipe = Recipe::fromJson(meta.recipe, issues);
    if (!issues.empty()) throw FileError(ckpt, "its recipe does not parse: " + issues.front().field + ": " + issues.front().message);
    std::string method = recipe.effectiveStages()[size_t(std::max(0, std::min(meta.stage, int(recipe.effectiveStages().size()) - 1)))].method;
    if (method != "mae")
        throw FileError(ckpt, "was trained with method \"" + method + "\"; reconstruct needs a MAE checkpoint (a MAE decoder)");
    torch::manual_seed(0);
    MaeImpl mae(recipe, meta.channels, meta.mean, meta.std);
    loadModelState(ckpt, mae, true);

    Dataset test = loadDataset(recipe.data, Split::Test, uint64_t(recipe.seed));
    auto gen = at::detail::createCPUGenerator(uint64_t(seed));
    auto idx = torch::randperm(test.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).slice(0, 0, n);
    auto images = test.images.index_select(0, idx).to(torch::kFloat32).div(255.f);
    ReconstructionPanels p = reconstruct(mae, images, uint64_t(seed) + 1);
    int scale = std::max(1, 112 / int(images.size(-1)));
    auto grid = panelsToGrid(p, scale);
    char title[256];
    std::snprintf(title, sizeof title, "MAE reconstruction  step %lld  mask ratio %.2f  loss %.4f  (%s, test split)",
                  (long long)meta.step, recipe.mae.maskRatio, p.loss, test.name.c_str());
    writeImage(a.get("out"), grid, {title, p.pixelNote}, {"original", "masked", "reconstruction", "recon + visible"});
    spdlog::info("wrote {} ({} images, loss {:.4f})", a.get("out"), n, p.loss);
    return kExitOk;
}

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

}  // namespace

int main(int argc, char** argv) {
    setupLogging(false);
    if (argc < 2) {
        std::cerr << kMainHelp;
        return kExitUsage;
    }
    std::string cmd = argv[1];
    try {
        if (cmd == "--version" || cmd == "version") {
            std::cout << "graftlab-cli " << versionString() << " (LibTorch " << TORCH_VERSION << ")\n";
            return kExitOk;
        }
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            std::cout << kMainHelp;
            return kExitOk;
        }
        if (cmd == "train") return cmdTrain(argc, argv);
        if (cmd == "resume") return cmdResume(argc, argv);
        if (cmd == "reconstruct") return cmdReconstruct(argc, argv);
        if (cmd == "recipe") return cmdRecipe(argc, argv);
        std::cerr << "error: unknown command \"" << cmd << "\"\n\n" << kMainHelp;
        return kExitUsage;
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << " (see graftlab-cli " << cmd << " --help)\n";
        return kExitUsage;
    } catch (const RecipeError& e) {
        std::cerr << "error: recipe field " << e.what() << "\n";
        return kExitUsage;
    } catch (const FileError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitUsage;
    } catch (const c10::Error& e) {
        std::cerr << "error: " << e.what_without_backtrace() << "\n";
        return kExitFailure;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitFailure;
    }
}
