#include "base/util/StopSignals.h"

#include <atomic>
#include <csignal>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <time.h>

namespace graftlab {

namespace {

std::mutex g_routeMutex;
std::function<void(int)> g_route;
// A stop signal that reached a thread which does not block it (a thread a library started before main() blocked
// them, when the process did not re-execute itself): the handler only records it, the signal thread acts on it.
std::atomic<int> g_pending{0};
static_assert(std::atomic<int>::is_always_lock_free);

std::atomic<int> g_received{0};

void recordSignal(int sig) { g_pending.store(sig); }

sigset_t stopSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    return set;
}

void deliver(int sig) {
    {
        // Called under the lock: a route's owner (a trainer) outlives every call, its destructor waits for it.
        std::lock_guard<std::mutex> lock(g_routeMutex);
        if (g_route) {
            g_received.store(sig);
            g_route(sig);
            return;
        }
    }
    // No route: the default action (the process ends, killed by `sig`), as without GraftLab.
    std::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    std::raise(sig);
}

}  // namespace

void blockStopSignals() {
    sigset_t set = stopSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void startStopSignalThread() {
    blockStopSignals();
    struct sigaction sa {};
    sa.sa_handler = recordSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    std::thread([] {
        const sigset_t set = stopSignals();
        const timespec tick{0, 100'000'000};
        for (;;) {
            siginfo_t info;
            int sig = sigtimedwait(&set, &info, &tick);
            if (sig <= 0) sig = g_pending.exchange(0);
            if (sig > 0) deliver(sig);
        }
    }).detach();
}

int stopSignalReceived() { return g_received.load(); }

StopSignalRoute::StopSignalRoute(std::function<void(int)> onSignal) {
    std::lock_guard<std::mutex> lock(g_routeMutex);
    previous_ = std::move(g_route);
    g_route = std::move(onSignal);
}

StopSignalRoute::~StopSignalRoute() {
    std::lock_guard<std::mutex> lock(g_routeMutex);
    g_route = std::move(previous_);
}

}  // namespace graftlab
