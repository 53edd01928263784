// libFuzzer target: the checkpoint loader (header, model tensors by name and shape, the tensor map used for
// grafting) on arbitrary bytes. Only graftlab::FileError may come out of it: a damaged file must be reported
// by name, never crash or escape as a raw torch error.
//
// GRAFTLAB_FUZZ_WRITE_SEED=FILE writes a valid checkpoint of the target's model to FILE and exits (the seed in
// tests/fuzz/corpus/fuzz_checkpoint was made that way).
#include "train/Checkpoint.h"
#include "base/util/Errors.h"

#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {
struct Tiny : torch::nn::Module {
    Tiny() {
        fc = register_module("fc", torch::nn::Linear(4, 3));
        scale = register_buffer("scale", torch::ones({2}));
    }
    torch::nn::Linear fc{nullptr};
    torch::Tensor scale;
};

std::string scratchPath() {
    static std::string p = "/tmp/graftlab-fuzz-ckpt-" + std::to_string(getpid()) + ".ckpt";
    return p;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    torch::set_num_threads(1);
    if (const char* seed = std::getenv("GRAFTLAB_FUZZ_WRITE_SEED")) {
        Tiny model;
        graftlab::CheckpointMeta meta;
        meta.recipe = {{"name", "fuzz"}};
        meta.step = 7;
        meta.dataset = "synthetic";
        meta.mean = {0.5f};
        meta.std = {0.25f};
        graftlab::saveCheckpoint(seed, model, nullptr, meta);
        std::exit(0);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = scratchPath();
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    }
    try {
        graftlab::CheckpointMeta meta = graftlab::readCheckpointMeta(path);
        (void)meta;
    } catch (const graftlab::FileError&) {
    }
    try {
        Tiny model;
        graftlab::loadModelState(path, model, true);
    } catch (const graftlab::FileError&) {
    }
    try {
        auto tensors = graftlab::readModelTensors(path);
        for (auto& [name, t] : tensors) (void)t.numel();
    } catch (const graftlab::FileError&) {
    }
    std::remove(path.c_str());
    return 0;
}
