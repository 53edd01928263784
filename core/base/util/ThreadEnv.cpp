#include "base/util/ThreadEnv.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

namespace graftlab {

bool tuneAllocator() {
    static const bool tuned = [] {
        const char* choice = std::getenv("GRAFTLAB_MALLOC");
        if (choice && std::strcmp(choice, "default") == 0) return false;
        // No private mmap per large block (glibc still falls back to mmap when the heap cannot grow), and the
        // heap is not trimmed: freed activations are reused by the next step instead of faulted in again.
        bool ok = mallopt(M_MMAP_MAX, 0) == 1;
        ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
        return ok;
    }();
    return tuned;
}

bool oneDnnGemmsExpected() {
    // LibTorch (and with it libdnnl.so.2) is loaded with the program, before main(): ask the dynamic linker.
    const char* choice = std::getenv("GRAFTLAB_GEMM");
    if (choice && std::strcmp(choice, "blas") == 0) return false;
    return ::dlsym(RTLD_DEFAULT, "dnnl_sgemm") != nullptr;
}

std::vector<std::pair<std::string, std::string>> threadEnvironmentChanges(bool oneDnnGemms) {
    std::vector<std::pair<std::string, std::string>> changes;
    if (std::getenv("GRAFTLAB_KEEP_THREAD_ENV")) return changes;
    if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
        if (oneDnnGemms) changes.emplace_back("GOMP_SPINCOUNT", "3000");  // a short spin, then sleep
        else changes.emplace_back("OMP_WAIT_POLICY", "PASSIVE");
    }
    // 2^4 cycles (OpenBLAS's minimum): an idle OpenBLAS worker sleeps at once
    if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) changes.emplace_back("OPENBLAS_THREAD_TIMEOUT", "4");
    return changes;
}

void ensureThreadEnvironment(char** argv) {
    tuneAllocator();
    auto changes = threadEnvironmentChanges(oneDnnGemmsExpected());
    if (changes.empty()) return;
    for (const auto& [name, value] : changes) ::setenv(name.c_str(), value.c_str(), 1);
    ::setenv("GRAFTLAB_KEEP_THREAD_ENV", "1", 1);  // never twice
    ::execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the settings as they are
}

}  // namespace graftlab
