#include "data/Augment.h"
#include "data/Dataset.h"
#include "base/data/Formats.h"
#include "data/Loader.h"
#include "train/Trainer.h"
#include "base/util/Errors.h"
#include "util/ImageIO.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <torch/torch.h>
#include <zlib.h>

#include <QtTest>

#include <filesystem>
#include <fstream>

using namespace graftlab;
namespace fs = std::filesystem;

namespace {
void writeGz(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
}
std::vector<uint8_t> idxImages(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t pixelBytes) {
    std::vector<uint8_t> b;
    for (uint32_t v : {magic, n, rows, cols})
        for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
    b.resize(b.size() + pixelBytes, 7);
    return b;
}
std::vector<uint8_t> idxLabels(uint32_t magic, uint32_t n, size_t count) {
    std::vector<uint8_t> b;
    for (uint32_t v : {magic, n})
        for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
    for (size_t i = 0; i < count; ++i) b.push_back(uint8_t(i % 10));
    return b;
}
std::string expectFileError(const std::function<void()>& f) {
    try {
        f();
    } catch (const FileError& e) {
        return e.what();
    }
    return "";
}
}  // namespace

class DataTest : public QObject {
    Q_OBJECT
private slots:
    void validIdxLoads() {
        auto dir = test::tempDir("idx-ok");
        writeGz(dir + "/t10k-images-idx3-ubyte.gz", idxImages(0x803, 5, 28, 28, 5 * 784));
        writeGz(dir + "/t10k-labels-idx1-ubyte.gz", idxLabels(0x801, 5, 5));
        Dataset d = loadFashionMnist(dir, Split::Test, 28);
        QCOMPARE(d.size(), int64_t(5));
        QCOMPARE(d.labels[3].item<int64_t>(), int64_t(3));
        QCOMPARE(d.images[0][0][0][0].item<uint8_t>(), uint8_t(7));
        Dataset small = loadFashionMnist(dir, Split::Test, 16);
        QCOMPARE(small.images.size(2), int64_t(16));
        fs::remove_all(dir);
    }

    void truncatedIdxNamesTheFile() {
        auto dir = test::tempDir("idx-trunc");
        std::string img = dir + "/t10k-images-idx3-ubyte.gz";
        writeGz(img, idxImages(0x803, 5, 28, 28, 3 * 784));  // 2 images short
        writeGz(dir + "/t10k-labels-idx1-ubyte.gz", idxLabels(0x801, 5, 5));
        std::string msg = expectFileError([&] { loadFashionMnist(dir, Split::Test, 28); });
        QVERIFY2(msg.find(img) != std::string::npos && msg.find("truncated") != std::string::npos, msg.c_str());
        // a gzip stream cut in the middle
        auto full = idxImages(0x803, 5, 28, 28, 5 * 784);
        writeGz(img, full);
        auto bytes = std::filesystem::file_size(img);
        std::filesystem::resize_file(img, bytes / 2);
        msg = expectFileError([&] { loadFashionMnist(dir, Split::Test, 28); });
        QVERIFY2(msg.find(img) != std::string::npos, msg.c_str());
        fs::remove_all(dir);
    }

    void wrongMagicNamesTheFile() {
        auto dir = test::tempDir("idx-magic");
        std::string img = dir + "/t10k-images-idx3-ubyte.gz", lbl = dir + "/t10k-labels-idx1-ubyte.gz";
        writeGz(img, idxImages(0x801, 5, 28, 28, 5 * 784));
        writeGz(lbl, idxLabels(0x801, 5, 5));
        std::string msg = expectFileError([&] { loadFashionMnist(dir, Split::Test, 28); });
        QVERIFY2(msg.find(img) != std::string::npos && msg.find("magic") != std::string::npos, msg.c_str());
        writeGz(img, idxImages(0x803, 5, 28, 28, 5 * 784));
        writeGz(lbl, idxLabels(0x803, 5, 5));
        msg = expectFileError([&] { loadFashionMnist(dir, Split::Test, 28); });
        QVERIFY2(msg.find(lbl) != std::string::npos && msg.find("magic") != std::string::npos, msg.c_str());
        writeGz(lbl, idxLabels(0x801, 4, 4));
        msg = expectFileError([&] { loadFashionMnist(dir, Split::Test, 28); });
        QVERIFY2(msg.find(lbl) != std::string::npos && msg.find("4 labels for 5 images") != std::string::npos, msg.c_str());
        fs::remove_all(dir);
    }

    // The torch-free parsers the fuzz targets exercise: gzip members, truncation, a decompression limit, IDX
    // headers whose sizes overflow 32 bits, CIFAR records.
    void formatParsersRejectDamagedBuffers() {
        auto gz = [](const std::vector<uint8_t>& raw) {
            uLongf cap = compressBound(uLong(raw.size())) + 64;
            std::vector<uint8_t> out(cap);
            z_stream zs{};
            deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
            zs.next_in = const_cast<Bytef*>(raw.data());
            zs.avail_in = uInt(raw.size());
            zs.next_out = out.data();
            zs.avail_out = uInt(out.size());
            deflate(&zs, Z_FINISH);
            out.resize(zs.total_out);
            deflateEnd(&zs);
            return out;
        };
        std::vector<uint8_t> a(1000, 3), b(500, 4);
        auto ga = gz(a), gb = gz(b);
        QVERIFY(decodeMaybeGz(ga.data(), ga.size(), "a") == a);
        QVERIFY(decodeMaybeGz(a.data(), a.size(), "a") == a);  // not compressed: as it is
        std::vector<uint8_t> both = ga;
        both.insert(both.end(), gb.begin(), gb.end());
        auto ab = decodeMaybeGz(both.data(), both.size(), "ab");
        QCOMPARE(ab.size(), size_t(1500));  // two members, as `cat a.gz b.gz`
        QCOMPARE(int(ab.back()), 4);
        std::string msg = expectFileError([&] { decodeMaybeGz(ga.data(), ga.size() / 2, "half.gz"); });
        QVERIFY2(msg.find("half.gz") != std::string::npos && msg.find("truncated") != std::string::npos, msg.c_str());
        auto bad = ga;
        bad[12] ^= 0xff;
        bad[13] ^= 0xff;
        msg = expectFileError([&] { decodeMaybeGz(bad.data(), bad.size(), "bad.gz"); });
        QVERIFY2(msg.find("bad.gz") != std::string::npos, msg.c_str());
        msg = expectFileError([&] { decodeMaybeGz(ga.data(), ga.size(), "bomb.gz", 100); });
        QVERIFY2(msg.find("more than 100 bytes") != std::string::npos, msg.c_str());

        auto img = idxImages(0x803, 2, 3, 4, 24);
        IdxImages parsed = parseIdxImages(img, "img");
        QCOMPARE(parsed.count, 2u);
        QCOMPARE(parsed.pixels.size(), size_t(24));
        msg = expectFileError([&] { parseIdxImages(img, "img", 28, 28); });
        QVERIFY2(msg.find("images are 3x4, expected 28x28") != std::string::npos, msg.c_str());
        // 0xffffffff^3 bytes announced: must be "truncated", not an overflowed size that happens to match
        auto huge = idxImages(0x803, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0);
        msg = expectFileError([&] { parseIdxImages(huge, "huge"); });
        QVERIFY2(msg.find("truncated") != std::string::npos, msg.c_str());
        auto wrap = idxImages(0x803, 0x10000, 0x10000, 1, 0);  // 2^32 pixels: wraps to 0 in 32-bit arithmetic
        msg = expectFileError([&] { parseIdxImages(wrap, "wrap"); });
        QVERIFY2(msg.find("truncated") != std::string::npos, msg.c_str());
        auto lbl = idxLabels(0x801, 3, 3);
        QCOMPARE(parseIdxLabels(lbl, "lbl", 9).size(), size_t(3));
        lbl[9] = 12;
        msg = expectFileError([&] { parseIdxLabels(lbl, "lbl", 9); });
        QVERIFY2(msg.find("label 12 at index 1 is outside 0..9") != std::string::npos, msg.c_str());
        msg = expectFileError([&] { parseIdxLabels(std::vector<uint8_t>(5, 0), "short", 9); });
        QVERIFY2(msg.find("short: truncated: 5 bytes") != std::string::npos, msg.c_str());

        std::vector<uint8_t> cifar(2 * kCifarRecordBytes, 1), pixels, labels;
        appendCifarBatch(cifar, "c", pixels, labels);
        QCOMPARE(labels.size(), size_t(2));
        QCOMPARE(pixels.size(), size_t(2 * 3072));
        cifar[kCifarRecordBytes] = 10;
        msg = expectFileError([&] { appendCifarBatch(cifar, "c", pixels, labels); });
        QVERIFY2(msg.find("record 1 has label 10") != std::string::npos, msg.c_str());
        QCOMPARE(labels.size(), size_t(2));  // nothing appended from a rejected batch
        cifar.pop_back();
        msg = expectFileError([&] { appendCifarBatch(cifar, "c", pixels, labels); });
        QVERIFY2(msg.find("whole number of 3073-byte records") != std::string::npos, msg.c_str());
    }

    void missingDatasetFallsBackOrFails() {
        DataConfig cfg;
        cfg.root = "/nonexistent/graftlab";
        cfg.imageSize = 16;
        cfg.syntheticSize = 40;
        Dataset d = loadDataset(cfg, Split::Train, 0);
        QCOMPARE(d.name, std::string("synthetic"));
        QVERIFY(d.note.find("synthetic") != std::string::npos);
        cfg.fallbackToSynthetic = false;
        std::string msg = expectFileError([&] { loadDataset(cfg, Split::Train, 0); });
        QVERIFY2(msg.find("/nonexistent/graftlab") != std::string::npos, msg.c_str());
    }

    void syntheticIsDeterministicAndBalanced() {
        Dataset a = makeSynthetic(200, 16, 5, Split::Train);
        Dataset b = makeSynthetic(200, 16, 5, Split::Train);
        Dataset c = makeSynthetic(200, 16, 6, Split::Train);
        Dataset t = makeSynthetic(200, 16, 5, Split::Test);
        QVERIFY(torch::equal(a.images, b.images));
        QVERIFY(!torch::equal(a.images, c.images));
        QVERIFY(!torch::equal(a.images, t.images));
        QVERIFY(torch::equal(torch::bincount(a.labels), torch::full({10}, 20, torch::kInt64)));
        QCOMPARE(a.channels(), 1);
        // classes differ on average: mean images of disk and stripes are not alike
        auto f = a.images.to(torch::kFloat32);
        auto m0 = f.index({a.labels == 0}).mean(0), m4 = f.index({a.labels == 4}).mean(0);
        QVERIFY((m0 - m4).abs().mean().item<float>() > 5.0f);
    }

    void loaderIsDeterministicAndSeekable() {
        auto data = std::make_shared<Dataset>(makeSynthetic(64, 16, 1, Split::Train));
        ViewMaker views = [](const torch::Tensor& x, uint64_t seed) {
            std::mt19937_64 rng(seed);
            auto boxes = sampleCrops(x.size(0), 16, 16, 0.2, 1.0, 0.75, 4.0 / 3, 0.5, rng);
            return std::vector<torch::Tensor>{applyCrops(x, boxes)};
        };
        Loader a(data, 8, 42, views), b(data, 8, 42, views);
        QCOMPARE(a.stepsPerEpoch(), int64_t(8));
        std::vector<torch::Tensor> seq;
        for (int i = 0; i < 12; ++i) seq.push_back(a.next().views[0]);
        b.seek(9);
        QVERIFY(torch::equal(b.next().views[0], seq[9]));
        QVERIFY(torch::equal(b.next().views[0], seq[10]));
        // an epoch visits every image once
        std::vector<int64_t> seen;
        for (int s = 0; s < 8; ++s) {
            auto idx = a.indicesForStep(s);
            seen.insert(seen.end(), idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
        }
        std::sort(seen.begin(), seen.end());
        for (int i = 0; i < 64; ++i) QCOMPARE(seen[size_t(i)], int64_t(i));
        // epochs are shuffled differently
        QVERIFY(!torch::equal(a.indicesForStep(0), a.indicesForStep(8)));
    }

    void fullCropIsIdentityAndFlipMirrors() {
        auto x = torch::rand({2, 1, 8, 8});
        std::vector<CropBox> boxes(2);
        boxes[0] = {0, 0, 8, 8, false};
        boxes[1] = {0, 0, 8, 8, true};
        auto y = applyCrops(x, boxes);
        QVERIFY(torch::allclose(y[0], x[0], 1e-5, 1e-5));
        QVERIFY(torch::allclose(y[1], x[1].flip({2}), 1e-5, 1e-5));
        // a crop of the top-left quadrant at 2x: pixel (0,0) of the output lies in source pixel (0,0)
        boxes[0] = {0, 0, 4, 4, false};
        auto z = applyCrops(torch::arange(64, torch::kFloat32).view({1, 1, 8, 8}), {boxes[0]});
        QVERIFY(z[0][0][0][0].item<float>() < 1.0f);
        QVERIFY(std::abs(z[0][0][7][7].item<float>() - 29.25f) < 1e-3f);  // source (3.25, 3.25)
    }

    void cifar10BinaryBatches() {
        auto dir = test::tempDir("cifar");
        auto write = [&](const std::string& name, int records, uint8_t label, size_t cut = 0) {
            std::vector<uint8_t> b;
            for (int r = 0; r < records; ++r) {
                b.push_back(uint8_t((label + r) % 10));
                for (int i = 0; i < 3072; ++i) b.push_back(uint8_t(i < 1024 ? 200 : 10));  // red images
            }
            b.resize(b.size() - cut);
            std::ofstream(dir + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
        };
        for (int i = 1; i <= 5; ++i) write("data_batch_" + std::to_string(i) + ".bin", 4, uint8_t(i));
        write("test_batch.bin", 3, 0);
        Dataset train = loadCifar10(dir, Split::Train, 32);
        QCOMPARE(train.size(), int64_t(20));
        QCOMPARE(train.channels(), 3);
        QCOMPARE(train.images[0][0][5][5].item<uint8_t>(), uint8_t(200));
        QCOMPARE(train.images[0][2][5][5].item<uint8_t>(), uint8_t(10));
        QCOMPARE(loadCifar10(dir, Split::Test, 16).images.size(2), int64_t(16));
        write("test_batch.bin", 3, 0, 100);  // truncated
        std::string msg = expectFileError([&] { loadCifar10(dir, Split::Test, 32); });
        QVERIFY2(msg.find("test_batch.bin") != std::string::npos && msg.find("truncated") != std::string::npos, msg.c_str());
        fs::remove(dir + "/data_batch_3.bin");
        msg = expectFileError([&] { loadCifar10(dir, Split::Train, 32); });
        QVERIFY2(msg.find("data_batch_3.bin") != std::string::npos, msg.c_str());
        fs::remove_all(dir);
    }

    void imageFolderDecodesSkipsAndNamesEmptyClasses() {
        auto dir = test::tempDir("folder");
        for (const char* cls : {"cats", "dogs"}) {
            fs::create_directories(dir + "/" + cls);
            for (int i = 0; i < 10; ++i) {
                auto img = torch::full({20, 30, 3}, std::string(cls) == "cats" ? 50 : 220, torch::kUInt8);
                writeImage(dir + "/" + cls + "/img" + std::to_string(i) + ".png", img);
            }
        }
        std::ofstream(dir + "/dogs/broken.png") << "not a png";
        Dataset train = loadImageFolder(dir, Split::Train, 16);
        Dataset test = loadImageFolder(dir, Split::Test, 16);
        QCOMPARE(train.numClasses, 2);
        QCOMPARE(train.classNames[0], std::string("cats"));
        QCOMPARE(train.size() + test.size(), int64_t(20));  // the broken file is skipped
        QCOMPARE(test.size(), int64_t(2));                   // every 10th image per class
        QVERIFY(train.note.find("skipped") != std::string::npos);
        QCOMPARE(train.images.sizes().vec(), (std::vector<int64_t>{18, 3, 16, 16}));
        QCOMPARE(train.images[0][1][8][8].item<uint8_t>(), uint8_t(50));
        // a 3-channel dataset trains end to end (colour augmentations, patch embedding of 3 channels)
        for (const char* method : {"mocov3", "conmim"}) {
            Recipe r = test::tinyRecipe();
            r.method = method;
            r.data.dataset = "image_folder";
            r.data.root = dir;
            r.optim.batchSize = 8;
            r.train.steps = 2;
            r.moco.hiddenDim = 16;
            r.moco.outDim = 8;
            Trainer t(r);
            QCOMPARE(int(t.run()), int(TrainerState::Finished));
            QCOMPARE(t.trainData().channels(), 3);
        }
        fs::create_directories(dir + "/empty");
        std::string msg = expectFileError([&] { loadImageFolder(dir, Split::Train, 16); });
        QVERIFY2(msg.find(dir + "/empty") != std::string::npos, msg.c_str());
        fs::remove_all(dir);
    }

    void cropSamplingRespectsScale() {
        std::mt19937_64 rng(3);
        auto boxes = sampleCrops(500, 28, 28, 0.2, 1.0, 0.75, 4.0 / 3, 0.5, rng);
        int flips = 0;
        for (const auto& b : boxes) {
            double area = b.width * b.height / (28.0 * 28.0);
            QVERIFY(area >= 0.15 && area <= 1.0);
            QVERIFY(b.left >= 0 && b.top >= 0 && b.left + b.width <= 28 && b.top + b.height <= 28);
            flips += b.flip;
        }
        QVERIFY(flips > 200 && flips < 300);
    }
};
GRAFTLAB_REGISTER_TEST(DataTest);
#include "test_data.moc"
