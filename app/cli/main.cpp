// graftlab-cli: the headless face of GraftLab. Every sub-command has --help; user errors exit 2 with the
// field or file named, runtime failures exit 1.
#include "data/Augment.h"
#include "data/Dataset.h"
#include "methods/Mae.h"
#include "bench/Bench.h"
#include "dist/Distributed.h"
#include "eval/Evaluate.h"
#include "export/Npz.h"
#include "probes/ProbeExport.h"
#include "probes/Probes.h"
#include "probes/Reconstruction.h"
#include "recipe/Recipe.h"
#include "train/Checkpoint.h"
#include "train/RunDir.h"
#include "train/Trainer.h"
#include "util/AtomicFile.h"
#include "util/Errors.h"
#include "util/ImageIO.h"
#include "util/Log.h"
#include "util/ThreadEnv.h"
#include "CliCommon.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <set>
#include <sstream>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace fs = std::filesystem;
using namespace graftlab;
using namespace graftlab::cli;

namespace {

std::atomic<Trainer*> g_trainer{nullptr};
void onSignal(int) {
    if (Trainer* t = g_trainer.load()) t->requestStop();
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
    "  eval         linear probe, 1% few-shot, k-NN and fine-tuning of a checkpoint's encoder\n"
    "  table        train several recipes with equal compute and evaluate them all (the papers' Table 1)\n"
    "  embed        frozen features of a split, for Python (torch.load)\n"
    "  export       the encoder with timm's names (.pt or .safetensors), or a run's probe results as .npz\n"
    "  report       one self-contained HTML page of a run: curves, recipe, evaluation, probes\n"
    "  probe        gradient cosines, attention, patch similarity or reconstructions of a checkpoint (PNG + CSV)\n"
    "  recipe       print a recipe with every default filled in, or the list of fields\n"
    "  bench        training speed: images/s, model FLOPs, achieved vs measured sgemm GFLOP/s\n"
    "\n"
    "Options: --version, --help.  `graftlab-cli <command> --help` describes each command.\n";

const char* kBenchHelp =
    "Usage: graftlab-cli bench [--recipe FILE|PRESET] [--steps N] [--warmup K] [--threads T] [--json OUT]\n"
    "                          [--set key=value ...]\n"
    "\n"
    "Times N training steps (after K warm-up steps) of the recipe's objective on one fixed in-memory synthetic\n"
    "batch whose views are made once: forward, backward, AdamW, momentum/EMA update; no I/O, no augmentation.\n"
    "Prints images/s, the model's GFLOP per image (analytic: linear layers, patch embedding and attention\n"
    "matmuls, forward + backward = 3x forward for trained parts), the GFLOP/s achieved, the sgemm GFLOP/s\n"
    "measured in the same run (512 x 512 x 512; the faster of torch::mm and oneDNN's sgemm, which the linear\n"
    "layers use when LibTorch loaded it) and their ratio (model FLOP utilisation), peak RSS, and the\n"
    "share of time in probes when probes.every > 0. benchmarks/pytorch_reference.py times eager PyTorch alike.\n"
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
    "GRAFTLAB_MALLOC=default keeps glibc's allocator settings (see benchmarks/RESULTS.md).\n";

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
    "  --nproc    data-parallel: N processes on this machine (c10d, Gloo), each with optim.batch_size images\n"
    "             a step (global batch N x batch_size); rank 0 writes DIR\n"
    "\n"
    "Writes DIR/recipe.json, DIR/metrics.jsonl and DIR/checkpoints/. Ctrl-C stops after the current step\n"
    "and writes a checkpoint. Recipe errors are all listed, with their field, and exit with status 2.\n"
    "\n"
    "Many machines: start one process per rank with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,\n"
    "MASTER_ADDR, MASTER_PORT; GLOO_SOCKET_IFNAME picks the network interface; GRAFTLAB_DIST_TIMEOUT in\n"
    "seconds, default 60, ends every rank when one dies or hangs), e.g. under torchrun --no-python or srun.\n"
    "Every rank needs the data and DIR on a shared path (rank 0 writes it, resume reads it).\n";

const char* kResumeHelp =
    "Usage: graftlab-cli resume DIR [--nproc N] [--verbose]\n"
    "\n"
    "Continues the run in DIR from its newest readable checkpoint to the recipe's train.steps. A data-parallel\n"
    "run resumes with --nproc N (or torchrun's environment): every rank loads the same checkpoint.\n";

const char* kReconstructHelp =
    "Usage: graftlab-cli reconstruct --ckpt FILE --out GRID.png [--images N] [--seed S]\n"
    "\n"
    "Writes MAE's four panels per image (original, masked, reconstruction, reconstruction + visible)\n"
    "for N test images (default 8) chosen, with the mask, from seed S (default 0).\n";

const char* kProbeHelp =
    "Usage: graftlab-cli probe --ckpt FILE --kind gradcos|attention|similarity|reconstruction|all --out DIR\n"
    "                          [--heads CKPT] [--samples N] [--block B] [--temperature T] [--query P] [--head H]\n"
    "                          [--format csv|npz]\n"
    "\n"
    "Runs a probe on the checkpoint's model for N fixed probe images of its training set (evenly spaced, the\n"
    "same the training-time probes use) and writes DIR/<kind>.png, DIR/<kind>.snap and DIR/<kind>.csv, or with\n"
    "--format npz DIR/<kind>.npz instead of the CSV: z = numpy.load('DIR/gradcos.npz'); z['cos'], z['summary'], ...;\n"
    "json.loads(z['meta'].item()) holds the kind, step, labels and notes.\n"
    "  gradcos         per-block cosine between the MIM (MAE) and CL (MoCo v3) loss gradients, per image.\n"
    "                  Needs both heads: an MTL checkpoint has them; otherwise --heads CKPT attaches the\n"
    "                  missing one from another checkpoint of the same architecture, and without it a freshly\n"
    "                  initialised head is attached (said in the output).\n"
    "  attention       class-token attention per block (mean of heads, or --head H) and rollout\n"
    "  similarity      cosine similarity of query patch P (default: centre) to every patch after block B\n"
    "                  (default -1 = last, after the final norm); ConMIM checkpoints add the look-up at T\n"
    "  reconstruction  MAE's four panels (needs an MAE decoder: MAE, MTL, or --heads)\n";

const char* kEvalHelp =
    "Usage: graftlab-cli eval --ckpt FILE [--protocol linear|fewshot|knn|finetune|all] [--pool cls|mean]\n"
    "                         [--max-train N] [--finetune-steps N] [--finetune-lr LR] [--seed S] [--no-cache]\n"
    "\n"
    "Evaluates the checkpoint's encoder on its recipe's dataset and reports top-1 accuracy on the test split:\n"
    "  linear    BatchNorm without affine + Linear on frozen features; lr from {0.1, 0.03, 0.01} chosen on a\n"
    "            held-out tenth of the training split\n"
    "  fewshot   logistic regression on a class-balanced, seeded 1% of the training labels\n"
    "  knn       cosine k-NN, k = 20, votes weighted exp(sim / 0.07)\n"
    "  finetune  whole encoder + linear head, layer-wise lr decay 0.75, N steps (default 300), base lr 1e-2\n"
    "Prints a table and merges the results into eval.json beside the checkpoint. Frozen features are\n"
    "cached beside the checkpoint (--no-cache recomputes them).\n";

const char* kEmbedHelp =
    "Usage: graftlab-cli embed --ckpt FILE --out FEATS.pt [--split train|test] [--pool cls|mean] [--with-inputs]\n"
    "\n"
    "Writes {'features': (N, D), 'labels': (N)} (and with --with-inputs the normalised input images) in\n"
    "torch's format: feats = torch.load('FEATS.pt').\n";

const char* kTableHelp =
    "Usage: graftlab-cli table --out DIR [--recipes mae,mocov3,mtl,cl_to_mim,mim_to_cl,layer_grafted]\n"
    "                          [--budget tiny|small|medium] [--set key=value ...] [--seed S]\n"
    "\n"
    "Trains each recipe into DIR/<recipe> with the same number of steps (the budget; grafted recipes split\n"
    "them over their stages in the recipe's proportions), evaluates every protocol, and writes DIR/table.md\n"
    "and DIR/table.csv in the layout of the papers' Table 1 (Linear, 1%, k-NN, Fine-tuning), plus the MTL\n"
    "run's per-block mean gradient cosine. Budgets: tiny (synthetic-sized smoke run), small, medium.\n";

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

int runTraining(Trainer& trainer, RunDir* dir, const std::string& path, bool tty) {
    ProgressPrinter progress(tty);
    if (dir) trainer.addObserver(dir);
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
        spdlog::info("stopped at step {}; continue with: graftlab-cli resume {}", trainer.step(), path);
    else
        spdlog::info("finished {} steps; run directory {}", trainer.step(), path);
    return kExitOk;
}

// Data-parallel rank of this process when the environment describes one (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT, LOCAL_RANK as torchrun sets them); null for a single process.
std::unique_ptr<DistContext> joinFromEnvironment() {
    DistConfig c;
    try {
        c = distConfigFromEnv();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    if (c.worldSize <= 1) return nullptr;
    spdlog::set_pattern("[%H:%M:%S] [rank " + std::to_string(c.rank) + "] [%^%l%$] %v");
    spdlog::info("joining {} ranks at {}:{} (timeout {} s)", c.worldSize, c.masterAddr, c.masterPort, c.timeout.count() / 1000);
    auto d = std::make_unique<DistContext>(c);
    spdlog::info("rank {} of {} ready (c10d Gloo)", c.rank, c.worldSize);
    return d;
}

// A free TCP port on the loopback interface for a local rendezvous.
int freeLoopbackPort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error(std::string("cannot open a socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
    }
    int port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

std::vector<pid_t> g_children;
void forwardSignal(int sig) {
    for (pid_t p : g_children) ::kill(p, sig);
}

// `--nproc N`: this command again in N processes with torchrun's environment (ranks 0..N-1 on this machine).
// The first rank that fails ends the others; the exit status is that rank's.
int spawnLocalRanks(int argc, char** argv, int n) {
    if (n < 1 || n > 256) throw UsageError("--nproc must be in 1..256");
    std::vector<std::string> args;
    for (int i = 0; i < argc; ++i) {
        std::string s = argv[i];
        if (s == "--nproc") {
            ++i;
            continue;
        }
        if (s.rfind("--nproc=", 0) == 0) continue;
        args.push_back(s);
    }
    const int port = freeLoopbackPort();
    spdlog::info("starting {} local ranks (rendezvous 127.0.0.1:{})", n, port);
    std::signal(SIGINT, forwardSignal);
    std::signal(SIGTERM, forwardSignal);
    for (int r = 0; r < n; ++r) {
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
        if (pid == 0) {
            ::setenv("RANK", std::to_string(r).c_str(), 1);
            ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
            ::setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
            ::setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
            ::setenv("MASTER_ADDR", "127.0.0.1", 1);
            ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
            std::vector<char*> cargs;
            for (auto& a : args) cargs.push_back(a.data());
            cargs.push_back(nullptr);
            ::execv("/proc/self/exe", cargs.data());
            std::perror("execv");
            std::_Exit(127);
        }
        g_children.push_back(pid);
    }
    int status = kExitOk;
    size_t alive = g_children.size();
    bool failed = false;
    while (alive > 0) {
        int ws = 0;
        pid_t pid = ::waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        --alive;
        int rank = int(std::find(g_children.begin(), g_children.end(), pid) - g_children.begin());
        int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (code != 0 && !failed) {
            failed = true;
            status = code;
            spdlog::error("rank {} ended with status {}{}; stopping the other ranks", rank, code,
                          WIFSIGNALED(ws) ? std::string(" (signal ") + strsignal(WTERMSIG(ws)) + ")" : std::string());
            for (pid_t p : g_children)
                if (p != pid) ::kill(p, SIGTERM);
        }
    }
    g_children.clear();
    return status;
}

int cmdTrain(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"recipe", "out", "steps", "set", "stop-at", "nproc"}, {"force", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kTrainHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    setupLogging(a.has("verbose"));
    if (a.has("nproc")) return spawnLocalRanks(argc, argv, int(parseInt("nproc", a.get("nproc"))));
    std::unique_ptr<DistContext> dist = joinFromEnvironment();
    const bool root = !dist || dist->rank() == 0;
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
    if (dist && !a.has("out")) throw UsageError("a data-parallel run needs --out DIR (the same directory on every rank)");
    // Rank 0 alone writes the run directory, its checkpoints and probes.
    std::unique_ptr<RunDir> dir;
    if (root) dir = std::make_unique<RunDir>(out, a.has("force") ? RunDirMode::Force : RunDirMode::Create);
    else recipe.probes.every = 0;
    TrainerOptions opts;
    if (dir) {
        opts.checkpointDir = dir->checkpointDir();
        opts.snapshotDir = dir->snapshotDir();
    }
    opts.dist = dist.get();
    if (a.has("stop-at")) opts.stopAtStep = parseInt("stop-at", a.get("stop-at"));
    Trainer trainer(recipe, opts);
    trainer.prepare();
    if (dir) {
        dir->writeRecipe(recipe);
        spdlog::info("run directory: {}", dir->path());
    }
    return runTraining(trainer, dir.get(), out, root && isatty(STDERR_FILENO));
}

int cmdResume(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"nproc"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kResumeHelp;
        return kExitOk;
    }
    if (a.positional.size() != 1) throw UsageError("resume needs exactly one run directory");
    setupLogging(a.has("verbose"));
    if (a.has("nproc")) return spawnLocalRanks(argc, argv, int(parseInt("nproc", a.get("nproc"))));
    std::unique_ptr<DistContext> dist = joinFromEnvironment();
    const bool root = !dist || dist->rank() == 0;
    const std::string path = a.positional[0];
    // Every rank resumes from the same checkpoint: the newest readable one, chosen before rank 0 writes any.
    std::string ckptDir = (fs::path(path) / "checkpoints").string();
    if (!fs::exists(fs::path(path) / "recipe.json")) throw FileError(path, "holds no run (no recipe.json)");
    bool ok = false;
    Recipe recipe = loadRecipeOrExit((fs::path(path) / "recipe.json").string(), {}, ok);
    if (!ok) return kExitUsage;
    std::string ckpt = latestGoodCheckpoint(ckptDir);
    if (ckpt.empty()) throw FileError(ckptDir, "no readable checkpoint to resume from");
    if (dist) dist->barrier();  // nobody writes a checkpoint before every rank has chosen this one
    std::unique_ptr<RunDir> dir;
    if (root) dir = std::make_unique<RunDir>(path, RunDirMode::Resume);
    else recipe.probes.every = 0;
    logBlasAtStartup();
    TrainerOptions opts;
    if (dir) {
        opts.checkpointDir = dir->checkpointDir();
        opts.snapshotDir = dir->snapshotDir();
    }
    opts.dist = dist.get();
    Trainer trainer(recipe, opts);
    trainer.prepare();
    trainer.resumeFrom(ckpt);
    if (dir) dir->truncateMetricsAfter(trainer.step());
    if (trainer.step() >= recipe.totalSteps()) {
        spdlog::info("{} is already complete ({} of {} steps)", path, trainer.step(), recipe.totalSteps());
        return kExitOk;
    }
    return runTraining(trainer, dir.get(), path, root && isatty(STDERR_FILENO));
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

// Checks that a checkpoint attached for its heads has the probed model's architecture.
void requireSameArchitecture(const LoadedModel& a, const LoadedModel& b) {
    auto ja = a.recipe.toJson(), jb = b.recipe.toJson();
    for (const char* key : {"patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "decoder_embed_dim", "decoder_depth", "decoder_num_heads"})
        if (ja["model"][key] != jb["model"][key])
            throw FileError(b.meta.path, std::string("has another architecture than ") + a.meta.path + ": model." + key + " " +
                                             jb["model"][key].dump() + " vs " + ja["model"][key].dump());
    if (ja["data"]["image_size"] != jb["data"]["image_size"] || a.meta.channels != b.meta.channels)
        throw FileError(b.meta.path, "was trained on other images (data.image_size or channels differ) than " + a.meta.path);
}

int cmdProbe(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "kind", "out", "heads", "samples", "block", "temperature", "query", "head", "format"},
                       {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kProbeHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("probe needs --ckpt FILE");
    if (!a.has("out")) throw UsageError("probe needs --out DIR");
    std::string kind = a.get("kind", "all");
    static const std::set<std::string> kinds = {"gradcos", "attention", "similarity", "reconstruction", "all"};
    if (!kinds.count(kind)) throw UsageError("--kind must be gradcos, attention, similarity, reconstruction or all, got \"" + kind + "\"");
    std::string format = a.get("format", "csv");
    if (format != "csv" && format != "npz") throw UsageError("--format must be csv or npz, got \"" + format + "\"");
    setupLogging(a.has("verbose"));
    LoadedModel model = loadCheckpointModel(a.get("ckpt"));
    Recipe& recipe = model.recipe;
    if (a.has("samples")) {
        int64_t n = parseInt("samples", a.get("samples"));
        if (n < 1 || n > 256) throw UsageError("--samples must be in 1..256");
        recipe.probes.samples = int(n);
    }
    int block = int(parseInt("block", a.get("block", "-1")));
    if (block < -1 || block >= recipe.model.depth)
        throw UsageError("--block must be -1 (last) or below the model's depth " + std::to_string(recipe.model.depth));
    double temperature = recipe.probes.similarityTemperature;
    if (a.has("temperature")) {
        try {
            temperature = std::stod(a.get("temperature"));
        } catch (...) {
            temperature = -1;
        }
        if (!(temperature > 0)) throw UsageError("--temperature must be a positive number");
    }
    ProbeExportOptions exportOptions;
    exportOptions.query = int(parseInt("query", a.get("query", "-1")));
    exportOptions.head = int(parseInt("head", a.get("head", "-1")));
    if (exportOptions.query >= recipe.numPatches())
        throw UsageError("--query must be a patch index below " + std::to_string(recipe.numPatches()));
    if (exportOptions.head >= recipe.model.numHeads)
        throw UsageError("--head must be below the model's " + std::to_string(recipe.model.numHeads) + " heads");

    // The other head: from --heads, else (for the two-loss probes) freshly initialised.
    std::shared_ptr<Objective> other;
    std::string otherName;
    std::optional<LoadedModel> attached;
    if (a.has("heads")) {
        attached = loadCheckpointModel(a.get("heads"));
        requireSameArchitecture(model, *attached);
        other = attached->objective;
        otherName = a.get("heads") + " (" + attached->method + ", step " + std::to_string(attached->meta.step) + ")";
    } else {
        ProbeHeads h = findProbeHeads(*model.objective, nullptr, "");
        bool wantsBoth = kind == "gradcos" || kind == "all";
        bool wantsMim = wantsBoth || kind == "reconstruction";
        std::string missing = (!h.cl && wantsBoth) ? "mocov3" : (!h.mim && wantsMim) ? "mae" : "";
        if (!missing.empty()) {
            torch::manual_seed(uint64_t(recipe.seed) + 77);
            other = makeObjective(recipe, missing, model.meta.channels, model.meta.mean, model.meta.std);
            if (auto* moco = dynamic_cast<MocoV3Impl*>(other.get())) {
                auto enc = model.objective->encoder();
                moco->heads()->syncMomentum(enc);  // keys from the probed encoder itself
            }
            otherName = "freshly initialised " + missing + " (seed " + std::to_string(recipe.seed + 77) +
                        "; attach a trained one with --heads)";
            spdlog::warn("{} has no {} head: attaching a {}", a.get("ckpt"), missing == "mae" ? "MIM" : "CL", otherName);
        }
    }

    Dataset data = loadDataset(recipe.data, Split::Train, uint64_t(recipe.seed));
    if (data.channels() != model.meta.channels)
        throw FileError(a.get("ckpt"), "was trained on " + std::to_string(model.meta.channels) + "-channel images, but its dataset now has " +
                                           std::to_string(data.channels()));
    data.mean = model.meta.mean;  // the checkpoint's normalisation, as in training
    data.std = model.meta.std;
    ProbeRunner runner(recipe, data, torch::kCPU);
    std::error_code ec;
    fs::create_directories(a.get("out"), ec);
    if (ec) throw FileError(a.get("out"), "cannot create directory: " + ec.message());
    std::vector<std::string> selected = kind == "all" ? std::vector<std::string>{"reconstruction", "attention", "similarity", "gradcos"}
                                                  : std::vector<std::string>{kind};
    int produced = 0;
    for (const auto& k : selected) {
        auto t0 = std::chrono::steady_clock::now();
        Snapshot s;
        int64_t step = model.meta.step;
        int stage = model.meta.stage;
        if (k == "gradcos") s = runner.gradcos(step, stage, *model.objective, other.get(), otherName);
        else if (k == "attention") s = runner.attention(step, stage, *model.objective);
        else if (k == "similarity") s = runner.similarity(step, stage, *model.objective, block, temperature);
        else s = runner.reconstruction(step, stage, *model.objective, other.get(), otherName);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!s.unavailable().empty()) {
            std::cerr << "note: " << k << " unavailable for " << a.get("ckpt") << ": " << s.unavailable() << "\n";
            continue;
        }
        std::string stem = (fs::path(a.get("out")) / k).string();
        writeSnapshotFile(stem + ".snap", s);
        std::vector<std::string> csvs;
        if (format == "npz") {
            writeNpz(stem + ".npz", snapshotArrays(s));
            csvs.push_back(stem + ".npz");
        } else {
            csvs = exportSnapshotCsv(s, stem + ".csv");
        }
        std::string png = stem + ".png";
        if (imageIoAvailable()) exportSnapshotPng(s, png, exportOptions);
        else png = "(no PNG: built without OpenCV)";
        ++produced;
        spdlog::info("{}: {} and {} ({:.1f} s)", k, png, csvs.front(), secs);
        if (k == "gradcos") {
            const auto& sum = *s.find("summary");
            auto groups = s.meta["groups"].get<std::vector<std::string>>();
            std::printf("gradient cosine MIM vs CL, step %lld, %lld images\n  MIM head: %s\n  CL head:  %s\n",
                        (long long)step, (long long)s.find("cos")->shape[1], s.meta.value("mim_head", "").c_str(),
                        s.meta.value("cl_head", "").c_str());
            std::printf("  %-10s %8s %8s %8s %8s\n", "group", "mean", "q10", "q90", "neg");
            for (size_t g = 0; g < groups.size(); ++g)
                std::printf("  %-10s %8.3f %8.3f %8.3f %7.0f%%\n", groups[g].c_str(), sum.at({int64_t(g), 0}), sum.at({int64_t(g), 1}),
                            sum.at({int64_t(g), 5}), 100.0 * sum.at({int64_t(g), 6}));
        }
    }
    if (produced == 0) return kExitUsage;
    return kExitOk;
}

void printEvalTable(const EvalReport& rep) {
    std::printf("%s (%s, step %lld) on %s: %lld train / %lld test images, %s pooling\n", rep.checkpoint.c_str(), rep.method.c_str(),
                (long long)rep.step, rep.dataset.c_str(), (long long)rep.trainImages, (long long)rep.testImages, rep.pooling.c_str());
    std::printf("  %-10s %8s  %s\n", "protocol", "top-1", "details");
    for (const auto& r : rep.results) {
        std::string d;
        char val[32];
        std::snprintf(val, sizeof val, "%.1f%%", 100.0 * r.details.value("val_top1", 0.0));
        if (r.protocol == "linear") d = "lr " + r.details["lr"].dump() + " (chosen on a held-out tenth of train: " + val + ")";
        else if (r.protocol == "fewshot") d = r.details["labelled"].dump() + " labelled images" + (r.details.contains("note") ? " (" + r.details["note"].get<std::string>() + ")" : "");
        else if (r.protocol == "knn") d = "k " + r.details["k"].dump() + ", T " + r.details["temperature"].dump();
        else d = r.details["steps"].dump() + " steps, layer decay " + r.details["layer_decay"].dump();
        std::printf("  %-10s %7.2f%%  %s\n", r.protocol.c_str(), 100.0 * r.top1, d.c_str());
    }
}

std::vector<std::string> protocolsFrom(const std::string& arg) {
    if (arg == "all") return {"linear", "fewshot", "knn", "finetune"};
    std::vector<std::string> out;
    std::stringstream ss(arg);
    std::string p;
    while (std::getline(ss, p, ',')) {
        if (p != "linear" && p != "fewshot" && p != "knn" && p != "finetune")
            throw UsageError("--protocol: unknown protocol \"" + p + "\" (linear, fewshot, knn, finetune or all)");
        out.push_back(p);
    }
    return out;
}

int cmdEval(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "protocol", "pool", "max-train", "finetune-steps", "finetune-lr", "seed"}, {"no-cache", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kEvalHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("eval needs --ckpt FILE");
    setupLogging(a.has("verbose"));
    EvalRequest req;
    req.checkpoint = a.get("ckpt");
    req.protocols = protocolsFrom(a.get("protocol", "all"));
    req.pooling = a.get("pool", "cls");
    if (req.pooling != "cls" && req.pooling != "mean") throw UsageError("--pool must be cls or mean");
    req.maxTrain = parseInt("max-train", a.get("max-train", "0"));
    req.finetuneSteps = int(parseInt("finetune-steps", a.get("finetune-steps", "300")));
    if (req.maxTrain < 0 || req.finetuneSteps < 1) throw UsageError("--max-train must be >= 0 and --finetune-steps >= 1");
    req.seed = uint64_t(parseInt("seed", a.get("seed", "0")));
    req.useCache = !a.has("no-cache");
    if (a.has("finetune-lr")) {
        try {
            req.finetuneLr = std::stod(a.get("finetune-lr"));
        } catch (...) {
            req.finetuneLr = -1;
        }
        if (!(req.finetuneLr > 0)) throw UsageError("--finetune-lr must be a positive number");
    }
    EvalReport rep = evaluateCheckpoint(req, [](const std::string& m) { spdlog::info("{}", m); });
    std::string json = writeEvalJson(rep);
    printEvalTable(rep);
    spdlog::info("results merged into {}", json);
    return kExitOk;
}

int cmdEmbed(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "split", "pool"}, {"with-inputs", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kEmbedHelp;
        return kExitOk;
    }
    if (!a.has("ckpt") || !a.has("out")) throw UsageError("embed needs --ckpt FILE and --out FEATS.pt");
    std::string split = a.get("split", "test"), pool = a.get("pool", "cls");
    if (split != "train" && split != "test") throw UsageError("--split must be train or test");
    if (pool != "cls" && pool != "mean") throw UsageError("--pool must be cls or mean");
    setupLogging(a.has("verbose"));
    LoadedModel m = loadCheckpointModel(a.get("ckpt"));
    Dataset d = loadDataset(m.recipe.data, split == "train" ? Split::Train : Split::Test, uint64_t(m.recipe.seed));
    auto feats = extractFeatures(m.objective->encoder(), d, m.meta.mean, m.meta.std, pool);
    std::map<std::string, torch::Tensor> out = {{"features", feats}, {"labels", d.labels}};
    if (a.has("with-inputs")) out["inputs"] = normalizeImages(d.images.to(torch::kFloat32).div(255.0), m.meta.mean, m.meta.std);
    saveForPython(a.get("out"), out);
    spdlog::info("wrote {}: {} {} features of dimension {} ({} pooling)", a.get("out"), feats.size(0), split, feats.size(1), pool);
    return kExitOk;
}

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
    o.threads = int(parseInt("threads", a.get("threads", "0")));
    o.profilePath = a.get("profile");
    if (o.steps < 1 || o.warmup < 0 || o.threads < 0) throw UsageError("--steps must be >= 1, --warmup and --threads >= 0");
    BenchResult res = runBench(r, o, r.name);
    std::printf("bench %s (%s) on %s (%s), %d threads, batch %d, %d steps after %d warm-up, %s allocator\n", res.recipe.c_str(),
                res.method.c_str(), res.device.c_str(), res.precision.c_str(), res.threads, res.batch, res.steps, o.warmup,
                res.allocatorTuned ? "tuned" : "default");
    std::printf("  linear layers       %s\n", res.gemm.c_str());
    std::printf("  attention           %s\n", res.attention.c_str());
    std::printf("  images/s            %10.1f\n", res.imagesPerSecond);
    std::printf("  step (median)       %10.1f ms\n", res.stepMs);
    std::printf("  per step (mean)     forward %.1f ms · backward %.1f ms · optimizer %.1f ms · momentum update %.1f ms\n",
                1000 * res.forwardSeconds / res.steps, 1000 * res.backwardSeconds / res.steps, 1000 * res.optimizerSeconds / res.steps,
                1000 * res.afterStepSeconds / res.steps);
    std::printf("  model GFLOP/image   %10.4f  (forward + backward, analytic)\n", res.gflopPerImage);
    std::printf("  achieved GFLOP/s    %10.2f\n", res.achievedGflops);
    if (res.sgemmGflopsGemm > 0)
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

}  // namespace

int main(int argc, char** argv) {
    graftlab::ensureThreadEnvironment(argv);
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
        if (cmd == "probe") return cmdProbe(argc, argv);
        if (cmd == "eval") return cmdEval(argc, argv);
        if (cmd == "embed") return cmdEmbed(argc, argv);
        if (cmd == "export") return cmdExport(argc, argv);
        if (cmd == "table") return cmdTable(argc, argv);
        if (cmd == "report") return cmdReport(argc, argv);
        if (cmd == "bench") return cmdBench(argc, argv);
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
