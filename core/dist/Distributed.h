#pragma once
// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore for the rendezvous,
// ProcessGroupGloo for the collectives of CPU tensors and ProcessGroupNCCL for CUDA tensors (where compiled in). Ranks come from the environment like torchrun's (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so torchrun, SLURM wrappers and `graftlab-cli train
// --nproc N` all start it the same way. Every collective waits at most `timeout`: a rank that died or hangs
// ends the others with an error naming the operation.
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace graftlab {

struct DistConfig {
    int rank = 0;
    int worldSize = 1;
    int localRank = 0;
    std::string masterAddr = "127.0.0.1";
    int masterPort = 29500;
    std::chrono::milliseconds timeout{60000};
};

// The configuration the environment describes; nullopt-like (worldSize 1) without WORLD_SIZE. Throws
// std::invalid_argument naming the variable that is malformed.
DistConfig distConfigFromEnv();

class DistContext {
public:
    // Joins the group (blocks until every rank has arrived or the timeout passes; throws naming the peer address).
    explicit DistContext(const DistConfig& c);
    ~DistContext();
    DistContext(const DistContext&) = delete;
    DistContext& operator=(const DistContext&) = delete;

    int rank() const { return cfg_.rank; }
    int worldSize() const { return cfg_.worldSize; }
    const DistConfig& config() const { return cfg_; }

    // Sum of `t` over ranks, in place.
    void allReduceSum(torch::Tensor& t, const char* what);
    // Gradients of `params` averaged over ranks, in place: packed into flat buckets of at most `bucketBytes`
    // (a few collectives per step, not one per parameter). Parameters without a gradient are skipped alike on
    // every rank (they have the same structure).
    void averageGradients(const std::vector<torch::Tensor>& params, size_t bucketBytes = 16u << 20);
    // Rank 0's values of `tensors` everywhere (weights and buffers at the start, so that ranks agree).
    void broadcastFromRoot(const std::vector<torch::Tensor>& tensors);
    // The rows of `t` of every rank, concatenated in rank order (no gradient flows through it).
    torch::Tensor allGather(const torch::Tensor& t);
    void barrier();
    // The group that carries `t`: "nccl" for CUDA tensors where NCCL is compiled in, "gloo" otherwise.
    const char* backendFor(const torch::Tensor& t) const;

private:
    struct Impl;
    DistConfig cfg_;
    std::unique_ptr<Impl> d;
};

// Whether this build has c10d's NCCL group (a CUDA LibTorch >= 2.0 with NCCL's headers; CMake says which).
bool ncclCompiledIn();

// The group of the calling thread while a distributed run trains on it (null otherwise): objectives use it to
// gather the contrastive keys of every rank and to synchronise BatchNorm statistics.
DistContext* activeDist();
void setActiveDist(DistContext* ctx);

// BatchNorm over the batch of every rank (SyncBatchNorm): training-mode batch norm of `x` (N x C) whose mean
// and variance are those of the global batch; gradients flow through the global statistics. Running
// statistics are updated like batch_norm's. Without an active group it is at::batch_norm.
torch::Tensor syncBatchNorm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            torch::Tensor runningMean, torch::Tensor runningVar, bool training, double momentum, double eps);

}  // namespace graftlab
