#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace graftlab {
namespace fs = std::filesystem;

namespace {
fs::path parentOf(const std::string& path) {
    fs::path target(path);
    return target.has_parent_path() ? target.parent_path() : fs::path(".");
}
}  // namespace

std::string tempPathFor(const std::string& path) {
    return (parentOf(path) / ("." + fs::path(path).filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
}

void commitTempFile(const std::string& tmp, const std::string& path) {
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw FileError(path, std::string("fsync failed: ") + std::strerror(e));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw FileError(path, std::string("rename failed: ") + std::strerror(e));
    }
    int dfd = ::open(parentOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void writeFileAtomically(const std::string& path, std::string_view data) {
    std::string tmp = tempPathFor(path);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw FileError(path, std::string("cannot create file: ") + std::strerror(errno));
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw FileError(path, std::string("write failed: ") + std::strerror(e));
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw FileError(path, std::string("fsync failed: ") + std::strerror(e));
    }
    ::close(fd);
    commitTempFile(tmp, path);  // fsync again (cheap: nothing left to write), rename, fsync of the directory
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FileError(path, std::string("cannot open file: ") + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw FileError(path, "read failed");
    return ss.str();
}

}  // namespace graftlab
