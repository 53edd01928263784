#pragma once
// Row-major single-precision matrix products for the hot paths (linear layers, the attention core), through
// the fastest library the process already has loaded:
//
//   oneDNN's dnnl_sgemm (libdnnl.so.2, which Debian's LibTorch links): JIT kernels for the CPU's widest ISA
//     (AVX-512 here), threaded with OpenMP like LibTorch itself; inside a parallel region it runs on the
//     calling thread alone. On this machine ~330 GFLOP/s on 2 cores for the ViT's shapes.
//   the BLAS's sgemm_ (what LibTorch's own matmul calls: OpenBLAS through libblas.so.3): ~150 GFLOP/s here,
//     where the environment pins OpenBLAS to its Haswell (AVX2) kernels (OPENBLAS_CORETYPE), ~280 without.
//
// GRAFTLAB_GEMM=blas (or setGemmBackend) picks the BLAS for comparisons; neither found: gemmAvailable() is
// false and callers take LibTorch's path.
#include <cstdint>

namespace graftlab {

enum class GemmBackend { None, OneDnn, Blas };

GemmBackend gemmBackend();              // the one in use
bool gemmAvailable();                   // gemmBackend() != None
bool gemmBackendAvailable(GemmBackend); // loaded in this process
void setGemmBackend(GemmBackend);       // for A/B comparisons and tests; ignored if not available
const char* gemmBackendName(GemmBackend);

// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major; op(A) is m x k, op(B) k x n. With transA, A is
// stored k x m (lda >= m); otherwise m x k (lda >= k). Uses every intra-op thread, or only the calling one
// when called inside a parallel region (see forEachIndependent).
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Runs f(i) for i in [0, n), spread over the intra-op threads, each product inside f running on its own thread
// (oneDNN does so by itself; OpenBLAS is set to one thread meanwhile). With a BLAS whose threads cannot be
// controlled it runs in order on the calling thread.
void forEachIndependent(int64_t n, void (*fn)(int64_t, void*), void* arg);
template <class F>
void forEachIndependent(int64_t n, const F& f) {
    forEachIndependent(n, [](int64_t i, void* a) { (*static_cast<const F*>(a))(i); }, const_cast<F*>(&f));
}

// An on/off switch read from the environment once: on unless the variable is "0" or "off".
bool envSwitchOn(const char* name);

// GFLOP/s of an n x n x n product through the given backend with the current thread count.
double measureGemmGflops(GemmBackend backend, int n = 512, double seconds = 0.4);

}  // namespace graftlab
