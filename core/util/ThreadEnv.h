#pragma once
// Thread settings that must be in place before OpenMP starts (it reads them once, when the program loads).
//
// LibTorch's OpenMP workers spin after every parallel region (OMP_WAIT_POLICY=active by default) while
// OpenBLAS's own threads run the matrix products: on a small machine they fight for the same cores.
// `graftlab-cli bench` on 2 cores measured the headline MAE step at 50 images/s with the default and 69 with
// OMP_WAIT_POLICY=PASSIVE (benchmarks/RESULTS.md). So the programs re-run themselves once with
// OMP_WAIT_POLICY=PASSIVE unless the user chose a policy (or set GRAFTLAB_KEEP_THREAD_ENV=1).
//
// The other side of the same fight: after each product OpenBLAS's (pthreads) workers keep polling for the
// next one with sched_yield for 2^28 cycles (~0.1 s) before they sleep, so during the elementwise work between
// products (LayerNorm, GELU, softmax, adds, all on LibTorch's threads) an OpenBLAS worker took a core's share
// too: `perf` put 13 % of a MoCo v3 step in sched_yield. OPENBLAS_THREAD_TIMEOUT=4 (its minimum, 2^4 cycles)
// makes an idle worker sleep at once; waking it costs microseconds per multi-millisecond product. Measured
// with `graftlab-cli bench` (3 steps after 1 warm-up): MoCo v3 18.1 -> 20.1 images/s, ConMIM 42.2 -> 46.0,
// MAE 129 -> 140. Set unless the user set OPENBLAS_THREAD_TIMEOUT, in the same single re-run.
namespace graftlab {

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
