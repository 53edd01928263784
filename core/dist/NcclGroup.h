#pragma once
// c10d's ProcessGroupNCCL for the CUDA tensors of a data-parallel run. Compiled only where the build found a CUDA
// LibTorch >= 2.0 with NCCL's and the CUDA runtime's headers and a test program with this file linked
// (CMakeLists.txt, GRAFTLAB_HAVE_NCCL); everywhere else Gloo carries every tensor.
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace graftlab {

// A ProcessGroupNCCL of `size` ranks over `store` (its keys under the prefix "nccl/", so that it shares the store
// with the Gloo group). NCCL's communicators are made at the first collective, on the device of its tensors.
c10::intrusive_ptr<c10d::Backend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout);

}  // namespace graftlab
