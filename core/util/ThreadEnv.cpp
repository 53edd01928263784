#include "util/ThreadEnv.h"

#include <cstdlib>
#include <unistd.h>

namespace graftlab {

void ensureThreadEnvironment(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GRAFTLAB_KEEP_THREAD_ENV")) return;
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::setenv("GRAFTLAB_KEEP_THREAD_ENV", "1", 1);  // never twice
    ::execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the settings as they are
}

}  // namespace graftlab
