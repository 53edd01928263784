#pragma once
// Thread settings that must be in place before OpenMP and OpenBLAS start (they read them once, when the
// program loads), so the programs re-run themselves once (execv of /proc/self/exe) with them set, unless the
// user set them (or GRAFTLAB_KEEP_THREAD_ENV=1). Measured with `graftlab-cli bench` (benchmarks/RESULTS.md):
//
// - OPENBLAS_THREAD_TIMEOUT=4. After each product OpenBLAS's (pthreads) workers keep polling for the next one
//   with sched_yield for 2^28 cycles (~0.1 s) before they sleep, so during the elementwise work between
//   products (LayerNorm, GELU, softmax, adds, on LibTorch's threads) an OpenBLAS worker took a core's share:
//   `perf` put 13 % of a MoCo v3 step in sched_yield. 2^4 cycles (the minimum) makes an idle worker sleep at
//   once; waking it costs microseconds per multi-millisecond product. MoCo v3 18.1 -> 20.1 images/s, ConMIM
//   42.2 -> 46.0, MAE 129 -> 140.
// - How LibTorch's OpenMP workers wait between parallel regions. By default they spin ~300000 rounds (a few
//   ms) before sleeping. When OpenBLAS runs the products (no oneDNN found, or GRAFTLAB_GEMM=blas; util/Gemm.h)
//   its own threads compute while OpenMP's spin, on the same 2 cores: OMP_WAIT_POLICY=PASSIVE (sleep at
//   once), MAE 50 -> 69 images/s. When oneDNN runs the products they run on those same OpenMP threads, and
//   sleeping after every region costs a futex round trip each time (18 % of a ConMIM step in futex calls;
//   system calls are costly in a VM): MoCo v3 24.7 images/s passive, 36.8 with the full spin. But a full spin
//   is ruinous as soon as another busy process shares the cores (two MAE benchmarks side by side: 63 images/s
//   together with the full spin, 539 passive; `ctest -j 2` 315 s vs 150 s). GOMP_SPINCOUNT=3000 (a short
//   spin, ~0.1 ms, then sleep) keeps most of both: MoCo v3 33.3 alone, the pair 451.
//   Set unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

// What ensureThreadEnvironment would set, given whether the products will run on oneDNN: (name, value)
// pairs, none for a variable the user set, nothing at all under GRAFTLAB_KEEP_THREAD_ENV.
std::vector<std::pair<std::string, std::string>> threadEnvironmentChanges(bool oneDnnGemms);
bool oneDnnGemmsExpected();  // dnnl_sgemm loaded and GRAFTLAB_GEMM is not "blas"

// Call first thing in main(). Returns normally when nothing is to change; otherwise replaces the process
// (execv of /proc/self/exe with the same arguments) and does not return; if that fails it returns.
// Also calls tuneAllocator().
void ensureThreadEnvironment(char** argv);

// Keeps glibc malloc from handing every large tensor buffer back to the kernel when it is freed.
//
// By default glibc serves allocations above a (dynamic, at most 32 MB) threshold with their own mmap and
// unmaps them on free, and trims the heap top beyond 128 KB. A training step allocates and frees the same
// multi-megabyte activations every step, so each step page-faults all of them in again: `graftlab-cli bench`
// on the headline MAE configuration page-faulted ~84k pages a step and spent over half its forward pass in the
// kernel (memory-bound ops such as copy_, add, gelu and fill_ ran 2-4x slower than in a warm heap); MoCo v3,
// whose activations exceed even the largest mmap threshold (32 MB), faulted 830k pages a step. With large
// blocks served from the heap (M_MMAP_MAX = 0; glibc still falls back to mmap when the heap cannot grow) and
// trimming off, freed buffers are reused: MAE 65 -> 124 images/s, MoCo v3 10.7 -> 19.6 (benchmarks/RESULTS.md).
// Peak memory is unchanged; freed memory stays with the process until it exits.
// Idempotent; GRAFTLAB_MALLOC=default leaves glibc's behaviour alone (for comparisons). Returns whether it
// changed anything.
bool tuneAllocator();

}  // namespace graftlab
