#include "util/ThreadEnv.h"

#include <cstdlib>
#include <cstring>
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

void ensureThreadEnvironment(char** argv) {
    tuneAllocator();
    if (std::getenv("GRAFTLAB_KEEP_THREAD_ENV")) return;
    bool changed = false;
    if (!std::getenv("OMP_WAIT_POLICY")) {
        ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        changed = true;
    }
    if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
        ::setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);  // 2^4 cycles: an idle OpenBLAS worker sleeps at once
        changed = true;
    }
    if (!changed) return;
    ::setenv("GRAFTLAB_KEEP_THREAD_ENV", "1", 1);  // never twice
    ::execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the settings as they are
}

}  // namespace graftlab
