#include "util/Log.h"
#include "util/Blas.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#ifndef GRAFTLAB_VERSION
#define GRAFTLAB_VERSION "0.0.0"
#endif

namespace graftlab {

void setupLogging(bool verbose) {
    static bool done = false;
    if (!done) {
        auto logger = spdlog::stderr_color_mt("graftlab");
        spdlog::set_default_logger(logger);
        done = true;
    }
    spdlog::set_pattern("[%H:%M:%S] [%^%l%$] %v");
    spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

void logBlasAtStartup() {
    BlasInfo b = detectBlas();
    if (b.isReference)
        spdlog::warn("BLAS: {}. {}", b.library, b.advice);
    else
        spdlog::info("BLAS: {}", b.library);
}

const char* versionString() { return GRAFTLAB_VERSION; }

}  // namespace graftlab
