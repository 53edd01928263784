#include "TestUtil.h"
#include "train/Checkpoint.h"
#include "train/Trainer.h"

#include <filesystem>
#include <random>
#include <unistd.h>

namespace graftlab::test {

Recipe tinyRecipe() {
    Recipe r;
    r.name = "tiny";
    r.threads = 2;
    r.device = "cpu";
    r.data.dataset = "synthetic";
    r.data.imageSize = 16;
    r.data.syntheticSize = 256;
    r.model.patchSize = 4;
    r.model.embedDim = 32;
    r.model.depth = 2;
    r.model.numHeads = 2;
    r.model.decoderEmbedDim = 32;
    r.model.decoderDepth = 1;
    r.model.decoderNumHeads = 2;
    r.optim.batchSize = 16;
    r.optim.baseLr = 1e-2;
    r.optim.warmupSteps = 2;
    r.train.steps = 12;
    r.train.logEvery = 2;
    r.train.checkpointEvery = 4;
    return r;
}

void shrinkToTiny(Recipe& r) {
    Recipe t = tinyRecipe();
    r.data = t.data;
    r.threads = t.threads;
    r.model.embedDim = t.model.embedDim;
    r.model.numHeads = t.model.numHeads;
    r.model.decoderEmbedDim = t.model.decoderEmbedDim;
    r.model.decoderDepth = t.model.decoderDepth;
    r.model.decoderNumHeads = t.model.decoderNumHeads;
    r.moco.hiddenDim = 32;
    r.moco.outDim = 16;
    r.optim.batchSize = t.optim.batchSize;
}

std::string tempDir(const std::string& tag) {
    static std::mt19937_64 rng(std::random_device{}());
    auto p = std::filesystem::temp_directory_path() /
             ("graftlab-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 100000));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p.string();
}

std::string sourceDir() { return GRAFTLAB_SOURCE_DIR; }

std::string trainAndStopAt(const Recipe& r, const std::string& dir, int64_t step) {
    TrainerOptions o;
    o.checkpointDir = dir;
    o.stopAtStep = step;
    Trainer t(r, o);
    t.run();
    return latestGoodCheckpoint(dir);
}

}  // namespace graftlab::test
