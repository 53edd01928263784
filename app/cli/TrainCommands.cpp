// graftlab-cli train and resume.
#include "CliCommon.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "dist/Distributed.h"
#include "eval/Table.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/RunSession.h"
#include "train/Trainer.h"

#include <ctime>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kTrainHelp =
    "Usage: graftlab-cli train [--recipe FILE|PRESET] [--out DIR] [--steps N] [--set key=value ...]\n"
    "                          [--force] [--stop-at K] [--verbose]\n"
    "\n"
    "  --recipe   recipe JSON file, or a preset name from resources/recipes (default: mae)\n"
    "  --out      run directory to create (default: runs/<recipe name>-<date-time>)\n"
    "  --steps    train N steps in all: train.steps, or for a staged recipe every stage scaled in proportion\n"
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
    "Usage: graftlab-cli resume DIR [--steps N] [--stop-at K] [--nproc N] [--verbose]\n"
    "\n"
    "Continues the run in DIR from its newest readable checkpoint to the recipe's train.steps. A data-parallel\n"
    "run resumes with --nproc N (or torchrun's environment): every rank loads the same checkpoint.\n"
    "  --steps    run to N steps in all instead: extends a finished run (the last stage of a staged recipe\n"
    "             grows; the learning-rate schedule is recomputed for the new length); recipe.json is updated\n"
    "  --stop-at  stop after K steps in all with a checkpoint, as an interruption would\n";

}  // namespace

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
    const int64_t steps = a.has("steps") ? parseInt("steps", a.get("steps")) : 0;
    if (a.has("steps") && steps < 1) throw UsageError("--steps must be >= 1");
    bool ok = false;
    Recipe recipe = loadRecipeOrExit(file, sets, ok);
    if (!ok) return kExitUsage;
    if (a.has("steps")) {
        if (recipe.stages.empty()) {
            recipe.train.steps = steps;
        } else {
            // A staged recipe's length is its stages': scale them all, keeping their proportions.
            scaleToBudget(recipe, steps);
            std::string parts;
            for (const auto& st : recipe.stages) parts += (parts.empty() ? "" : ", ") + st.name + " " + std::to_string(st.steps);
            spdlog::info("--steps {}: the recipe's stages scaled to {}", steps, parts);
        }
        auto issues = recipe.validate();
        if (!issues.empty()) {
            std::cerr << "error: with --steps " << steps << " recipe " << file << " has " << issues.size() << " problem(s):\n" << formatIssues(issues);
            return kExitUsage;
        }
    }
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
    RunSessionOptions so;
    so.dist = dist.get();
    if (a.has("stop-at")) so.stopAtStep = parseInt("stop-at", a.get("stop-at"));
    RunSession session(recipe, out, a.has("force") ? RunDirMode::Force : RunDirMode::Create, so);
    if (root) spdlog::info("run directory: {}", out);
    return runTraining(session, root && isatty(STDERR_FILENO));
}

int cmdResume(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"nproc", "steps", "stop-at"}, {"verbose", "help"});
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
    std::string ckpt = RunSession::newestCheckpoint(path);
    bool ok = false;
    Recipe recipe = loadRecipeOrExit(RunLayout(path).recipe(), {}, ok);
    if (!ok) return kExitUsage;
    const int64_t at = readCheckpointMeta(ckpt).step;
    bool extended = false;
    if (a.has("steps")) {
        const int64_t steps = parseInt("steps", a.get("steps"));
        if (steps < at) throw UsageError("--steps " + std::to_string(steps) + ": the run is already at step " + std::to_string(at));
        if (recipe.stages.empty()) {
            recipe.train.steps = steps;
        } else {
            auto& last = recipe.stages.back();
            const int64_t lastStart = recipe.totalSteps() - last.steps;
            if (steps <= lastStart)
                throw UsageError("--steps " + std::to_string(steps) + " would end before the last stage, which starts at step " +
                                 std::to_string(lastStart));
            last.steps = steps - lastStart;
            recipe.train.steps = recipe.totalSteps();
        }
        extended = true;
    }
    if (dist) dist->barrier();  // nobody writes a checkpoint before every rank has chosen this one
    logBlasAtStartup();
    RunSessionOptions so;
    so.dist = dist.get();
    if (a.has("stop-at")) so.stopAtStep = parseInt("stop-at", a.get("stop-at"));
    RunSession session(recipe, path, ckpt, extended, so);
    if (extended && root) spdlog::info("{}: extended to {} steps (recipe.json updated)", path, recipe.totalSteps());
    if (session.complete()) {
        spdlog::info("{} is already complete ({} of {} steps)", path, session.trainer().step(), recipe.totalSteps());
        return kExitOk;
    }
    return runTraining(session, root && isatty(STDERR_FILENO));
}

}  // namespace graftlab::cli
