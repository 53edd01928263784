#pragma once
// What every graftlab-cli command shares: exit codes, the usage error, option parsing.
#include "base/recipe/Recipe.h"

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace graftlab {
class RunSession;
class DistContext;
}  // namespace graftlab

namespace graftlab::cli {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2;

// A mistake in the command line: printed with a pointer to the command's --help, exit status 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> options;
    bool has(const std::string& k) const { return options.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = {}) const {
        auto it = options.find(k);
        return it == options.end() || it->second.empty() ? def : it->second.back();
    }
};

// Parses --key value / --key=value / --flag from argv[first..]. `flags` take no value; anything else is an error.
Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valued, const std::set<std::string>& flags);
int64_t parseInt(const std::string& opt, const std::string& v);
// --threads N: 0 (all cores) up to base/recipe/Recipe.h maxThreads(); UsageError naming the limit otherwise.
int parseThreads(const std::string& v);
// --ckpt as a checkpoint file: a directory (a run, an imported model) names its newest checkpoint.
std::string checkpointArg(const Args& a);
// "linear,knn" -> {"linear", "knn"}; UsageError naming --protocol for an unknown or empty list.
std::vector<std::string> parseProtocols(const std::string& list);

// A recipe argument is a file path, or the name of a preset (e.g. "mae"); FileError when neither.
std::string resolveRecipe(const std::string& arg);
// Loads and validates a recipe with --set overrides; prints every problem (with its field) when !ok.
Recipe loadRecipeOrExit(const std::string& file, const std::vector<std::string>& sets, bool& ok);

// Trains the session with progress output (a redrawn line on a terminal, log lines otherwise); SIGINT, SIGTERM and
// SIGHUP stop it after the current step with a checkpoint.
int runTraining(RunSession& session, bool tty);

// Data-parallel: this process's rank when the environment describes one (torchrun's RANK, WORLD_SIZE, ...);
// null for a single process. spawnLocalRanks runs this command again in n local processes.
std::unique_ptr<DistContext> joinFromEnvironment();
int spawnLocalRanks(int argc, char** argv, int n);

// `--jobs N` of table and sweep: the parent starts a job (this command again, with `--train-shard k/runs` and
// 1/N of the cores as `threads`) for each of its `runs` runs, N at a time; each job only trains its run; the
// parent then evaluates every run, reusing them. trainJobsOf reads --jobs and --train-shard (a job's own).
struct TrainJobs {
    int jobs = 1;               // --jobs
    int shard = 0, shards = 0;  // --train-shard shard/shards in a job; shards 0 in the parent
    bool isJob() const { return shards > 0; }
};
TrainJobs trainJobsOf(const Args& a);
// In the parent with jobs > 1 and more than one run: trains them all in jobs and returns 0 when every one
// finished, else the status to exit with (the log says to run the same command again). 0 at once otherwise.
int trainInJobs(int argc, char** argv, const TrainJobs& jobs, int runs, const std::string& command);
// Runs this program again once per argument list (argvs[i], argv[0] first), `atOnce` at a time (0: all at once),
// the next as soon as one ends; `beforeExec(i)` runs in child i before it starts (its environment). SIGINT /
// SIGTERM are passed on to the running children and start no more; when one fails the others are stopped
// (SIGTERM: each writes a checkpoint). Returns 0 when all ran and succeeded, else the first failing child's
// status (1 when stopped before all had run); `what` names a child in the log ("rank", "job").
int runSelfCopies(const std::vector<std::vector<std::string>>& argvs, const std::function<void(int)>& beforeExec,
                  const std::string& what, size_t atOnce = 0);

// The commands, one file each (TrainCommands, ProbeCommands, EvalCommands, TableCommand, ToolCommands,
// ExportCommand).
int cmdTrain(int argc, char** argv);
int cmdResume(int argc, char** argv);
int cmdReconstruct(int argc, char** argv);
int cmdProbe(int argc, char** argv);
int cmdEval(int argc, char** argv);
int cmdEmbed(int argc, char** argv);
int cmdTable(int argc, char** argv);
int cmdSweep(int argc, char** argv);
int cmdRecipe(int argc, char** argv);
int cmdBench(int argc, char** argv);
int cmdExport(int argc, char** argv);
int cmdReport(int argc, char** argv);
int cmdImport(int argc, char** argv);

}  // namespace graftlab::cli
