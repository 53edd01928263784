#include "base/run/RunLock.h"

#include "base/util/Errors.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/file.h>
#include <unistd.h>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

std::string lockPath(const std::string& dir) { return (fs::path(dir) / RunLock::fileName()).string(); }

std::string ownCommandLine() {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out;
    for (char c : raw) out.push_back(c == '\0' ? ' ' : c);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (out.size() > 300) out = out.substr(0, 300) + "...";
    return out;
}

std::string describeHolder(int fd) {
    char buf[512] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, size_t(n)) : std::string();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? std::string("another process") : s;
}

}  // namespace

RunLock::RunLock(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw FileError(dir, "cannot create the directory: " + ec.message());
    const std::string path = lockPath(dir);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw FileError(dir, std::string("cannot open its writer lock ") + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        std::string who = describeHolder(fd_);
        ::close(fd_);
        fd_ = -1;
        if (e == EWOULDBLOCK)
            throw FileError(dir, "is being written by " + who +
                                     "; one process writes a run at a time: wait for it to end or stop it (Ctrl+C or kill PID: it "
                                     "writes a checkpoint), then run this again");
        throw FileError(dir, std::string("cannot lock ") + path + ": " + std::strerror(e));
    }
    std::string me = "PID " + std::to_string(::getpid()) + ": " + ownCommandLine() + "\n";
    if (::ftruncate(fd_, 0) == 0) {
        ssize_t w = ::pwrite(fd_, me.data(), me.size(), 0);
        (void)w;  // the description is for messages only
    }
}

RunLock::~RunLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

std::string RunLock::holder(const std::string& dir) {
    int fd = ::open(lockPath(dir).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string who;
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) who = describeHolder(fd);
    else ::flock(fd, LOCK_UN);
    ::close(fd);
    return who;
}

}  // namespace graftlab
