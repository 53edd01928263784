// Only built when GRAFTLAB_HAVE_NCCL (see NcclGroup.h): the one file that sees CUDA's and NCCL's headers.
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include "dist/NcclGroup.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace graftlab {

c10::intrusive_ptr<c10d::Backend> makeNcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("nccl", store);
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, size, opts);
}

}  // namespace graftlab
