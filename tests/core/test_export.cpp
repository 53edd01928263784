// The field's file formats: TensorBoard event files (CRC-32C, record framing, events, a run directory's live log
// and its truncation on resume), safetensors, .npy/.npz and PNG.
#include "TestRegistry.h"
#include "TestUtil.h"
#include "base/export/Npz.h"
#include "base/export/Safetensors.h"
#include "base/export/TensorBoard.h"
#include "base/probes/DepthProfile.h"
#include "train/RunWriter.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/Png.h"
#include "base/util/ZipCheck.h"

#include <zlib.h>

#include <QtTest>

#include <filesystem>
#include <set>

using namespace graftlab;
using namespace graftlab::test;
namespace fs = std::filesystem;

namespace {
std::string bytesOf(std::initializer_list<int> v) {
    std::string s;
    for (int c : v) s.push_back(char(c));
    return s;
}

std::multiset<int64_t> scalarSteps(const std::string& dir, const std::string& tag) {
    std::multiset<int64_t> steps;
    for (const auto& e : TensorBoardLog::readDir(dir))
        for (const auto& [t, v] : e.scalars)
            if (t == tag) steps.insert(e.step);
    return steps;
}
}  // namespace

class ExportTest : public QObject {
    Q_OBJECT
private slots:
    void crc32cMatchesPublishedVectors() {
        // RFC 3720 (iSCSI) appendix B.4 and the usual check value
        QCOMPARE(crc32c("123456789"), 0xE3069283u);
        QCOMPARE(crc32c(std::string(32, '\0')), 0x8A9136AAu);
        QCOMPARE(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
        std::string up, down;
        for (int i = 0; i < 32; ++i) up.push_back(char(i)), down.push_back(char(31 - i));
        QCOMPARE(crc32c(up), 0x46DD794Eu);
        QCOMPARE(crc32c(down), 0x113FDB5Cu);
        QCOMPARE(crc32c(""), 0u);
        // TFRecord's mask: rotate right by 15, add 0xa282ead8
        uint32_t c = crc32c("123456789");
        QCOMPARE(maskedCrc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
    }

    void recordsFrameAndStopAtDamage() {
        std::string a = frameRecord("first"), b = frameRecord(std::string(300, 'x'));
        QCOMPARE(a.size(), size_t(16 + 5));
        // length 5 little-endian, then the masked CRC of those 8 bytes
        QCOMPARE(a.substr(0, 8), bytesOf({5, 0, 0, 0, 0, 0, 0, 0}));
        size_t good = 0;
        auto recs = readRecords(a + b, &good);
        QCOMPARE(recs.size(), size_t(2));
        QCOMPARE(recs[0], std::string("first"));
        QCOMPARE(recs[1], std::string(300, 'x'));
        QCOMPARE(good, a.size() + b.size());
        // a torn tail (killed mid-write) and a flipped payload byte both end the readable part
        recs = readRecords(a + b.substr(0, b.size() - 3), &good);
        QCOMPARE(recs.size(), size_t(1));
        QCOMPARE(good, a.size());
        std::string flipped = a + b;
        flipped[a.size() + 20] ^= 1;
        QCOMPARE(readRecords(flipped).size(), size_t(1));
    }

    void eventsRoundTrip() {
        if (!tensorBoardBuilt()) QSKIP("built without protobuf");
        TensorBoardEvent e;
        e.wallTime = 1234.5;
        e.step = 42;
        e.scalars = {{"loss", 0.25f}, {"lr/x0.1", 1e-4f}};
        e.images.push_back({"probes/gradcos", 2, 1, 3, "PNGDATA"});
        e.texts.emplace_back("recipe", "```json\n{}\n```");
        TensorBoardEvent back = parseEvent(serializeEvent(e));
        QCOMPARE(back.step, int64_t(42));
        QCOMPARE(back.wallTime, 1234.5);
        QCOMPARE(back.scalars.size(), size_t(2));
        QCOMPARE(back.scalars[1].first, std::string("lr/x0.1"));
        QCOMPARE(back.scalars[1].second, 1e-4f);
        QCOMPARE(back.images.size(), size_t(1));
        QCOMPARE(back.images[0].png, std::string("PNGDATA"));
        QCOMPARE(back.images[0].width, 2);
        QCOMPARE(back.texts.size(), size_t(1));
        QCOMPARE(back.texts[0].second, std::string("```json\n{}\n```"));
    }

    void runDirLogsLiveAndResumesWithoutDuplicates() {
        if (!tensorBoardBuilt()) QSKIP("built without protobuf");
        std::string dir = tempDir("tb-rundir");
        auto row = [](int64_t step) {
            MetricsRow r;
            r.step = step;
            r.values = {{"loss", 1.0 / double(step)}, {"lr", 1e-3}};
            return r;
        };
        {
            RunWriter d(dir, RunDirMode::Create);
            d.writeRecipe(tinyRecipe());
            RunInfo info;
            info.recipe = {{"name", "t"}};
            info.totalSteps = 6;
            d.onRunStarted(info);
            for (int64_t s = 1; s <= 6; ++s) d.onMetrics(row(s));
            // live: the rows are in the file while the run goes on
            QCOMPARE(scalarSteps(d.tensorBoardDir(), "loss").size(), size_t(6));
        }
        // resumed from a checkpoint at step 4: steps 5 and 6 are trained again
        {
            RunWriter d(dir, RunDirMode::Resume);
            d.truncateMetricsAfter(4);
            for (int64_t s = 5; s <= 7; ++s) d.onMetrics(row(s));
        }
        auto steps = scalarSteps(dir + "/tensorboard", "loss");
        QCOMPARE(steps, (std::multiset<int64_t>{1, 2, 3, 4, 5, 6, 7}));
        auto events = TensorBoardLog::readDir(dir + "/tensorboard");
        QCOMPARE(events.front().fileVersion, std::string("brain.Event:2"));
        int texts = 0;
        for (const auto& e : events) texts += int(e.texts.size());
        QCOMPARE(texts, 1);
        QCOMPARE(TensorBoardLog::eventFiles(dir + "/tensorboard").size(), size_t(1));
        // a torn last record (a kill mid-write) is cut when the log is opened again
        std::string file = TensorBoardLog::eventFiles(dir + "/tensorboard").front();
        std::string bytes = readFile(file);
        writeFileAtomically(file, bytes + frameRecord("xxxxxxxxxx").substr(0, 9));
        {
            TensorBoardLog log(dir + "/tensorboard");
            QVERIFY(log.enabled());
            log.scalars(8, {{"loss", 0.1}});
        }
        QCOMPARE(scalarSteps(dir + "/tensorboard", "loss").size(), size_t(8));
        // --force replaces the run: no old events
        {
            RunWriter d(dir, RunDirMode::Force);
            d.writeRecipe(tinyRecipe());
        }
        QCOMPARE(scalarSteps(dir + "/tensorboard", "loss").size(), size_t(0));
    }

    void pngDecodesToThePixels() {
        const uint8_t px[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};  // 2 x 2 RGB
        std::string png = encodePng(px, 2, 2, 3);
        int w = 0, h = 0;
        QVERIFY(pngSize(png, w, h));
        QCOMPARE(w, 2);
        QCOMPARE(h, 2);
        // IDAT holds the zlib stream of each row with its filter byte
        size_t at = png.find("IDAT");
        QVERIFY(at != std::string::npos);
        uint32_t len = (uint32_t(uint8_t(png[at - 4])) << 24) | (uint32_t(uint8_t(png[at - 3])) << 16) |
                       (uint32_t(uint8_t(png[at - 2])) << 8) | uint32_t(uint8_t(png[at - 1]));
        std::vector<uint8_t> raw(14);
        uLongf rawLen = raw.size();
        QCOMPARE(uncompress(raw.data(), &rawLen, reinterpret_cast<const Bytef*>(png.data() + at + 4), len), Z_OK);
        QCOMPARE(int(rawLen), 14);
        QCOMPARE(raw[0], uint8_t(0));
        QCOMPARE(raw[7], uint8_t(0));
        QCOMPARE(raw[1], uint8_t(255));
        QCOMPARE(raw[13], uint8_t(30));
        QVERIFY(png.substr(png.size() - 8, 4) == "IEND");
    }

    void safetensorsRoundTripAndRejectsDamage() {
        std::string dir = tempDir("safetensors");
        std::vector<float> w = {1, 2, 3, 4, 5, 6};
        std::vector<int64_t> idx = {7, 8};
        RawTensor a{"blocks.0.attn.qkv.weight", "F32", {2, 3}, std::string(reinterpret_cast<const char*>(w.data()), 24)};
        RawTensor b{"cls_token", "I64", {2}, std::string(reinterpret_cast<const char*>(idx.data()), 16)};
        writeSafetensors(dir + "/m.safetensors", {a, b}, {{"embed_dim", "192"}, {"mean", "[0.286]"}});
        std::string bytes = readFile(dir + "/m.safetensors");
        uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
        QCOMPARE(n % 8, uint64_t(0));
        QCOMPARE(bytes.size(), size_t(8 + n + 40));
        auto c = readSafetensors(dir + "/m.safetensors");
        QCOMPARE(c.metadata.at("embed_dim"), std::string("192"));
        QCOMPARE(c.tensors.size(), size_t(2));
        QCOMPARE(c.find("blocks.0.attn.qkv.weight")->bytes, a.bytes);
        QCOMPARE(c.find("cls_token")->shape, (std::vector<int64_t>{2}));
        // a size that does not match the shape is refused when writing; a truncated file when reading
        RawTensor bad{"x", "F32", {4}, std::string(8, '\0')};
        QVERIFY_THROWS_EXCEPTION(FileError, writeSafetensors(dir + "/bad.safetensors", {bad}, {}));
        writeFileAtomically(dir + "/cut.safetensors", bytes.substr(0, bytes.size() - 4));
        QVERIFY_THROWS_EXCEPTION(FileError, readSafetensors(dir + "/cut.safetensors"));
    }

    void depthProfileAveragesEachPhase() {
        auto gc = [](int64_t step, int stage, float base) {
            Snapshot s;
            s.kind = "gradcos";
            s.step = step;
            s.stage = stage;
            s.meta["groups"] = {"embed", "blocks.0", "encoder"};
            std::vector<float> sum;
            for (int g = 0; g < 3; ++g) sum.insert(sum.end(), {base + 0.1f * float(g), base - 0.2f, 0, 0, 0, base + 0.2f, 0});
            s.arrays.push_back({"summary", {3, 7}, sum});
            s.arrays.push_back({"batch_cos", {3}, {base, base, base}});
            return s;
        };
        Snapshot off;
        off.kind = "gradcos";
        off.meta["unavailable"] = "no CL head";
        // two stages: one phase each; stage 1 averages its two probes (0.1 and 0.3 -> 0.2)
        DepthProfile p = depthProfile({gc(0, 0, 0.5f), off, gc(10, 1, 0.1f), gc(20, 1, 0.3f)});
        QCOMPARE(p.groups, (std::vector<std::string>{"embed", "blocks.0"}));  // without the encoder total
        QCOMPARE(p.phases.size(), size_t(2));
        QCOMPARE(p.phases[1].label, std::string("stage 2, steps 10–20"));
        QCOMPARE(p.phases[1].snapshots, 2);
        QVERIFY(std::abs(p.phases[1].mean[1] - 0.3) < 1e-6);   // blocks.0: (0.1 + 0.3) / 2 + 0.1
        QVERIFY(std::abs(p.phases[1].q10[0] - 0.0) < 1e-6);    // 0.2 - 0.2
        QVERIFY(std::abs(p.phases[1].q90[0] - 0.4) < 1e-6);
        QVERIFY(std::abs(p.phases[1].batch[0] - 0.2) < 1e-6);
        QVERIFY(std::abs(p.phases[0].mean[0] - 0.5) < 1e-6);
        // one stage: up to `phases` equal spans of the probed steps
        DepthProfile q = depthProfile({gc(0, 0, 0), gc(10, 0, 0), gc(20, 0, 0), gc(30, 0, 0)}, 2);
        QCOMPARE(q.phases.size(), size_t(2));
        QCOMPARE(q.phases[0].label, std::string("steps 0–10"));
        QCOMPARE(q.phases[1].label, std::string("steps 20–30"));
        std::string csv = depthProfileCsv(p);
        QVERIFY(csv.rfind("phase,first_step,last_step,probes,group,depth,mean,q10,q90,batch_cos\n", 0) == 0);
        QCOMPARE(std::count(csv.begin(), csv.end(), '\n'), 5L);  // header + 2 phases x 2 groups
    }

    void npzIsAZipOfNpyFiles() {
        std::string dir = tempDir("npz");
        auto f = npyFloat32("cos", {2, 3}, {1, 2, 3, 4, 5, 6});
        std::string npy = npyBytes(f);
        QVERIFY(npy.rfind("\x93NUMPY\x01\x00", 0) == 0);
        size_t headerLen = uint8_t(npy[8]) | (size_t(uint8_t(npy[9])) << 8);
        QCOMPARE((10 + headerLen) % 64, size_t(0));
        QVERIFY(npy.find("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") != std::string::npos);
        QVERIFY(npyBytes(npyInt64("steps", {1}, {5})).find("'shape': (1,)") != std::string::npos);
        auto t = npyText("meta", "{\"kind\":\"gradcos\",\"note\":\"é\"}");
        QCOMPARE(t.descr, std::string("<U29"));  // 29 characters, é one of them
        QCOMPARE(t.bytes.size(), size_t(29 * 4));
        QVERIFY(npyBytes(t).find("'shape': ()") != std::string::npos);
        writeNpz(dir + "/x.npz", {f, t});
        // the zip checker that guards checkpoints accepts it: headers in bounds, CRC-32 of every entry
        std::string zip = readFile(dir + "/x.npz");
        QCOMPARE(verifyZipArchive(zip.data(), zip.size(), dir + "/x.npz"), size_t(2));
        Snapshot s;
        s.kind = "gradcos";
        s.step = 10;
        s.arrays.push_back({"summary", {1, 2}, {0.5f, -0.5f}});
        auto arrays = snapshotArrays(s, "gradcos/000000010/");
        QCOMPARE(arrays.size(), size_t(2));
        QCOMPARE(arrays[0].name, std::string("gradcos/000000010/summary"));
        QCOMPARE(arrays[1].name, std::string("gradcos/000000010/meta"));
    }
};

GRAFTLAB_REGISTER_TEST(ExportTest);
#include "test_export.moc"
