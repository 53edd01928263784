// Data-parallel ranks: joining the ones torchrun (or the environment) describes, or starting N on this machine.
#include "CliCommon.h"
#include "base/util/StopSignals.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "dist/Distributed.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

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

// The running children; the stop-signal thread reads them (forwardSignal) while this one starts and reaps them.
std::mutex g_childrenMutex;
std::vector<pid_t> g_children;
std::atomic<bool> g_stopping{false};
void forwardSignal(int sig) {
    g_stopping = true;
    std::lock_guard<std::mutex> lock(g_childrenMutex);
    for (pid_t p : g_children) ::kill(p, sig);
}

// `--nproc N`: this command again in N processes with torchrun's environment (ranks 0..N-1 on this machine).

}  // namespace

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
    spdlog::info("rank {} of {} ready (c10d: Gloo{})", c.rank, c.worldSize, ncclCompiledIn() ? ", NCCL for CUDA tensors" : "");
    return d;
}


int runSelfCopies(const std::vector<std::vector<std::string>>& argvs, const std::function<void(int)>& beforeExec,
                  const std::string& what, size_t atOnce) {
    if (atOnce == 0) atOnce = argvs.size();
    g_stopping = false;
    StopSignalRoute route(forwardSignal);
    std::vector<pid_t> pids;  // index: argvs' index
    auto start = [&](size_t i) {
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
        if (pid == 0) {
            if (beforeExec) beforeExec(int(i));
            std::vector<std::string> args = argvs[i];
            std::vector<char*> cargs;
            for (auto& a : args) cargs.push_back(a.data());
            cargs.push_back(nullptr);
            ::execv("/proc/self/exe", cargs.data());
            std::perror("execv");
            std::_Exit(127);
        }
        pids.push_back(pid);
        std::lock_guard<std::mutex> lock(g_childrenMutex);
        g_children.push_back(pid);
    };
    while (pids.size() < std::min(atOnce, argvs.size())) start(pids.size());
    int status = kExitOk;
    size_t alive = pids.size();
    bool failed = false;
    while (alive > 0) {
        int ws = 0;
        pid_t pid = ::waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        --alive;
        {
            std::lock_guard<std::mutex> lock(g_childrenMutex);
            g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end());
        }
        int index = int(std::find(pids.begin(), pids.end(), pid) - pids.begin());
        int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (code != 0 && !failed) {
            failed = true;
            status = code;
            if (!g_stopping)
                spdlog::error("{} {} ended with status {}{}; stopping the other {}s", what, index, code,
                              WIFSIGNALED(ws) ? std::string(" (signal ") + strsignal(WTERMSIG(ws)) + ")" : std::string(), what);
            std::lock_guard<std::mutex> lock(g_childrenMutex);
            for (pid_t p : g_children) ::kill(p, SIGTERM);
        }
        if (!failed && !g_stopping && pids.size() < argvs.size()) {
            start(pids.size());
            ++alive;
        }
    }
    {
        std::lock_guard<std::mutex> lock(g_childrenMutex);
        g_children.clear();
    }
    if (status == kExitOk && g_stopping && pids.size() < argvs.size()) status = kExitFailure;  // stopped before the rest
    return status;
}

namespace {
// This command's arguments less `--name V` / `--name=V`.
std::vector<std::string> argsWithout(int argc, char** argv, const std::string& name) {
    std::vector<std::string> args;
    for (int i = 0; i < argc; ++i) {
        std::string s = argv[i];
        if (s == "--" + name) {
            ++i;
            continue;
        }
        if (s.rfind("--" + name + "=", 0) == 0) continue;
        args.push_back(s);
    }
    return args;
}
}  // namespace

TrainJobs trainJobsOf(const Args& a) {
    TrainJobs j;
    j.jobs = int(parseInt("jobs", a.get("jobs", "1")));
    if (j.jobs < 1 || j.jobs > 64) throw UsageError("--jobs must be in 1..64");
    if (a.has("train-shard")) {  // one of the jobs --jobs starts: "k/runs"
        const std::string v = a.get("train-shard");
        const size_t slash = v.find('/');
        if (slash == std::string::npos) throw UsageError("--train-shard takes k/N");
        j.shard = int(parseInt("train-shard", v.substr(0, slash)));
        j.shards = int(parseInt("train-shard", v.substr(slash + 1)));
        if (j.shards < 1 || j.shard < 0 || j.shard >= j.shards) throw UsageError("--train-shard takes k/N with 0 <= k < N");
        // the jobs share the terminal: each line says whose it is
        spdlog::set_pattern("[%H:%M:%S] [run " + std::to_string(j.shard + 1) + "/" + std::to_string(j.shards) + "] [%^%l%$] %v");
    }
    return j;
}

int trainInJobs(int argc, char** argv, const TrainJobs& jobs, int runs, const std::string& command) {
    if (jobs.jobs <= 1 || jobs.isJob() || runs <= 1) return kExitOk;
    const int n = std::min(jobs.jobs, runs);
    const int threads = std::max(1, int(std::thread::hardware_concurrency()) / n);
    spdlog::info("training {} runs in {} jobs side by side (a job a run, the next as one ends), {} thread{} each", runs, n,
                 threads, threads == 1 ? "" : "s");
    const std::vector<std::string> args = argsWithout(argc, argv, "jobs");
    std::vector<std::vector<std::string>> argvs;
    for (int k = 0; k < runs; ++k) {
        auto v = args;
        v.insert(v.end(), {"--train-shard", std::to_string(k) + "/" + std::to_string(runs), "--set", "threads=" + std::to_string(threads)});
        argvs.push_back(v);
    }
    const int status = runSelfCopies(argvs, nullptr, "job", size_t(n));
    if (status != kExitOk) {
        spdlog::info("a job stopped or failed; run the same command again to continue the {}", command);
        return status == kExitUsage ? kExitUsage : kExitFailure;
    }
    spdlog::info("every run trained; evaluating");
    return kExitOk;
}

int spawnLocalRanks(int argc, char** argv, int n) {
    if (n < 1 || n > 256) throw UsageError("--nproc must be in 1..256");
    const std::vector<std::string> args = argsWithout(argc, argv, "nproc");
    const int port = freeLoopbackPort();
    spdlog::info("starting {} local ranks (rendezvous 127.0.0.1:{})", n, port);
    auto env = [&](int r) {
        ::setenv("RANK", std::to_string(r).c_str(), 1);
        ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
        ::setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
        ::setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
        ::setenv("MASTER_ADDR", "127.0.0.1", 1);
        ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    };
    return runSelfCopies(std::vector<std::vector<std::string>>(size_t(n), args), env, "rank");
}

}  // namespace graftlab::cli
