#pragma once
// Thread settings that must be in place before OpenMP starts (it reads them once, when the program loads).
//
// LibTorch's OpenMP workers spin after every parallel region (OMP_WAIT_POLICY=active by default) while
// OpenBLAS's own threads run the matrix products: on a small machine they fight for the same cores.
// `graftlab-cli bench` on 2 cores measured the headline MAE step at 50 images/s with the default and 69 with
// OMP_WAIT_POLICY=PASSIVE (benchmarks/RESULTS.md). So the programs re-run themselves once with
// OMP_WAIT_POLICY=PASSIVE unless the user chose a policy (or set GRAFTLAB_KEEP_THREAD_ENV=1).
namespace graftlab {

// Call first thing in main(). Returns normally when nothing is to change; otherwise replaces the process
// (execv of /proc/self/exe with the same arguments) and does not return; if that fails it returns.
void ensureThreadEnvironment(char** argv);

}  // namespace graftlab
