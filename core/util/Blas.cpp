#include "util/Blas.h"

#include <torch/torch.h>

#include <chrono>
#include <dlfcn.h>
#include <filesystem>

namespace graftlab {

BlasInfo detectBlas() {
    BlasInfo info;
    // Make sure libtorch has loaded its BLAS, then ask the dynamic linker who provides sgemm_.
    (void)torch::ones({2, 2}).mm(torch::ones({2, 2}));
    void* sym = ::dlsym(RTLD_DEFAULT, "sgemm_");
    Dl_info dl{};
    if (sym && ::dladdr(sym, &dl) && dl.dli_fname) {
        std::error_code ec;
        auto real = std::filesystem::canonical(dl.dli_fname, ec);
        info.library = ec ? std::string(dl.dli_fname) : real.string();
    } else {
        info.library = "(no sgemm_ symbol found: LibTorch uses its own kernels)";
        return info;
    }
    const std::string& l = info.library;
    bool fast = l.find("openblas") != std::string::npos || l.find("mkl") != std::string::npos ||
                l.find("blis") != std::string::npos || l.find("atlas") != std::string::npos;
    if (!fast && (l.find("/blas/") != std::string::npos || l.find("libblas") != std::string::npos)) {
        info.isReference = true;
        info.advice =
            "LibTorch is using the slow reference BLAS (~30x slower matmuls). Fix: "
            "sudo apt-get install libopenblas0-pthread  (or: sudo update-alternatives --config "
            "libblas.so.3-x86_64-linux-gnu and pick openblas-pthread)";
    }
    return info;
}

double measureSgemmGflops(int n, double seconds) {
    torch::NoGradGuard ng;
    auto a = torch::randn({n, n});
    auto b = torch::randn({n, n});
    auto c = torch::empty({n, n});
    torch::mm_out(c, a, b);  // warm-up
    int iters = 0;
    auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
        torch::mm_out(c, a, b);
        ++iters;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < seconds);
    return 2.0 * n * n * double(n) * iters / elapsed / 1e9;
}

}  // namespace graftlab
