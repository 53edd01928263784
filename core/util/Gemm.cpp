#include "util/Gemm.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <vector>

namespace graftlab {
namespace {

using DnnlSgemmFn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                            float, float*, int64_t);
using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

struct Fns {
    DnnlSgemmFn dnnl = nullptr;
    SgemmFn blas = nullptr;
    SetThreadsFn blasSetThreads = nullptr;
    GetThreadsFn blasGetThreads = nullptr;
};

const Fns& fns() {
    static const Fns f = [] {
        Fns r;
        // Both libraries are loaded with LibTorch (libtorch_cpu.so needs libdnnl.so.2 and libblas.so.3 on Debian).
        r.dnnl = reinterpret_cast<DnnlSgemmFn>(::dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
        r.blas = reinterpret_cast<SgemmFn>(::dlsym(RTLD_DEFAULT, "sgemm_"));
        r.blasSetThreads = reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
        r.blasGetThreads = reinterpret_cast<GetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
        return r;
    }();
    return f;
}

std::atomic<GemmBackend>& current() {
    static std::atomic<GemmBackend> b{[] {
        const char* e = std::getenv("GRAFTLAB_GEMM");
        const bool wantBlas = e && std::strcmp(e, "blas") == 0;
        if (fns().dnnl && !wantBlas) return GemmBackend::OneDnn;
        if (fns().blas) return GemmBackend::Blas;
        return fns().dnnl ? GemmBackend::OneDnn : GemmBackend::None;
    }()};
    return b;
}

inline int toInt(int64_t v) {
    TORCH_CHECK(v >= 0 && v <= INT32_MAX, "gemm: dimension ", v, " exceeds the BLAS's 32-bit interface");
    return static_cast<int>(v);
}

}  // namespace

GemmBackend gemmBackend() { return current().load(std::memory_order_relaxed); }
bool gemmAvailable() { return gemmBackend() != GemmBackend::None; }

bool gemmBackendAvailable(GemmBackend b) {
    switch (b) {
    case GemmBackend::OneDnn: return fns().dnnl != nullptr;
    case GemmBackend::Blas: return fns().blas != nullptr;
    case GemmBackend::None: return true;
    }
    return false;
}

void setGemmBackend(GemmBackend b) {
    if (gemmBackendAvailable(b)) current().store(b);
}

const char* gemmBackendName(GemmBackend b) {
    switch (b) {
    case GemmBackend::OneDnn: return "oneDNN sgemm";
    case GemmBackend::Blas: return "BLAS sgemm_";
    case GemmBackend::None: return "none (LibTorch's own)";
    }
    return "?";
}

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (m == 0 || n == 0) return;
    const GemmBackend b = gemmBackend();
    if (b == GemmBackend::OneDnn) {
        int status = fns().dnnl(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        TORCH_CHECK(status == 0, "dnnl_sgemm failed with status ", status, " (m ", m, ", n ", n, ", k ", k, ")");
        return;
    }
    TORCH_CHECK(b == GemmBackend::Blas, "gemm: no sgemm found in this process");
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
    const char ta = transB ? 'T' : 'N', tb = transA ? 'T' : 'N';
    const int M = toInt(n), N = toInt(m), K = toInt(k), la = toInt(ldb), lb = toInt(lda), lc = toInt(ldc);
    fns().blas(&ta, &tb, &M, &N, &K, &alpha, B, &la, A, &lb, &beta, C, &lc);
}

void forEachIndependent(int64_t n, void (*fn)(int64_t, void*), void* arg) {
    const GemmBackend b = gemmBackend();
    const bool parallel = at::get_num_threads() > 1 && !at::in_parallel_region() && n > 1;
    if (parallel && b == GemmBackend::OneDnn) {
        at::parallel_for(0, n, 1, [&](int64_t s, int64_t e) {
            for (int64_t i = s; i < e; ++i) fn(i, arg);
        });
        return;
    }
    if (parallel && b == GemmBackend::Blas && fns().blasSetThreads && fns().blasGetThreads) {
        struct Restore {
            int prev;
            ~Restore() { fns().blasSetThreads(prev); }
        } restore{fns().blasGetThreads()};
        fns().blasSetThreads(1);
        at::parallel_for(0, n, 1, [&](int64_t s, int64_t e) {
            for (int64_t i = s; i < e; ++i) fn(i, arg);
        });
        return;
    }
    for (int64_t i = 0; i < n; ++i) fn(i, arg);
}

bool envSwitchOn(const char* name) {
    const char* e = std::getenv(name);
    return !(e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0));
}

double measureGemmGflops(GemmBackend backend, int n, double seconds) {
    if (backend == GemmBackend::None || !gemmBackendAvailable(backend)) return 0;
    const GemmBackend prev = gemmBackend();
    setGemmBackend(backend);
    std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
    gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);  // warm-up
    int iters = 0;
    double elapsed = 0;
    auto t0 = std::chrono::steady_clock::now();
    do {
        gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
        ++iters;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < seconds);
    setGemmBackend(prev);
    return 2.0 * n * double(n) * n * iters / elapsed / 1e9;
}

}  // namespace graftlab
