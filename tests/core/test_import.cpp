// Importing the checkpoints the field publishes: tiny files in each official layout (tests/python/make_checkpoints.py,
// Debian's python3-torch) against reference outputs of a plain-PyTorch forward written from the official code;
// pickles that would run a command; layouts GraftLab's ViT cannot hold; grafting a stage onto an imported model.
#include "TestRegistry.h"
#include "TestUtil.h"
#include "data/Dataset.h"
#include "base/export/Safetensors.h"
#include "import/ImportModel.h"
#include "base/import/TorchFile.h"
#include "methods/Mae.h"
#include "methods/MocoV3.h"
#include "probes/Probes.h"
#include "train/Checkpoint.h"
#include "train/LoadedModel.h"
#include "train/RunSession.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/Sha256.h"

#include <torch/torch.h>

#include <QtTest>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace graftlab;
using namespace graftlab::test;
namespace fs = std::filesystem;

namespace {

torch::Tensor tensorOf(const SafetensorsContent& c, const std::string& name) {
    const RawTensor* t = c.find(name);
    if (!t) throw std::runtime_error("reference " + name + " missing");
    return torch::from_blob(const_cast<char*>(t->bytes.data()), t->shape, torch::kFloat32).clone();
}

std::string importError(const std::string& file, const std::string& out, const ImportOptions& o = {}) {
    try {
        importModel(file, out, o);
    } catch (const FileError& e) {
        return e.what();
    }
    return {};
}

double maxDiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The last block's attention (n, heads, N, N) of an encoder on normalised images.
torch::Tensor lastAttention(VisionTransformer& enc, const torch::Tensor& x) {
    auto attn = enc->blocks[enc->blocks->size() - 1]->as<Block>()->attn;
    attn->recordAttention = true;
    enc->forward(x);
    attn->recordAttention = false;
    return attn->lastAttention;
}

}  // namespace

class ImportTest : public QObject {
    Q_OBJECT
    std::string fx_, evilTarget_;
    SafetensorsContent refs_;

    LoadedModel imported(const std::string& file, const std::vector<std::string>& sets = {}) {
        std::string out = tempDir("import-" + file);
        fs::remove_all(out);
        ImportOptions o;
        o.overrides = sets;
        ImportResult r = importModel(fx_ + "/" + file, out, o);
        return loadCheckpointModel(out);
    }

private slots:
    void initTestCase() {
        fx_ = tempDir("import-fixtures");
        evilTarget_ = fx_ + "/pwned";
        std::string cmd = "/usr/bin/python3 " + sourceDir() + "/tests/python/make_checkpoints.py " + fx_ + " " + evilTarget_ + " > " +
                          fx_ + ".log 2>&1";
        if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
            QSKIP("python3-torch is not installed (packaging/debian-packages.txt lists it)");
        QVERIFY2(std::system(cmd.c_str()) == 0, ("make_checkpoints.py failed: " + readFile(fx_ + ".log")).c_str());
        refs_ = readSafetensors(fx_ + "/refs.safetensors");
    }

    void sha256MatchesPublishedVectors() {
        QCOMPARE(sha256Hex("abc", 3), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        QCOMPARE(sha256Hex("", 0), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        std::string m(1000000, 'a');
        QCOMPARE(sha256Hex(m.data(), m.size()), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    }

    void maeLayoutsMatchTheReferenceForward() {
        torch::NoGradGuard ng;
        auto x = tensorOf(refs_, "images");
        for (const char* file : {"mae_encoder.pth", "mae_visualize.pth", "mae_train.pth"}) {
            LoadedModel m = imported(file, {"model.num_heads=4"});
            auto enc = m.objective->encoder();
            enc->eval();
            double dTokens = maxDiff(enc->forward(x), tensorOf(refs_, "mae.tokens"));
            double dAttn = maxDiff(lastAttention(enc, x), tensorOf(refs_, "mae.attn_last"));
            QVERIFY2(dTokens < 1e-4, (std::string(file) + " tokens differ by " + std::to_string(dTokens)).c_str());
            QVERIFY2(dAttn < 1e-4, (std::string(file) + " attention differs by " + std::to_string(dAttn)).c_str());
            QCOMPARE(m.meta.channels, 3);
            QCOMPARE(m.recipe.data.imageSize, 16);
            QCOMPARE(m.meta.imported["sha256"].get<std::string>().size(), size_t(64));
            bool hasDecoder = std::string(file) != "mae_encoder.pth";
            QCOMPARE(m.meta.imported["parts"]["decoder"].get<bool>(), hasDecoder);
            QCOMPARE(bool(m.objective->heads().mimDecoder), hasDecoder);
            if (!hasDecoder) {
                QVERIFY(m.objective->mimHeadAbsent.find("without an MAE decoder") != std::string::npos);
                continue;
            }
            // The reconstruction for the reference's mask: visible patches ids_keep, the rest in any order after them
            auto keep = tensorOf(refs_, "mae.ids_keep").to(torch::kInt64);
            const int64_t L = 16;
            std::vector<torch::Tensor> shuffles;
            for (int64_t i = 0; i < keep.size(0); ++i) {
                auto rest = torch::ones({L}, torch::kBool);
                rest.index_put_({keep[i]}, false);
                shuffles.push_back(torch::cat({keep[i], torch::arange(L).masked_select(rest)}));
            }
            MaskSample mask;
            auto shuffle = torch::stack(shuffles);
            mask.idsKeep = keep;
            mask.idsRestore = torch::argsort(shuffle, /*dim=*/1, /*descending=*/false);
            auto mae = std::dynamic_pointer_cast<MaeObjective>(m.objective);
            QVERIFY(mae);
            double dPred = maxDiff(mae->forwardWithMask(x, mask).pred, tensorOf(refs_, "mae.pred"));
            QVERIFY2(dPred < 1e-4, (std::string(file) + " reconstruction differs by " + std::to_string(dPred)).c_str());
        }
        // the training checkpoint's args set the loss: norm-pix on, mask ratio 0.75
        LoadedModel train = imported("mae_train.pth", {"model.num_heads=4"});
        QVERIFY(train.recipe.mae.normPixLoss);
        QCOMPARE(train.meta.imported["args"]["epochs"].get<int>(), 800);
        QVERIFY(!imported("mae_visualize.pth", {"model.num_heads=4"}).recipe.mae.normPixLoss);
    }

    void mocoAndLayerGraftedLayoutsMatchTheReferenceForward() {
        torch::NoGradGuard ng;
        auto x = tensorOf(refs_, "moco.images");
        for (const char* file : {"mocov3.pth.tar", "layer_grafted.pth.tar"}) {
            LoadedModel m = imported(file);  // 12 heads from arch "vit_small", as moco-v3's vits.py
            QCOMPARE(m.recipe.model.numHeads, 12);
            QCOMPARE(m.method, std::string("mocov3"));
            auto enc = m.objective->encoder();
            enc->eval();
            auto tokens = enc->forward(x);
            double d = maxDiff(tokens, tensorOf(refs_, "moco.tokens"));
            QVERIFY2(d < 1e-4, (std::string(file) + " tokens differ by " + std::to_string(d)).c_str());
            auto heads = m.objective->heads().clHeads;
            QVERIFY(heads);
            heads->eval();
            auto q = applySequential(heads->predictor, applySequential(heads->projector, tokens.select(1, 0)));
            double dq = maxDiff(q, tensorOf(refs_, "moco.q"));
            QVERIFY2(dq < 1e-4, (std::string(file) + " projector + predictor differ by " + std::to_string(dq)).c_str());
            QVERIFY(!m.objective->heads().mimDecoder);
        }
    }

    void dinoAndTimmLayoutsMatchTheReferenceForward() {
        torch::NoGradGuard ng;
        LoadedModel dino = imported("dino.pth");  // width 192: 3 heads from the ViT table
        QCOMPARE(dino.recipe.model.numHeads, 3);
        auto enc = dino.objective->encoder();
        enc->eval();
        QVERIFY(maxDiff(enc->forward(tensorOf(refs_, "dino.images")), tensorOf(refs_, "dino.tokens")) < 1e-4);
        QVERIFY(maxDiff(lastAttention(enc, tensorOf(refs_, "dino.images")), tensorOf(refs_, "dino.attn_last")) < 1e-4);

        LoadedModel dinoTrain = imported("dino_train.pth");  // the teacher's backbone; arch vit_small = 6 heads in DINO
        QCOMPARE(dinoTrain.recipe.model.numHeads, 6);
        auto dt = dinoTrain.objective->encoder();
        dt->eval();
        QVERIFY(maxDiff(dt->forward(tensorOf(refs_, "dino_s.images")), tensorOf(refs_, "dino_s.tokens")) < 1e-4);
        QVERIFY(dinoTrain.meta.imported["notes"].dump().find("teacher") != std::string::npos);
        auto raw = readTorchFile(fx_ + "/dino_train.pth");  // a numpy scalar read as data
        QVERIFY(raw->root->get("best") && raw->root->get("best")->kind == PickleValue::Kind::Float);
        QCOMPARE(raw->root->get("best")->number, 0.75);

        LoadedModel timm = imported("timm.safetensors");  // no qkv bias, classifier head left out
        auto t = timm.objective->encoder();
        t->eval();
        QVERIFY(maxDiff(t->forward(tensorOf(refs_, "timm.images")), tensorOf(refs_, "timm.tokens")) < 1e-4);
        auto notes = timm.meta.imported["notes"].dump();
        QVERIFY2(notes.find("head.weight") != std::string::npos && notes.find("qkv bias") != std::string::npos, notes.c_str());
    }

    void anotherImageSizeInterpolatesThePositionEmbedding() {
        std::string out = tempDir("import-resized");
        fs::remove_all(out);
        ImportOptions o;
        o.imageSize = 32;  // 2x2 patches of 8 px -> 4x4
        importModel(fx_ + "/dino.pth", out, o);
        LoadedModel m = loadCheckpointModel(out);
        QCOMPARE(m.recipe.data.imageSize, 32);
        auto pos = m.objective->encoder()->pos_embed;
        QCOMPARE(pos.size(1), int64_t(17));
        LoadedModel native = imported("dino.pth");
        auto stored = native.objective->encoder()->pos_embed;
        // the class slot as stored; the grid bicubically resized (timm's resample_abs_pos_embed)
        QVERIFY(maxDiff(pos.slice(1, 0, 1), stored.slice(1, 0, 1)) == 0);
        namespace F = torch::nn::functional;
        auto grid = stored.slice(1, 1).reshape({1, 2, 2, 192}).permute({0, 3, 1, 2});
        auto want = F::interpolate(grid, F::InterpolateFuncOptions().size(std::vector<int64_t>{4, 4}).mode(torch::kBicubic).align_corners(false))
                        .permute({0, 2, 3, 1})
                        .reshape({1, 16, 192});
        QVERIFY(maxDiff(pos.slice(1, 1), want) < 1e-6);
        QVERIFY(m.meta.imported["notes"].dump().find("interpolated") != std::string::npos);
    }

    void headsComeFromTheModelNameThenTheTable() {
        std::string src;
        QCOMPARE(headsFor(384, "vit_small", src, true), 12);  // moco-v3 vits.py
        QVERIFY(src.find("vit_small") != std::string::npos);
        QCOMPARE(headsFor(384, "vit_small", src), 6);         // DINO's and timm's ViT-S
        QCOMPARE(headsFor(384, "", src), 6);  // timm / DeiT ViT-S
        QCOMPARE(headsFor(768, "mae_vit_base_patch16", src), 12);
        QCOMPARE(headsFor(1024, "mae_vit_large_patch16", src), 16);
        QCOMPARE(headsFor(1280, "mae_vit_huge_patch14", src), 16);
        QCOMPARE(headsFor(512, "", src), 8);
        QVERIFY(src.find("width / 64") != std::string::npos);
    }

    void conMimIsRefusedNamingWhatIsMissing() {
        std::string out = tempDir("import-conmim");
        fs::remove_all(out);
        std::string msg = importError(fx_ + "/conmim.pth", out);
        for (const char* part : {"layer scale", "q/v biases", "relative position bias", "conmim.pth", "Nothing was imported"})
            QVERIFY2(msg.find(part) != std::string::npos, msg.c_str());
        QVERIFY(!fs::exists(out));
    }

    void picklesThatWouldRunCodeAreRefusedAndRunNothing() {
        for (const char* file : {"evil_zip.pth", "evil_legacy.pth"}) {
            std::string out = tempDir(std::string("import-") + file);
            fs::remove_all(out);
            std::string msg = importError(fx_ + "/" + file, out);
            QVERIFY2(msg.find("system\"") != std::string::npos && msg.find("refuses the pickled global") != std::string::npos, msg.c_str());
            QVERIFY2(msg.find(file) != std::string::npos, msg.c_str());
            QVERIFY(!fs::exists(evilTarget_));
            QVERIFY(!fs::exists(out));
        }
    }

    void damagedFilesAreNamed() {
        std::string bytes = readFile(fx_ + "/mae_encoder.pth");
        std::string cut = fx_ + "/cut.pth";
        writeFileAtomically(cut, bytes.substr(0, bytes.size() / 2));
        QVERIFY(importError(cut, tempDir("import-cut") + "/m").find("cut.pth") != std::string::npos);
        std::string legacy = readFile(fx_ + "/mae_visualize.pth");
        writeFileAtomically(cut, legacy.substr(0, legacy.size() - 1000));
        std::string msg = importError(cut, tempDir("import-cut2") + "/m");
        QVERIFY2(msg.find("truncated") != std::string::npos, msg.c_str());
        writeFileAtomically(cut, "not a checkpoint at all");
        msg = importError(cut, tempDir("import-cut3") + "/m");
        QVERIFY2(msg.find("not a PyTorch checkpoint") != std::string::npos, msg.c_str());
        // every byte flipped in turn in the pickle of a small file: an error or a file, never a crash
        std::string small = readFile(fx_ + "/mae_visualize.pth");
        for (size_t i = 0; i < 1500 && i < small.size(); i += 7) {
            std::string b = small;
            b[i] = char(b[i] ^ 0x5a);
            try {
                parseTorchFile(FileBytes::hold(b), "flipped");
            } catch (const FileError&) {
            }
        }
    }

    void importNeverWritesIntoARun() {
        std::string out = tempDir("import-into-run");
        writeFileAtomically(out + "/recipe.json", "{}");
        std::string msg = importError(fx_ + "/dino.pth", out);
        QVERIFY2(msg.find("not empty") != std::string::npos, msg.c_str());
        ImportOptions force;
        force.force = true;
        QVERIFY(importError(fx_ + "/dino.pth", out, force).find("not empty") != std::string::npos);  // not an import: kept
        QVERIFY(fs::exists(out + "/recipe.json"));
    }

    void ownImagesLoadAsTheModelExpects() {
        Dataset d = loadImageFiles({fx_ + "/images/colour.png", fx_ + "/images/grey.png"}, 16, 3);
        QCOMPARE(d.images.sizes(), (torch::IntArrayRef{2, 3, 16, 16}));
        // the grey image replicated over the three channels
        QVERIFY(d.images[1][0].equal(d.images[1][1]) && d.images[1][1].equal(d.images[1][2]));
        QVERIFY(!d.images[0][0].equal(d.images[0][1]));
        Dataset g = loadImageFiles({fx_ + "/images/colour.png"}, 8, 1);
        QCOMPARE(g.images.size(1), int64_t(1));
        QCOMPARE(imageFilesIn(fx_ + "/images").size(), size_t(2));
        try {
            loadImageFiles({fx_ + "/mae_encoder.pth"}, 16, 3);
            QFAIL("a checkpoint decoded as an image");
        } catch (const FileError& e) {
            QVERIFY(std::string(e.what()).find("mae_encoder.pth") != std::string::npos);
        }
    }

    void aMocoStageGraftsOntoAnImportedMae() {
        std::string model = tempDir("import-graft-source");
        fs::remove_all(model);
        ImportOptions o;
        o.overrides = {"model.num_heads=4"};
        importModel(fx_ + "/mae_visualize.pth", model, o);
        LoadedModel source = loadCheckpointModel(model);
        // A 3-channel dataset of 16 px images (CIFAR-10's binary format, random pixels)
        std::string cifar = tempDir("import-graft-cifar");
        std::mt19937 rng(1);
        for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
            std::string b;
            for (int r = 0; r < 16; ++r) {
                b.push_back(char(r % 10));
                for (int i = 0; i < 3072; ++i) b.push_back(char(rng() & 0xff));
            }
            writeFileAtomically(cifar + "/" + f, b);
        }
        Recipe r = source.recipe;  // the imported model's architecture
        r.name = "mocov3-on-imported-mae";
        r.method = "mocov3";
        r.data.dataset = "cifar10";
        r.data.root = cifar;
        r.optim.batchSize = 8;
        r.train.steps = 3;
        r.train.checkpointEvery = 3;
        r.probes.every = 0;
        r.moco.hiddenDim = 32;
        r.moco.outDim = 16;
        StageConfig st;
        st.method = "mocov3";
        st.steps = 3;
        st.init = "checkpoint";
        st.checkpoint = model;  // the directory: its checkpoint
        st.blockLr = {0.1, 1.0};
        st.embedLr = 0.1;
        r.stages = {st};
        QVERIFY2(r.validate().empty(), formatIssues(r.validate()).c_str());
        std::string run = tempDir("import-graft-run");
        fs::remove_all(run);
        std::string ckpt = trainAndStopAt(r, run, 3);
        LoadedModel grafted = loadCheckpointModel(ckpt);
        QCOMPARE(grafted.meta.step, int64_t(3));
        // it started from the imported encoder: the position embedding (a buffer, never trained) is the stored one
        auto pos = grafted.objective->encoder()->pos_embed;
        QVERIFY(maxDiff(pos, source.objective->encoder()->pos_embed) == 0);
        // and the momentum encoder too
        auto moco = std::dynamic_pointer_cast<MocoV3Objective>(grafted.objective);
        QVERIFY(moco);
        QVERIFY(maxDiff(moco->mocoHeads()->momentum_encoder->pos_embed, pos) == 0);
        // the blocks trained away from it, but only a little
        auto w0 = source.objective->encoder()->blocks[1]->as<Block>()->mlp->fc1->weight;
        auto w1 = grafted.objective->encoder()->blocks[1]->as<Block>()->mlp->fc1->weight;
        double moved = maxDiff(w0, w1);
        QVERIFY2(moved > 0 && moved < 0.1, std::to_string(moved).c_str());
    }
};

GRAFTLAB_REGISTER_TEST(ImportTest);
#include "test_import.moc"
