#pragma once
// One writer per run directory: an advisory flock(2) on DIR/.graftlab-writer, held for the whole life of whatever
// writes the run (train, resume, a GUI run, a table or sweep job) and released by the kernel when that process ends
// in any way (a kill -9 leaves no stale lock). The file names the holder (PID and command line) for the message a
// second writer gets. Readers (the GUI following a run, report, eval, export) take no lock.
#include <string>

namespace graftlab {

class RunLock {
public:
    // Takes the lock of `dir` (created if missing); FileError naming the directory and the holder when another
    // process writes it.
    explicit RunLock(const std::string& dir);
    ~RunLock();
    RunLock(const RunLock&) = delete;
    RunLock& operator=(const RunLock&) = delete;

    // "PID 1234: graftlab-cli train ..." when another process holds the lock of `dir`; empty when none does.
    static std::string holder(const std::string& dir);
    static const char* fileName() { return ".graftlab-writer"; }

private:
    int fd_ = -1;
};

}  // namespace graftlab
