#pragma once
#include <string>

namespace graftlab {

// Configures spdlog's default logger: "[time] [level] message" to stderr. `verbose` enables debug lines.
void setupLogging(bool verbose = false);

// Logs which BLAS LibTorch resolved and warns, with the fix, when it is the reference BLAS.
void logBlasAtStartup();

const char* versionString();

}  // namespace graftlab
