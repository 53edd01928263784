#pragma once
// StopSignals: the one thread that takes SIGINT/SIGTERM/SIGHUP and the routes it hands them to (CLI, GUI, jobs).
// Ctrl-C, kill, a logout: SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by one thread of their
// own (sigwait), which hands them to whoever registered a route (a CLI training run stops after its step with a
// checkpoint; a supervisor of local jobs passes them on; the GUI closes its window as the user would). No other
// thread is ever interrupted by them: a stop signal delivered to a thread of LibTorch, OpenBLAS or OpenCV in the
// middle of its work corrupted the heap (glibc "corrupted size vs. prev_size", a NaN in a saved weight) in about
// a third of the stops.
#include <functional>

namespace graftlab {

// First thing in main() (the CLI's and the GUI's), before any thread exists and before the process re-executes
// itself (which keeps the signal mask): blocks the stop signals in the calling thread and every thread after it.
void blockStopSignals();
// Starts the thread that takes the stop signals. Without a route a signal ends the process as it would have
// without GraftLab (the default action).
void startStopSignalThread();

// While alive, stop signals go to `onSignal` (called on the signal thread, not in a signal handler: it may lock,
// log and allocate). Routes nest: the newest one alive gets the signal.
// The last stop signal delivered to a route in this process, 0 when none: a job of several parts (a sweep, a
// table) stops between its parts, and a training run that starts after the signal stops before its first step.
int stopSignalReceived();

class StopSignalRoute {
public:
    explicit StopSignalRoute(std::function<void(int)> onSignal);
    ~StopSignalRoute();
    StopSignalRoute(const StopSignalRoute&) = delete;
    StopSignalRoute& operator=(const StopSignalRoute&) = delete;

private:
    std::function<void(int)> previous_;
};

}  // namespace graftlab
