#include "eval/Protocols.h"
#include "eval/EvaluateCheckpoint.h"
#include "train/Trainer.h"
#include "base/util/Errors.h"
#include "base/util/AtomicFile.h"
#include "base/util/Csv.h"
#include "TestRegistry.h"
#include "eval/Sweep.h"
#include "eval/Table.h"
#include "base/run/EvalResults.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/RunSession.h"
#include "TestUtil.h"

#include <torch/torch.h>

#include <QtTest>

#include <filesystem>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>
#include <sstream>

using namespace graftlab;
namespace fs = std::filesystem;

namespace {
// n samples of `classes` classes; features either encode the label (one-hot scaled + noise) or are pure noise.
Features makeFeatures(int64_t n, int classes, bool informative, uint64_t seed) {
    torch::manual_seed(seed);
    auto make = [&](int64_t m) {
        auto labels = torch::randint(classes, {m}, torch::kInt64);
        auto x = torch::randn({m, 16});
        if (informative) x.slice(1, 0, classes) += 4.0 * torch::one_hot(labels, classes).to(torch::kFloat32);
        return std::make_pair(x, labels);
    };
    Features f;
    std::tie(f.train, f.trainLabels) = make(n);
    std::tie(f.test, f.testLabels) = make(n / 4);
    f.numClasses = classes;
    f.pooling = "cls";
    return f;
}

// A tiny recipe trained `steps` steps into a fresh temp dir (probes off); returns the dir.
std::string trainTinyRun(const char* name, int steps) {
    Recipe r = test::tinyRecipe();
    r.train.steps = steps;
    r.probes.every = 0;
    std::string dir = test::tempDir(name);
    TrainerOptions o;
    o.checkpointDir = dir;
    Trainer t(r, o);
    t.prepare();
    t.run();
    return dir;
}
}  // namespace

namespace {
// A preset shrunk to a tiny two-block model without probes (the grafted tables' tests).
Recipe tinyTwoBlockPreset(const std::string& name, std::vector<RecipeIssue>& issues) {
    Recipe r = loadRecipeFile(test::sourceDir() + "/resources/recipes/" + name + ".json", {}, issues);
    test::shrinkToTiny(r);
    r.model.depth = 2;
    for (auto& st : r.stages)
        if (!st.blockLr.empty()) st.blockLr = {0.1, 1.0};
    r.probes.every = 0;
    return r;
}
}  // namespace

class EvalTest : public QObject {
    Q_OBJECT
private slots:
    // eval.json has one reader and one writer (base/run/EvalResults.h): what eval writes, merged protocol by protocol, the
    // report and the Compare view read back; damaged entries are named, the rest still read.
    void evalJsonHasOneReaderAndWriter() {
        auto dir = test::tempDir("evaljson");
        fs::create_directories(dir + "/checkpoints");
        auto report = [&](int64_t step, const std::string& protocol, double top1) {
            EvalReport r;
            r.checkpoint = dir + "/checkpoints/step-" + std::to_string(step) + ".ckpt";
            r.method = "mae";
            r.step = step;
            r.dataset = "synthetic";
            r.pooling = "cls";
            r.testImages = 16;
            r.results.push_back({protocol, top1, {{"k", 20}}});
            return r;
        };
        EvalReport warned = report(10, "linear", 0.5);
        warned.warnings = {"3 of the 16 test images are also in its training split"};
        const std::string path = writeEvalJson(warned);
        QCOMPARE(path, RunLayout(dir).evalJson());
        writeEvalJson(report(10, "knn", 0.25));  // merged into the same entry; its warnings cleared
        writeEvalJson(report(20, "linear", 0.75));
        EvalFile f = EvalFile::read(path);
        QVERIFY(f.problems.empty());
        QCOMPARE(int(f.entries.size()), 2);
        const EvalReport& ten = f.entries[0].second;
        QCOMPARE(f.entries[0].first, std::string("step-10.ckpt"));
        QCOMPARE(int(ten.results.size()), 2);
        QCOMPARE(ten.find("knn")->top1, 0.25);
        QCOMPARE(ten.find("linear")->top1, 0.5);
        QVERIFY(ten.warnings.empty());
        QCOMPARE(f.newest()->second.step, int64_t(20));
        QCOMPARE(f.newest()->second.find("linear")->top1, 0.75);
        // damage: a garbage entry, a protocol without a number, a step of the wrong type
        auto j = nlohmann::json::parse(readFile(path));
        j["junk.ckpt"] = 7;
        j["step-20.ckpt"]["protocols"]["knn"] = {{"top1", "high"}};
        j["step-10.ckpt"]["step"] = "ten";
        writeFileAtomically(path, j.dump());
        f = EvalFile::read(path);
        QCOMPARE(int(f.entries.size()), 2);
        QCOMPARE(int(f.problems.size()), 3);
        QVERIFY(f.problems[0].find("entry \"junk.ckpt\": not a JSON object") != std::string::npos);
        QCOMPARE(f.entries[0].second.step, int64_t(-1));
        QVERIFY(!f.entries[1].second.find("knn"));
        QCOMPARE(f.entries[1].second.find("linear")->top1, 0.75);
        writeFileAtomically(path, "garbage{");
        f = EvalFile::read(path);
        QVERIFY(f.entries.empty());
        QCOMPARE(f.problems.front(), path + ": not JSON, evaluations left out");
        QVERIFY(EvalFile::read(dir + "/nothing.json").problems.empty());
        fs::remove_all(dir);
    }

    void linearProbeReadsLabelsAndNotNoise() {
        LinearProbeOptions o;
        o.epochs = 10;
        auto good = linearProbe(makeFeatures(2000, 10, true, 1), o);
        QVERIFY2(good.top1 > 0.97, std::to_string(good.top1).c_str());
        QVERIFY(good.details.contains("lr") && good.details["sweep"].size() == 3);
        auto noise = linearProbe(makeFeatures(2000, 10, false, 2), o);
        QVERIFY2(noise.top1 < 0.2, std::to_string(noise.top1).c_str());
    }

    void onePercentSubsetIsBalancedExactAndSeeded() {
        torch::manual_seed(0);
        auto labels = torch::randint(10, {12345}, torch::kInt64);
        auto a = balancedSubset(labels, 10, 0.01, 7), b = balancedSubset(labels, 10, 0.01, 7), c = balancedSubset(labels, 10, 0.01, 8);
        QCOMPARE(a.size(), size_t(123));  // round(0.01 * 12345)
        QCOMPARE(a, b);
        QVERIFY(a != c);
        std::vector<int> count(10, 0);
        for (auto i : a) ++count[size_t(labels[i].item<int64_t>())];
        QVERIFY(*std::max_element(count.begin(), count.end()) - *std::min_element(count.begin(), count.end()) <= 1);
        QCOMPARE(std::set<int64_t>(a.begin(), a.end()).size(), a.size());
        // Fashion-MNIST's shape: 60000 images, 6000 per class -> 600, 60 each.
        auto fm = torch::arange(60000, torch::kInt64).remainder(10);
        auto s = balancedSubset(fm, 10, 0.01, 0);
        QCOMPARE(s.size(), size_t(600));
        auto few = fewShot(makeFeatures(3000, 10, true, 3));
        QCOMPARE(few.details["labelled"].get<int64_t>(), int64_t(30));
        QVERIFY2(few.top1 > 0.5, std::to_string(few.top1).c_str());  // 3 labelled images a class; chance is 0.1
    }

    // k-NN as MAE/DINO evaluate: the k = 20 nearest by cosine, votes weighted exp(sim / 0.07). A case built so that
    // k, the weighting and the temperature each change the answer: a test point with 3 very close neighbours of
    // class 1 and 17 less close of class 0 (then 30 far ones of class 2).
    void sweepAxesNameFieldsThatMoveTogether() {
        auto a = parseSweepAxis("optim.base_lr=1e-3,3e-3");
        QCOMPARE(a.key, std::string("optim.base_lr"));
        QCOMPARE(a.fields, (std::vector<std::string>{"optim.base_lr"}));
        QCOMPARE(a.values, (std::vector<std::string>{"1e-3", "3e-3"}));
        auto b = parseSweepAxis("lower:stages.1.lr_mult.embed+stages.1.lr_mult.blocks.0=0,0.1");
        QCOMPARE(b.key, std::string("lower"));
        QCOMPARE(b.fields, (std::vector<std::string>{"stages.1.lr_mult.embed", "stages.1.lr_mult.blocks.0"}));
        QCOMPARE(b.values.size(), size_t(2));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, parseSweepAxis("novalues="));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, parseSweepAxis("=1,2"));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, parseSweepAxis("name:=1,2"));
    }

    void tableBudgetsGrowByFourAndNameTheChoices() {
        // medium, large and xlarge: 4x the optimizer steps each (the "longer budgets" of the README), fine-tuning longer
        QCOMPARE(tableBudget("large").steps, 4 * tableBudget("medium").steps);
        QCOMPARE(tableBudget("xlarge").steps, 4 * tableBudget("large").steps);
        QVERIFY(tableBudget("xlarge").finetuneSteps > tableBudget("large").finetuneSteps);
        QCOMPARE(tableBudget("xlarge").maxTrain, int64_t(0));  // every training image for the frozen protocols
        try {
            tableBudget("huge");
            QFAIL("an unknown budget was accepted");
        } catch (const std::invalid_argument& e) {
            QVERIFY(std::string(e.what()).find("xlarge") != std::string::npos);
            QVERIFY(std::string(e.what()).find("\"huge\"") != std::string::npos);
        }
    }

    // The tests behind a table's verdicts, against values computed by hand (closed forms where Student's t has one,
    // else a numerical integration of its density done apart from this code).
    void tTestsAndHolmMatchHandComputedValues() {
        auto near = [](double a, double b, double tol) { return std::abs(a - b) <= tol; };
        QVERIFY(near(studentTwoSidedP(1.0, 1), 0.5, 1e-12));                      // Cauchy: P(|T| > 1) = 1/2
        for (double t : {0.3, 1.0, 2.5, 7.0})                                       // df = 2: 1 - t / sqrt(2 + t²)
            QVERIFY2(near(studentTwoSidedP(t, 2), 1 - t / std::sqrt(2 + t * t), 1e-12), qPrintable(QString::number(t)));
        QVERIFY(near(studentTwoSidedP(-2.776445105, 4), 0.05, 1e-8));              // the 5 % critical values
        QVERIFY(near(studentTwoSidedP(2.228138852, 10), 0.05, 1e-8));
        QVERIFY(near(studentTwoSidedP(1.959963985, 1e7), 0.05, 1e-6));             // the normal limit
        QCOMPARE(studentTwoSidedP(0.0, 3), 1.0);

        // Paired: differences 0.011, 0.008, -0.001: mean 0.006, sd 0.0062450, se 0.0036056, t = 1.66410, 2 df.
        TTest paired = pairedTTest({0.801, 0.813, 0.798}, {0.790, 0.805, 0.799});
        QVERIFY(paired.valid && paired.paired);
        QCOMPARE(paired.n, size_t(3));
        QVERIFY(near(paired.diff, 0.006, 1e-12));
        QVERIFY(near(paired.se, std::sqrt(3.9e-5 / 3), 1e-12));
        QVERIFY(near(paired.df, 2, 0));
        QVERIFY(near(paired.p, 1 - paired.t / std::sqrt(2 + paired.t * paired.t), 1e-12));
        QVERIFY(near(paired.p, 0.23800, 5e-5));
        // Welch: means 2 and 5.5, se sqrt(1/3 + 5/12) = 0.866025, t = -4.041452, df = 4.959184, p = 0.0100769.
        TTest welch = welchTTest({1, 2, 3}, {4, 5, 6, 7});
        QVERIFY(welch.valid && !welch.paired);
        QVERIFY(near(welch.diff, -3.5, 1e-12));
        QVERIFY(near(welch.se, std::sqrt(0.75), 1e-12));
        QVERIFY(near(welch.df, 4.959183673, 1e-8));
        QVERIFY2(near(welch.p, 0.0100769433, 1e-8), qPrintable(QString::number(welch.p, 'g', 10)));
        // Too few values, or no spread at all.
        QVERIFY(!pairedTTest({0.5}, {0.4}).valid);
        QVERIFY(!welchTTest({0.5, 0.6}, {0.4}).valid);
        QCOMPARE(pairedTTest({0.6, 0.7}, {0.5, 0.6}).p, 0.0);  // the same +0.1 in every seed
        QCOMPARE(pairedTTest({0.6, 0.7}, {0.6, 0.7}).p, 1.0);

        // Holm at 5 %: sorted 0.01 <= 0.05/4, then 0.03 > 0.05/3 stops.
        QCOMPARE(holmRejects({0.01, 0.04, 0.03, 0.2}), (std::vector<bool>{true, false, false, false}));
        QCOMPARE(holmRejects({0.03, 0.01, 0.02}), (std::vector<bool>{true, true, true}));
        QCOMPARE(holmRejects({0.01, NAN}), (std::vector<bool>{true, false}));

        // How a difference is written: points, one decimal, |diff| after the given sign, p to three places or "< 0.001".
        QCOMPARE(describeDifference(paired, "+", false), std::string(" (+0.6 ± 0.4, p = 0.238)"));
        QCOMPARE(describeDifference(welch, "−", true), std::string(" (−350.0 ± 86.6, p = 0.010†)"));
        QCOMPARE(describeDifference(pairedTTest({0.6, 0.7}, {0.5, 0.6}), "+", true), std::string(" (+10.0 ± 0.0, p < 0.001†)"));
    }

    // The verdicts of a table: rows that share their seeds are compared seed by seed (a small difference in every
    // seed is significant although the seeds spread far more than it), others by Welch's test; the count of
    // comparisons is stated and Holm's correction marked.
    void tableTestsPairedOverSeedsAndCountsItsComparisons() {
        auto row = [](const std::string& key, const std::vector<double>& linear, int64_t firstSeed) {
            TableRow r;
            r.key = r.name = key;
            r.steps = 3000;
            r.batch = 64;
            for (size_t s = 0; s < linear.size(); ++s) {
                EvalReport rep;
                rep.method = "mae";
                rep.step = 3000;
                rep.trainImages = 60000;
                rep.results.push_back({"linear", linear[s], {}});
                r.reports.push_back(rep);
                r.runDirs.push_back("/nonexistent/" + key);
                r.seeds.push_back(firstSeed + int64_t(s));
                r.trainSeconds.push_back(600 + 60 * double(s));
            }
            r.trainFlops = 2.5e13;
            return r;
        };
        // A and B: 70/80/90 against 69/79/89.5, +0.8 in every seed (t = 5, p = 0.038, paired; Welch sees nothing).
        // D is A + 5 points in every seed. C ran other seeds: Welch against the rest, nothing significant.
        std::vector<TableRow> rows = {row("A", {0.70, 0.80, 0.90}, 0), row("B", {0.69, 0.79, 0.895}, 0),
                                      row("C", {0.60, 0.80, 0.95}, 10), row("D", {0.75, 0.851, 0.949}, 0)};
        TableRequest req;
        req.seeds = 3;
        req.budget = tableBudget("medium");
        req.protocols = {"linear"};
        req.baselines = false;
        const auto comps = tableComparisons(req, rows);
        QCOMPARE(comps.size(), size_t(6));
        QVERIFY(!welchTTest(rows[0].values("linear"), rows[1].values("linear")).significant());
        const std::string md = tableMarkdown(req, rows);
        QVERIFY2(md.find("| A | 3000 | 11 min | 25 | 80.0 ± 10.0 |") != std::string::npos, md.c_str());  // time, TFLOP
        QVERIFY2(md.find("Tests: 6 comparisons, each two-sided at 5 %; rows that share their seeds are compared seed by seed "
                         "(paired t-test on the per-seed differences, 2 degrees of freedom); rows that do not, by Welch's t-test. "
                         "† marks a difference that also survives Holm's correction over all 6 comparisons.") != std::string::npos,
                 md.c_str());
        // Holm over 6: p < 0.001 and 0.0014 survive (<= 0.05/6, 0.05/5), 0.038 does not (> 0.05/4).
        QVERIFY2(md.find("- Linear: A > B (+0.8 ± 0.2, p = 0.038); D > A (+5.0 ± 0.1, p < 0.001†); D > B (+5.8 ± 0.2, p = 0.001†)\n") !=
                     std::string::npos,
                 md.c_str());
        QVERIFY2(md.find("C >") == std::string::npos && md.find("> C") == std::string::npos, md.c_str());
        rows[0].runDirs[2] = "/runs/lr=1,wd=0.05/A";  // a --out path with a comma: quoted, the columns stay in place
        QVERIFY2(tableSeedsCsv(rows).find("A,mae,0,2,linear,90.0000,3000,720.0000,25000000000000,\"/runs/lr=1,wd=0.05/A\"\n") != std::string::npos,
                 tableSeedsCsv(rows).c_str());
        // Fewer comparisons, fewer corrections: without C, A > B survives Holm (0.038 <= 0.05/1 after the other two).
        rows.erase(rows.begin() + 2);
        QVERIFY2(tableMarkdown(req, rows).find("A > B (+0.8 ± 0.2, p = 0.038†)") != std::string::npos, tableMarkdown(req, rows).c_str());
        // One seed: no test at all, and the table says so.
        req.seeds = 1;
        for (auto& r : rows) {
            r.reports.resize(1);
            r.seeds.resize(1);
        }
        QVERIFY(tableComparisons(req, rows).empty());
        QVERIFY(tableMarkdown(req, rows).find("One seed: no test is possible") != std::string::npos);
        QVERIFY(tableMarkdown(req, rows).find("Between the methods") == std::string::npos);
    }

    // sweep --seeds: each grid point against the best one on every protocol, seed by seed; Holm over all of them.
    void sweepTestsEveryPointAgainstTheBestPairedOverSeeds() {
        SweepRequest req;
        req.axes = {parseSweepAxis("lr:optim.base_lr=a,b,c")};
        req.protocols = {"linear", "knn"};
        req.seeds = 3;
        req.budget = tableBudget("small");
        req.command = "graftlab-cli sweep";
        auto point = [](const std::string& v, const std::vector<double>& linear, const std::vector<double>& knn, int64_t firstSeed) {
            SweepPoint p;
            p.values = {v};
            p.steps = 600;
            p.trainFlops = 1e12;
            for (size_t s = 0; s < linear.size(); ++s) {
                EvalReport rep;
                rep.dataset = "synthetic";
                rep.results.push_back({"linear", linear[s], {}});
                rep.results.push_back({"knn", knn[s], {}});
                p.reports.push_back(rep);
                p.seeds.push_back(firstSeed + int64_t(s));
                p.runDirs.push_back("/nonexistent/" + v);
                p.trainSeconds.push_back(60);
            }
            return p;
        };
        // linear: a is best (80.0); b is 0.8 below in every seed (t = 5, p = 0.038), c 10 below in every seed (p ~ 0).
        // knn: b is best (61.7); a is level (+2, -2, +5: p = 0.50), c 11.7 below (t = 5.75, p = 0.029).
        std::vector<SweepPoint> pts = {point("a", {0.70, 0.80, 0.90}, {0.50, 0.60, 0.70}, 0),
                                       point("b", {0.69, 0.79, 0.895}, {0.52, 0.58, 0.75}, 0),
                                       point("c", {0.60, 0.70, 0.80}, {0.40, 0.50, 0.60}, 0)};
        pts[2].runDirs[1] = "/nonexistent/lr=c,m=\"x\"";  // a run directory of a two-key sweep holds a comma
        const auto comps = sweepComparisons(req, pts);
        QCOMPARE(comps.size(), size_t(4));
        QCOMPARE(comps[0].best, size_t(0));
        QCOMPARE(comps[2].best, size_t(1));
        QVERIFY(std::abs(comps[0].test.p - 0.0377) < 1e-3 && std::abs(comps[3].test.p - 0.0289) < 1e-3);
        const std::string md = sweepMarkdown(req, pts);
        QVERIFY2(md.rfind("| lr | linear | knn | Train time | Train TFLOP |\n|---|---:|---:|---:|---:|\n| a | 80.0 ± 10.0 | 60.0 ± 10.0 | 1.0 min | 1.00 |\n", 0) == 0,
                 md.c_str());
        QVERIFY2(md.find("mean ± sample standard deviation over 3 seeds (0–2;") != std::string::npos, md.c_str());
        QVERIFY2(md.find("2 degrees of freedom), two-sided at 5 %; 4 comparisons;") != std::string::npos, md.c_str());
        // Holm over 4: p ~ 0 survives (<= 0.05/4), 0.029 does not (> 0.05/3), so nothing after it does.
        QVERIFY2(md.find("- linear: highest mean lr=a (80.0 ± 10.0); significantly below it: lr=b (−0.8 ± 0.2, p = 0.038); "
                         "lr=c (−10.0 ± 0.0, p < 0.001†); not told apart from it: none\n") != std::string::npos,
                 md.c_str());
        QVERIFY2(md.find("- knn: highest mean lr=b (61.7 ± 11.9); significantly below it: lr=c (−11.7 ± 2.0, p = 0.029); "
                         "not told apart from it: lr=a\n") != std::string::npos,
                 md.c_str());
        QCOMPARE(sweepCsv(req, pts), std::string("lr,linear,linear_sd,knn,knn_sd\na,80.0,10.0,60.0,10.0\nb,79.2,10.3,61.7,11.9\n"
                                                 "c,70.0,10.0,50.0,10.0\n"));
        const std::string seedsCsv = sweepSeedsCsv(req, pts);
        QVERIFY2(seedsCsv.find("b,2,knn,75.0000,600,60.0,1000000000000,/nonexistent/b\n") != std::string::npos, seedsCsv.c_str());
        // quoted as RFC 4180 (and Python's csv module) read it: a field with a comma or a quote, quotes doubled
        QVERIFY2(seedsCsv.find("c,1,knn,50.0000,600,60.0,1000000000000,\"/nonexistent/lr=c,m=\"\"x\"\"\"\n") != std::string::npos,
                 seedsCsv.c_str());
        QCOMPARE(csvField("plain"), std::string("plain"));
        {
            SweepRequest named = req;  // a --grid name with a comma ("a,b:optim.base_lr=..."): the header keeps its columns
            named.axes = {parseSweepAxis("a,b:optim.base_lr=a,b,c")};
            QVERIFY2(sweepCsv(named, pts).rfind("\"a,b\",linear,", 0) == 0, sweepCsv(named, pts).c_str());
            QVERIFY2(sweepSeedsCsv(named, pts).rfind("\"a,b\",seed,", 0) == 0, sweepSeedsCsv(named, pts).c_str());
        }
        QCOMPARE(csvField("line\nbreak"), std::string("\"line\nbreak\""));
        const std::string svg = sweepSvg(req, pts);  // one key: a line per protocol, mean ± sd shaded
        QVERIFY2(svg.find("Sweep over lr (mean ± sd over 3 seeds)") != std::string::npos && svg.find("<polygon") != std::string::npos,
                 svg.c_str());
        {
            // Two keys: a heat map of linear; the best cell and the one the test cannot tell from it are outlined.
            SweepRequest two = req;
            two.axes = {parseSweepAxis("lr:optim.base_lr=a,b"), parseSweepAxis("m:mae.mask_ratio=x,y")};
            std::vector<SweepPoint> grid = {pts[0], pts[1], pts[2], pts[2]};
            grid[0].values = {"a", "x"};
            grid[1].values = {"a", "y"};
            grid[2].values = {"b", "x"};
            grid[3].values = {"b", "y"};
            grid[1].reports[2].results[0].top1 = 0.93;  // (a, y) now has the highest mean, (a, x) -1, -1, +3 from it: level
            const std::string heat = sweepSvg(two, grid);
            size_t outlined = 0;
            for (size_t at = heat.find("stroke-width=\"3\""); at != std::string::npos; at = heat.find("stroke-width=\"3\"", at + 1)) ++outlined;
            QCOMPARE(outlined, size_t(2));
            QVERIFY2(heat.find("mean over 3 seeds</text>") != std::string::npos &&
                         heat.find("outlined: the best and the points not significantly below it") != std::string::npos,
                     heat.c_str());
        }
        // A point that ran other seeds is not paired with the best: left out of the tests.
        pts[2].seeds = {10, 11, 12};
        QCOMPARE(sweepComparisons(req, pts).size(), size_t(2));
        // One seed: no test, and the sweep says so.
        req.seeds = 1;
        for (auto& p : pts) {
            p.reports.resize(1);
            p.seeds.resize(1);
            p.trainSeconds.resize(1);
            p.runDirs.resize(1);
        }
        QVERIFY(sweepComparisons(req, pts).empty());
        QVERIFY(sweepMarkdown(req, pts).find("One seed: no test is possible") != std::string::npos);
        QCOMPARE(sweepCsv(req, pts), std::string("lr,linear,knn\na,70.0,50.0\nb,69.0,52.0\nc,60.0,40.0\n"));
    }

    // table --graft-steps: the staged recipe does not train its first stage; its next stage starts from the final
    // checkpoint of the table's single-stage run of that method, the same seed's, and trains graftSteps steps.
    void tableGraftsTheSecondStageOntoTheSourceRunOfTheSameSeed() {
        std::vector<RecipeIssue> issues;
        auto preset = [&](const std::string& name) { return tinyTwoBlockPreset(name, issues); };
        TableRequest req;
        req.outDir = test::tempDir("graft-table");
        req.recipes = {{"mim_to_cl", preset("mim_to_cl")}, {"mae", preset("mae")}};  // the graft listed first
        QVERIFY2(issues.empty(), issues.empty() ? "" : issues.front().message.c_str());
        req.budget = tableBudget("tiny");
        req.seeds = 2;
        req.baselines = false;
        req.protocols = {"knn"};
        req.graftSteps = 6;
        const TableTrainFn train = [](RunSession& s) {
            s.run();
            return s.complete();
        };
        TableResult res = runTable(req, train, nullptr);
        QVERIFY(res.complete);
        const TableRow* g = nullptr;
        for (const auto& r : res.rows)
            if (r.key == "mim_to_cl") g = &r;
        QVERIFY(g && g->reports.size() == 2);
        QCOMPARE(g->graftedOnto, std::string("mae"));
        QCOMPARE(g->sourceSteps, req.budget.steps);
        QCOMPARE(g->steps, req.budget.steps + 6);
        for (int s = 0; s < 2; ++s) {
            const std::string dir = req.outDir + "/mim_to_cl-seed" + std::to_string(s);
            std::vector<RecipeIssue> is;
            Recipe stored = loadRecipeFile(RunLayout(dir).recipe(), {}, is);
            QCOMPARE(stored.stages.size(), size_t(1));
            QCOMPARE(stored.stages.front().method, std::string("mocov3"));
            QCOMPARE(stored.stages.front().init, std::string("checkpoint"));
            // this seed's MAE run, finished: the graft starts from its last step
            const std::string source = latestGoodCheckpoint(RunLayout(req.outDir + "/mae-seed" + std::to_string(s)).checkpoints());
            QCOMPARE(stored.stages.front().checkpoint, source);
            QCOMPARE(readCheckpointMeta(source).step, req.budget.steps);
            QCOMPARE(readCheckpointMeta(latestGoodCheckpoint(RunLayout(dir).checkpoints())).step, int64_t(6));
        }
        QVERIFY2(res.markdown.find("| MIM → CL | 20 + 6 |") != std::string::npos, res.markdown.c_str());
        QVERIFY2(res.markdown.find("from the MAE row's final checkpoint of the same seed (20 steps) and trains 6 more") != std::string::npos,
                 res.markdown.c_str());
        // a grafted table does not split its budget over the stages, and does not say so
        QVERIFY2(res.markdown.find("split them over their stages") == std::string::npos, res.markdown.c_str());
        QVERIFY2(res.csv.find("\nmim_to_cl,mocov3,0,26,16,2,") != std::string::npos && res.csv.find(",mae,") != std::string::npos,
                 res.csv.c_str());
        // Compute beside steps: a graft's time and FLOPs include its source run's (the MAE it starts from).
        const TableRow* graftRow = nullptr;
        const TableRow* maeRow = nullptr;
        for (const auto& r : res.rows) {
            if (r.key == "mim_to_cl") graftRow = &r;
            if (r.key == "mae") maeRow = &r;
        }
        QVERIFY(graftRow && maeRow && maeRow->trainFlops > 0 && maeRow->trainSeconds.size() == 2);
        QVERIFY(graftRow->trainFlops > maeRow->trainFlops);
        for (size_t s = 0; s < 2; ++s) QVERIFY(graftRow->trainSeconds[s] > maeRow->trainSeconds[s]);

        // A job of --jobs trains whole seeds, the source before its graft: shard 1 of 2 is seed 1's two runs.
        TableRequest job = req;
        job.outDir = test::tempDir("graft-table-job");
        job.trainShards = 2;
        job.trainShard = 1;
        QVERIFY(runTable(job, train, nullptr).complete);
        QVERIFY(fs::exists(job.outDir + "/mae-seed1") && fs::exists(job.outDir + "/mim_to_cl-seed1"));
        QVERIFY(!fs::exists(job.outDir + "/mae-seed0") && !fs::exists(job.outDir + "/mim_to_cl-seed0"));

        // Without its source, or with nothing to graft, the error names what is missing.
        TableRequest bad = req;
        bad.recipes = {req.recipes.front()};
        try {
            graftSource(bad, bad.recipes.front());
            QFAIL("no error without the mae recipe");
        } catch (const std::invalid_argument& e) {
            QVERIFY2(std::string(e.what()).find("mim_to_cl starts with a mae stage") != std::string::npos, e.what());
        }
        bad.recipes = {req.recipes.back()};
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, graftSource(bad, bad.recipes.front()));
        bad.graftSteps = 0;
        QVERIFY(graftSource(bad, bad.recipes.front()) == nullptr);
        fs::remove_all(req.outDir);
        fs::remove_all(job.outDir);
    }

    // table --only-seed: each seed made by itself (on another machine, say) into a part file; the same table in a
    // directory holding the parts takes those seeds from them, training and evaluating nothing of theirs, and is the
    // table made whole; the jobs of --jobs skip them too. A part of another table, a damaged one, one that lacks a row,
    // or a seed the table does not have is refused, naming the file and why.
    void tableMadeSeedBySeedFromPartsIsTheWholeTable() {
        std::vector<RecipeIssue> issues;
        Recipe mtl = tinyTwoBlockPreset("mtl", issues);
        mtl.probes.every = 10;  // its gradient cosines travel in the part
        mtl.probes.samples = 4;
        TableRequest req;
        req.recipes = {{"mae", tinyTwoBlockPreset("mae", issues)}, {"mtl", mtl}};
        QVERIFY2(issues.empty(), issues.empty() ? "" : issues.front().message.c_str());
        req.budget = tableBudget("tiny");
        req.seeds = 2;
        req.protocols = {"knn"};
        req.command = "graftlab-cli table (test)";
        int trained = 0;
        const TableTrainFn train = [&](RunSession& s) {
            ++trained;
            s.run();
            return s.complete();
        };
        req.outDir = test::tempDir("parts-whole");
        const TableResult whole = runTable(req, train, nullptr);
        QVERIFY(whole.complete);
        std::vector<std::string> partFiles, dirs = {req.outDir};
        for (int64_t seed : {0, 1}) {
            TableRequest one = req;
            one.outDir = test::tempDir("parts-seed" + std::to_string(seed));
            one.onlySeed = seed;
            const TableResult r = runTable(one, train, nullptr);
            QVERIFY(r.complete);
            QCOMPARE(r.partFile, tablePartFile(one, seed));
            QVERIFY(fs::exists(r.partFile) && !fs::exists(one.outDir + "/table.md") && !fs::exists(one.outDir + "/table.csv"));
            const std::string other = std::to_string(1 - seed);
            QVERIFY(fs::exists(one.outDir + "/mae-seed" + std::to_string(seed)) && !fs::exists(one.outDir + "/mae-seed" + other));
            partFiles.push_back(r.partFile);
            dirs.push_back(one.outDir);
        }
        TableRequest gathered = req;
        gathered.outDir = test::tempDir("parts-gathered");
        dirs.push_back(gathered.outDir);
        fs::create_directories(gathered.outDir);
        for (int64_t seed : {0, 1}) fs::copy_file(partFiles[size_t(seed)], tablePartFile(gathered, seed));
        {  // a run directory written as a path elsewhere is still placed under this table's --out, by its name
            auto p1 = nlohmann::json::parse(readFile(tablePartFile(gathered, 1)));
            for (auto& r : p1["rows"]) r["run_dir"] = "../elsewhere/" + r["run_dir"].get<std::string>();
            writeFileAtomically(tablePartFile(gathered, 1), p1.dump());
        }
        // a job of --jobs trains nothing of a seed that has a part
        trained = 0;
        TableRequest job = gathered;
        job.trainShards = 2;
        for (int k = 0; k < 2; ++k) {
            job.trainShard = k;
            QVERIFY(runTable(job, train, nullptr).complete);
        }
        QCOMPARE(trained, 0);
        std::string log;
        const TableResult g = runTable(gathered, train, [&](const std::string& m) { log += m + "\n"; });
        QVERIFY(g.complete);
        QCOMPARE(trained, 0);
        QVERIFY2(log.find("seed 0: taken from " + tablePartFile(gathered, 0) + " (made by `graftlab-cli table (test)`)") != std::string::npos, log.c_str());
        QVERIFY2(log.find("seed 1: taken from ") != std::string::npos && log.find("evaluation") == std::string::npos, log.c_str());
        QCOMPARE(g.rows.size(), whole.rows.size());
        for (size_t i = 0; i < g.rows.size(); ++i) {
            const TableRow &a = whole.rows[i], &b = g.rows[i];
            QCOMPARE(b.key, a.key);
            QCOMPARE(b.seeds, a.seeds);
            QCOMPARE(b.values("knn"), a.values("knn"));
            QCOMPARE(b.steps, a.steps);
            QCOMPARE(b.batch, a.batch);
            QCOMPARE(b.trainFlops, a.trainFlops);
            QCOMPARE(b.gradientCosines, a.gradientCosines);
            QCOMPARE(b.fromPart, std::vector<bool>({true, true}));
            QCOMPARE(a.fromPart, std::vector<bool>({false, false}));
            for (size_t s = 0; s < 2; ++s) QCOMPARE(fs::path(b.runDirs[s]).parent_path(), fs::path(gathered.outDir));
        }
        QVERIFY2(g.markdown.find("Gradient cosine between the MIM and CL losses in the MTL run") != std::string::npos, g.markdown.c_str());
        QVERIFY2(g.markdown.find(" Seeds 0, 1 were each trained and evaluated by themselves (`--only-seed`)") != std::string::npos, g.markdown.c_str());
        QVERIFY(whole.markdown.find("--only-seed") == std::string::npos);
        // the cells and tests are the whole table's: only the train time and the note on the parts differ
        auto withoutTimes = [](std::string md) {
            md = md.substr(md.find("|---|"));
            md = md.substr(0, md.find("\nCommand:"));
            std::string out;
            std::istringstream in(md);
            for (std::string line; std::getline(in, line);) {
                if (line.rfind("| ", 0) == 0) line = line.substr(0, line.find(" | ", line.find(" | ") + 3)) + line.substr(line.find(" | ", line.find(" | ", line.find(" | ") + 3) + 3));
                if (auto at = line.find(" Seeds 0, 1 were"); at != std::string::npos) line = line.substr(0, at);
                out += line + "\n";
            }
            return out;
        };
        QCOMPARE(withoutTimes(g.markdown), withoutTimes(whole.markdown));

        // One part only: the other seed is made here, and only its evaluations are counted.
        TableRequest half = req;
        half.outDir = test::tempDir("parts-half");
        dirs.push_back(half.outDir);
        fs::create_directories(half.outDir);
        fs::copy_file(partFiles[1], tablePartFile(half, 1));
        log.clear();
        QVERIFY(runTable(half, train, [&](const std::string& m) { log += m + "\n"; }).complete);
        QCOMPARE(trained, 2);  // seed 0's MAE and MTL
        QVERIFY2(log.find("evaluation 4 of 4 (seed 0)") != std::string::npos && log.find("of 8") == std::string::npos &&
                     log.find("(seed 1)") == std::string::npos,
                 log.c_str());
        QVERIFY2(readFile(half.outDir + "/table.md").find(" Seed 1 was trained and evaluated by itself (`--only-seed`)") != std::string::npos,
                 readFile(half.outDir + "/table.md").c_str());

        // Refused, naming the file and why.
        auto refusal = [&](const std::string& text) -> std::string {
            writeFileAtomically(tablePartFile(gathered, 1), text);
            try {
                runTable(gathered, train, nullptr);
            } catch (const FileError& e) {
                return e.what();
            }
            return "(not refused)";
        };
        auto part = nlohmann::json::parse(readFile(partFiles[1]));
        auto other = part;
        other["table"]["budget"]["steps"] = 21;
        QVERIFY2(refusal(other.dump()).rfind(tablePartFile(gathered, 1) + ": is a part of another table: budget.steps (21 there, 20 now)", 0) == 0,
                 refusal(other.dump()).c_str());
        other = part;
        other["table"]["recipes"][1]["recipe"]["optim"]["base_lr"] = 0.5;
        QVERIFY2(refusal(other.dump()).find("recipes.1.recipe.optim.base_lr (0.5 there") != std::string::npos, refusal(other.dump()).c_str());
        QVERIFY2(refusal("{\"graftlab_table_part\": 1,").find(": not JSON") != std::string::npos, refusal("{").c_str());
        other = part;
        other.erase("table");
        QVERIFY2(refusal(other.dump()).find("does not say what table made it") != std::string::npos, refusal(other.dump()).c_str());
        other = part;
        other["seed"] = 0;
        QVERIFY2(refusal(other.dump()).find("holds seed 0, not seed 1") != std::string::npos, refusal(other.dump()).c_str());
        other = part;
        other["rows"].erase(0);  // the random-init row
        QVERIFY2(refusal(other.dump()).find("lacks the row \"random_init\"") != std::string::npos, refusal(other.dump()).c_str());
        other = part;
        other["rows"][3].erase("report");
        QVERIFY2(refusal(other.dump()).find("a row is malformed") != std::string::npos, refusal(other.dump()).c_str());
        TableRequest outside = req;
        outside.onlySeed = 2;
        try {
            runTable(outside, train, nullptr);
            QFAIL("seed 2 of a two-seed table was made");
        } catch (const std::invalid_argument& e) {
            QCOMPARE(std::string(e.what()), std::string("seed 2 is not one of the table's seeds (0 to 1)"));
        }
        for (const auto& d : dirs) fs::remove_all(d);
    }

    // A table run again reuses its grafts though their source checkpoint path was written from another working
    // directory (runs/t/... from the repository root, t/... from runs/); a run whose recipe did change is moved aside,
    // never overwritten, and the log names the field that differs.
    void tableReusesGraftsAcrossWorkingDirectoriesAndNeverOverwritesARun() {
        std::vector<RecipeIssue> issues;
        auto preset = [&](const std::string& name) { return tinyTwoBlockPreset(name, issues); };
        TableRequest req;
        req.outDir = fs::absolute(test::tempDir("graft-reuse")).lexically_normal().string();
        req.recipes = {{"mae", preset("mae")}, {"mim_to_cl", preset("mim_to_cl")}};
        QVERIFY2(issues.empty(), issues.empty() ? "" : issues.front().message.c_str());
        req.budget = tableBudget("tiny");
        req.baselines = false;
        req.protocols = {"knn"};
        req.graftSteps = 6;
        int trained = 0;
        const TableTrainFn train = [&](RunSession& s) {
            ++trained;
            s.run();
            return s.complete();
        };
        QVERIFY(runTable(req, train, nullptr).complete);
        QCOMPARE(trained, 2);
        const std::string graft = req.outDir + "/mim_to_cl";
        // as a table started one directory up would have written it: <name of the out dir>/mae/checkpoints/...
        const fs::path out(req.outDir);
        auto stored = nlohmann::json::parse(readFile(RunLayout(graft).recipe()));
        const std::string abs = stored["stages"][0]["checkpoint"].get<std::string>();
        const std::string rel = fs::path(abs).lexically_relative(out.parent_path()).string();
        QVERIFY2(rel.rfind(out.filename().string() + "/mae/checkpoints/step-", 0) == 0, rel.c_str());
        stored["stages"][0]["checkpoint"] = rel;
        writeFileAtomically(RunLayout(graft).recipe(), stored.dump(2));
        std::string log;
        const auto logFn = [&](const std::string& m) { log += m + "\n"; };
        QVERIFY(runTable(req, train, logFn).complete);
        QCOMPARE(trained, 2);
        QVERIFY2(log.find("reusing the finished run in " + graft + "\n") != std::string::npos, log.c_str());

        // Another graft length: the run there is moved to mim_to_cl.replaced-1, whole, and a new one trained.
        req.graftSteps = 7;
        log.clear();
        QVERIFY(runTable(req, train, logFn).complete);
        QCOMPARE(trained, 3);
        QVERIFY2(log.find(graft + " holds a run of another recipe (or budget): stages.0.steps (6 there, 7 now); moved it to " + graft +
                          ".replaced-1") != std::string::npos,
                 log.c_str());
        QCOMPARE(readCheckpointMeta(latestGoodCheckpoint(RunLayout(graft + ".replaced-1").checkpoints())).step, int64_t(6));
        QCOMPARE(readCheckpointMeta(latestGoodCheckpoint(RunLayout(graft).checkpoints())).step, int64_t(7));
        fs::remove_all(req.outDir);
        fs::remove_all(graft + ".replaced-1");
    }

    void knnUsesTwentyNeighboursAndTemperatureWeightedVotes() {
        Features f;
        const double a1 = 0.999, a0 = 0.75;  // cosine of class 1's and class 0's neighbours to the test point
        std::vector<torch::Tensor> train;
        std::vector<int64_t> labels;
        auto at = [](double cosine, double side) { return torch::tensor({cosine, side * std::sqrt(1 - cosine * cosine), 0.0}); };
        for (int i = 0; i < 3; ++i) train.push_back(at(a1, i % 2 ? 1 : -1)), labels.push_back(1);
        for (int i = 0; i < 17; ++i) train.push_back(at(a0, i % 2 ? 1 : -1)), labels.push_back(0);
        for (int i = 0; i < 30; ++i) train.push_back(torch::tensor({0.0, 0.0, 1.0})), labels.push_back(2);
        f.train = torch::stack(train).to(torch::kFloat32);
        f.trainLabels = torch::tensor(labels, torch::kInt64);
        f.test = torch::tensor({{1.0, 0.0, 0.0}}, torch::kFloat32);
        f.testLabels = torch::tensor({int64_t(1)});
        f.numClasses = 3;
        // weighted votes at T = 0.07: class 1 gets 3 e^{0.999/0.07}, class 0 17 e^{0.75/0.07}; the first is larger
        QVERIFY(3 * std::exp(a1 / 0.07) > 17 * std::exp(a0 / 0.07));
        QCOMPARE(knn(f).top1, 1.0);  // predicted class 1
        QCOMPARE(knn(f).details["k"].get<int64_t>(), int64_t(20));
        // the same 20 neighbours with nearly equal votes (a large T) say class 0: the temperature matters
        f.testLabels = torch::tensor({int64_t(0)});
        QCOMPARE(knn(f, KnnOptions{20, 100.0}).top1, 1.0);
        // and 50 neighbours take in the 30 far class-2 points, which then win: k matters
        f.testLabels = torch::tensor({int64_t(2)});
        QCOMPARE(knn(f, KnnOptions{50, 100.0}).top1, 1.0);
    }

    void knnOnSeparatedClustersIsExact() {
        Features f;
        torch::manual_seed(4);
        auto centres = torch::eye(8).slice(0, 0, 4) * 10.0;  // 4 well separated directions
        auto lab = torch::arange(400, torch::kInt64).remainder(4);
        f.train = centres.index_select(0, lab) + 0.3 * torch::randn({400, 8});
        f.trainLabels = lab;
        auto tl = torch::arange(100, torch::kInt64).remainder(4);
        f.test = centres.index_select(0, tl) + 0.3 * torch::randn({100, 8});
        f.testLabels = tl;
        f.numClasses = 4;
        auto r = knn(f);
        QCOMPARE(r.top1, 1.0);
        QCOMPARE(r.details["k"].get<int64_t>(), int64_t(20));
    }

    void fineTuneLayerDecayGivesLowerBlocksSmallerLr() {
        VitConfig cfg;
        cfg.imageSize = 16;
        cfg.depth = 3;
        cfg.embedDim = 32;
        cfg.numHeads = 2;
        VisionTransformer enc(cfg);
        FineTuneOptions o;
        o.layerDecay = 0.5;
        std::map<std::string, double> lr;
        for (auto& [k, v] : fineTuneLearningRates(enc, o)) lr[k] = v;
        const double peak = o.baseLr * o.batch / 256.0;
        QCOMPARE(lr["head.weight"], peak);
        QCOMPARE(lr["norm.weight"], peak);
        QVERIFY(std::abs(lr["blocks.2.mlp.fc1.weight"] - peak * 0.5) < 1e-12);
        QVERIFY(std::abs(lr["blocks.0.mlp.fc1.weight"] - peak * 0.125) < 1e-12);
        QVERIFY(std::abs(lr["patch_embed.proj.weight"] - peak * 0.0625) < 1e-12);
        QVERIFY(lr["blocks.0.attn.qkv.weight"] < lr["blocks.1.attn.qkv.weight"]);
        o.layerDecay = 1.0;
        for (auto& [k, v] : fineTuneLearningRates(enc, o)) QCOMPARE(v, peak);
    }

    // A checkpoint end to end: features, every protocol, eval.json; and what is not a checkpoint is named.
    void evaluateCheckpointEndToEnd() {
        const std::string dir = trainTinyRun("eval", 4);
        EvalRequest req;
        req.checkpoint = latestGoodCheckpoint(dir);
        req.finetuneSteps = 20;
        std::vector<std::string> logs;
        EvalReport rep = evaluateCheckpoint(req, [&](const std::string& m) { logs.push_back(m); });
        QCOMPARE(rep.results.size(), size_t(4));
        // Fine-tuning says how far it is, a tenth at a time.
        const auto progress = std::count_if(logs.begin(), logs.end(), [](const std::string& m) { return m.rfind("fine-tuning step ", 0) == 0; });
        QCOMPARE(int(progress), 10);
        QVERIFY(std::find_if(logs.begin(), logs.end(), [](const std::string& m) { return m.rfind("fine-tuning step 20/20, loss ", 0) == 0; }) != logs.end());
        for (const auto& p : rep.results) QVERIFY(p.top1 >= 0 && p.top1 <= 1);
        // top-1 is a count over the test split: a multiple of 1 / test images
        for (const auto& p : rep.results)
            QVERIFY2(std::abs(p.top1 * double(rep.testImages) - std::round(p.top1 * double(rep.testImages))) < 1e-6, p.protocol.c_str());
        QCOMPARE(rep.testImages, int64_t(64));
        std::string json = writeEvalJson(rep);
        auto j = nlohmann::json::parse(std::ifstream(json));
        QVERIFY(j[fs::path(req.checkpoint).filename().string()]["protocols"].contains("knn"));
        // The cached features give the same result.
        req.protocols = {"knn"};
        torch::set_num_threads(1);  // as a run trained with threads = 1 (a job of table --jobs) leaves it
        EvalReport again = evaluateCheckpoint(req);
        QCOMPARE(again.results[0].top1, rep.find("knn")->top1);
        // Evaluation uses every core unless told otherwise, whatever the run trained with.
        QCOMPARE(torch::get_num_threads(), int(std::max(1u, std::thread::hardware_concurrency())));
        req.threads = 1;
        evaluateCheckpoint(req);
        QCOMPARE(torch::get_num_threads(), 1);
        req.threads = -1;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, evaluateCheckpoint(req));
        req.threads = 0;

        std::ofstream(dir + "/junk.ckpt") << "not a checkpoint";
        req.checkpoint = dir + "/junk.ckpt";
        try {
            evaluateCheckpoint(req);
            QFAIL("junk accepted");
        } catch (const FileError& e) {
            QVERIFY(std::string(e.what()).find("junk.ckpt") != std::string::npos);
        }
    }

    // A table or sweep stopped during its evaluations does only the missing ones again: evaluateStored returns
    // what its store holds for the same request (checkpoint file, protocols, seed, ...), evaluates anything else.
    void storedEvaluationsAreReusedOnlyForTheSameRequest() {
        const std::string dir = trainTinyRun("evalstore", 2);
        EvalRequest req;
        req.checkpoint = latestGoodCheckpoint(dir);
        req.protocols = {"knn", "linear"};
        const std::string store = RunLayout::evaluationStore(dir);
        std::vector<std::string> logs;
        auto reused = [&] {
            for (const auto& m : logs)
                if (m.find("reusing the evaluation stored in " + store) != std::string::npos) return true;
            return false;
        };
        auto run = [&] {
            logs.clear();
            return evaluateStored(req, store, [&](const std::string& m) { logs.push_back(m); });
        };
        EvalReport first = run();
        QVERIFY(!reused());
        QCOMPARE(first.results.size(), size_t(2));
        EvalReport back = EvalReport::fromJson(first.toJson());
        QCOMPARE(back.toJson(), first.toJson());
        QCOMPARE(back.results.front().protocol, std::string("linear"));  // kProtocols' order
        // Reused: the stored value comes back, even one edited in the store (so it is not evaluated again).
        auto j = nlohmann::json::parse(std::ifstream(store));
        QCOMPARE(int(j.size()), 1);
        j.begin().value()["protocols"]["knn"]["top1"] = 0.125;
        std::ofstream(store) << j.dump();
        EvalReport again = run();
        QVERIFY(reused());
        QCOMPARE(again.find("knn")->top1, 0.125);
        QCOMPARE(again.find("linear")->top1, first.find("linear")->top1);
        QCOMPARE(again.testImages, first.testImages);
        // Another seed, other protocols, a rewritten checkpoint: other evaluations, each stored beside the first.
        req.seed = 1;
        run();
        QVERIFY(!reused());
        req.seed = 0;
        req.protocols = {"knn"};
        run();
        QVERIFY(!reused());
        req.protocols = {"knn", "linear"};
        fs::last_write_time(req.checkpoint, fs::last_write_time(req.checkpoint) + std::chrono::seconds(5));
        EvalReport fresh = run();
        QVERIFY(!reused());
        QVERIFY(fresh.find("knn")->top1 != 0.125);
        QCOMPARE(int(nlohmann::json::parse(std::ifstream(store)).size()), 4);
        run();
        QVERIFY(reused());
        // An unreadable store is said, evaluated anew and rewritten.
        std::ofstream(store) << "{ not json";
        run();
        QVERIFY(!reused());
        QVERIFY(std::any_of(logs.begin(), logs.end(), [](const std::string& m) { return m.find("unreadable") != std::string::npos; }));
        QCOMPARE(int(nlohmann::json::parse(std::ifstream(store)).size()), 1);
        fs::remove_all(dir);
    }

    // A fine-tuning stopped in any way (here: an exception out of its progress report, as abrupt as a kill after
    // its last save) continues from its saved state when the same evaluation runs again, and gives the result of
    // an uninterrupted one exactly; a damaged state, or one made for another fine-tuning, is said and not used.
    void stoppedFineTuningContinuesFromItsState() {
        struct Stop {};
        const std::string dir = trainTinyRun("ftstate", 2);
        const std::string store = RunLayout::evaluationStore(dir);
        EvalRequest req;
        req.checkpoint = latestGoodCheckpoint(dir);
        req.protocols = {"finetune"};
        req.finetuneSteps = 20;
        QCOMPARE(fineTuneSaveInterval(20), 2);
        QCOMPARE(fineTuneSaveInterval(52000), 500);
        QCOMPARE(fineTuneSaveInterval(5), 1);
        auto states = [&] {
            std::vector<std::string> out;
            for (const auto& e : fs::directory_iterator(dir))
                if (e.path().filename().string().find("-finetune-") != std::string::npos) out.push_back(e.path().string());
            return out;
        };
        std::vector<std::string> logs;
        auto said = [&](const std::string& what) {
            return std::any_of(logs.begin(), logs.end(), [&](const std::string& m) { return m.find(what) != std::string::npos; });
        };
        auto interrupted = [&](const std::string& at) {
            logs.clear();
            try {
                evaluateStored(req, store, [&](const std::string& m) {
                    logs.push_back(m);
                    if (m.rfind(at, 0) == 0) throw Stop{};
                });
                QFAIL("not stopped");
            } catch (const Stop&) {
            }
        };
        auto run = [&] {
            logs.clear();
            return evaluateStored(req, store, [&](const std::string& m) { logs.push_back(m); });
        };
        auto loss = [](const EvalReport& r) { return r.find("finetune")->details.at("final_train_loss").get<double>(); };

        const EvalReport whole = evaluateCheckpoint(req);
        QVERIFY(states().empty());
        interrupted("fine-tuning step 14/20");
        QCOMPARE(int(states().size()), 1);
        const EvalReport resumed = run();
        QVERIFY2(said("continuing the fine-tuning from step 14 of 20"), logs.empty() ? "" : logs.back().c_str());
        QCOMPARE(resumed.find("finetune")->top1, whole.find("finetune")->top1);
        QCOMPARE(loss(resumed), loss(whole));
        QCOMPARE(resumed.find("finetune")->details.at("resumed_from_step").get<int>(), 14);
        QVERIFY(states().empty());  // removed when done

        // Damaged: said, and fine-tuned from the start.
        req.seed = 1;
        const EvalReport whole1 = evaluateCheckpoint(req);
        interrupted("fine-tuning step 8/20");
        QCOMPARE(int(states().size()), 1);
        const std::string state1 = states().front();
        const std::string saved1 = readFile(state1);
        std::ofstream(state1, std::ios::binary | std::ios::trunc) << "not a state";
        const EvalReport fresh1 = run();
        QVERIFY(said("the fine-tuning state " + state1 + " is damaged"));
        QVERIFY(said("fine-tuning from the start"));
        QVERIFY(!said("continuing"));
        QCOMPARE(fresh1.find("finetune")->top1, whole1.find("finetune")->top1);
        QCOMPARE(loss(fresh1), loss(whole1));
        QVERIFY(!fresh1.find("finetune")->details.contains("resumed_from_step"));

        // Made for another fine-tuning (seed 1's state where seed 2's belongs): said, and not used.
        req.seed = 2;
        const EvalReport whole2 = evaluateCheckpoint(req);
        interrupted("fine-tuning step 6/20");
        QCOMPARE(int(states().size()), 1);
        std::ofstream(states().front(), std::ios::binary | std::ios::trunc) << saved1;
        const EvalReport fresh2 = run();
        QVERIFY(said("was made for another fine-tuning"));
        QCOMPARE(fresh2.find("finetune")->top1, whole2.find("finetune")->top1);
        QCOMPARE(loss(fresh2), loss(whole2));
        QVERIFY(states().empty());

        // A state that cannot be written (a directory in its place, as good as a full disk) is said once; the
        // fine-tuning goes on without it and gives its result.
        req.seed = 3;
        const EvalReport whole3 = evaluateCheckpoint(req);
        interrupted("fine-tuning step 4/20");
        const std::string state3 = states().front();
        fs::remove(state3);
        fs::create_directory(state3);
        const EvalReport unsaved3 = run();
        QCOMPARE(int(std::count_if(logs.begin(), logs.end(), [](const std::string& m) { return m.find("cannot be written") != std::string::npos; })), 1);
        QCOMPARE(unsaved3.find("finetune")->top1, whole3.find("finetune")->top1);
        QCOMPARE(loss(unsaved3), loss(whole3));
        fs::remove_all(dir);
    }

    // A stop asked for (the GUI's Cancel, a stop signal to the CLI) ends a fine-tuning at its next step with its state
    // saved there, not at the last periodic save nor after the remaining steps; the same evaluation continues from
    // it with the uninterrupted result, and nothing is stored as a result meanwhile.
    void stopRequestedKeepsTheFineTuningAtOnce() {
        const std::string dir = trainTinyRun("ftstop", 2);
        const std::string store = RunLayout::evaluationStore(dir);
        EvalRequest req;
        req.checkpoint = latestGoodCheckpoint(dir);
        req.protocols = {"finetune"};
        req.finetuneSteps = 20;  // saves every 2 steps: a stop after 7 is kept at 7 only if the stop saves
        const EvalReport whole = evaluateCheckpoint(req);
        auto loss = [](const EvalReport& r) { return r.find("finetune")->details.at("final_train_loss").get<double>(); };
        std::vector<std::string> logs;
        auto said = [&](const std::string& what) {
            return std::any_of(logs.begin(), logs.end(), [&](const std::string& m) { return m.find(what) != std::string::npos; });
        };
        int asked = 0;
        // asked once before the protocol, then before each step: the 9th ask comes before step 7 (7 steps done)
        req.stopRequested = [&] { return ++asked > 8; };
        try {
            evaluateStored(req, store, [&](const std::string& m) { logs.push_back(m); });
            QFAIL("a requested stop did not stop the fine-tuning");
        } catch (const FineTuneStopped& e) {
            QCOMPARE(e.step, 7);
            QCOMPARE(e.steps, 20);
            QVERIFY(e.stateSaved);
            QVERIFY2(std::string(e.what()).find("stopped at step 7 of 20: its state is kept in ") != std::string::npos, e.what());
        }
        QCOMPARE(asked, 9);
        QVERIFY(!fs::exists(store) || readFile(store).find("finetune") == std::string::npos);  // no result stored
        req.stopRequested = {};
        logs.clear();
        const EvalReport resumed = evaluateStored(req, store, [&](const std::string& m) { logs.push_back(m); });
        QVERIFY2(said("continuing the fine-tuning from step 7 of 20"), logs.empty() ? "" : logs.back().c_str());
        QCOMPARE(resumed.find("finetune")->top1, whole.find("finetune")->top1);
        QCOMPARE(loss(resumed), loss(whole));

        // Without a place for a state (evaluateCheckpoint alone, `eval --no-cache`) the stop says the next run starts again.
        asked = 0;
        req.stopRequested = [&] { return ++asked > 4; };
        try {
            evaluateCheckpoint(req);
            QFAIL("not stopped");
        } catch (const FineTuneStopped& e) {
            QCOMPARE(e.step, 3);
            QVERIFY(!e.stateSaved);
            QVERIFY2(std::string(e.what()).find("starts it again") != std::string::npos, e.what());
        }
        // A stop before the first protocol: EvaluationStopped, nothing run.
        req.protocols = {"knn", "finetune"};
        req.stopRequested = [] { return true; };
        QVERIFY_THROWS_EXCEPTION(EvaluationStopped, evaluateCheckpoint(req));
        fs::remove_all(dir);
    }

    void fineTuneProgressCountsOnlyThisProcesssSteps() {
        // from the start: 5,200 steps of 64 in 600 s
        QCOMPARE(fineTuneProgressLine(5200, 52000, 0, 600.0, 64, 0.5), std::string("fine-tuning step 5200/52000, loss 0.5000, 555 img/s, ETA 5400 s"));
        // continued from step 28,000: 3,200 steps of 64 in 546 s, not 31,200
        QCOMPARE(fineTuneProgressLine(31200, 52000, 28000, 546.0, 64, 0.978),
                 std::string("fine-tuning step 31200/52000, loss 0.9780, 375 img/s, ETA 3549 s"));
    }

    // `eval` and the GUI keep a fine-tuning's state beside the checkpoint, one file per fine-tuning: two fine-tunings
    // of one checkpoint, each stopped, each continue from their own step (neither overwrites the other's state).
    void fineTuningsOfOneCheckpointKeepTheirOwnStates() {
        const std::string dir = trainTinyRun("ftbeside", 2);
        EvalRequest a;
        a.checkpoint = latestGoodCheckpoint(dir);
        a.protocols = {"finetune"};
        a.finetuneSteps = 20;
        EvalRequest b = a;
        b.finetuneSteps = 30;
        // the same fine-tuning asked another way (with other protocols, fewer threads, a relative path): the same file
        EvalRequest same = a;
        same.protocols = {"linear", "knn", "finetune"};
        same.threads = 1;
        same.checkpoint = fs::relative(a.checkpoint).string();
        QVERIFY(same.checkpoint != a.checkpoint);
        QCOMPARE(fs::absolute(fineTuneStatePathBeside(same)).lexically_normal(), fs::path(fineTuneStatePathBeside(a)));
        QCOMPARE(fs::path(fineTuneStatePathBeside(a)).parent_path(), fs::path(a.checkpoint).parent_path());
        QVERIFY(fs::path(fineTuneStatePathBeside(a)).filename().string().rfind("." + fs::path(a.checkpoint).filename().string() + ".finetune-", 0) == 0);
        {  // a working directory that cannot be read (removed under the process) names a file; it does not throw
            const fs::path home = fs::current_path(), gone = fs::path(dir) / "cwd-removed";
            fs::create_directories(gone);
            fs::current_path(gone);
            fs::remove(gone);
            std::string named;
            try {
                named = fineTuneStatePathBeside(same);
            } catch (const std::exception& e) {
                named = std::string("threw: ") + e.what();
            }
            fs::current_path(home);
            QVERIFY2(named.find(".finetune-") != std::string::npos, named.c_str());
        }
        // each thing a fine-tuning's steps depend on names another file
        for (auto change : std::vector<std::function<void(EvalRequest&)>>{[](EvalRequest& r) { r.finetuneSteps = 21; },
                                                                         [](EvalRequest& r) { r.finetuneLr = 1e-3; },
                                                                         [](EvalRequest& r) { r.finetuneFromScratch = true; },
                                                                         [](EvalRequest& r) { r.pooling = "mean"; },
                                                                         [](EvalRequest& r) { r.maxTrain = 64; },
                                                                         [](EvalRequest& r) { r.seed = 1; }}) {
            EvalRequest other = a;
            change(other);
            QVERIFY(fineTuneStatePathBeside(other) != fineTuneStatePathBeside(a));
        }
        const EvalReport wholeA = evaluateCheckpoint(a), wholeB = evaluateCheckpoint(b);
        a.finetuneStatePath = fineTuneStatePathBeside(a);
        b.finetuneStatePath = fineTuneStatePathBeside(b);
        auto stopAfter = [](EvalRequest r, int steps) {  // asked once before the protocol, then before each step
            int asked = 0;
            r.stopRequested = [&asked, steps] { return ++asked > steps + 1; };
            try {
                evaluateCheckpoint(r);
                QFAIL("not stopped");
            } catch (const FineTuneStopped& e) {
                QCOMPARE(e.step, steps);
                QVERIFY(e.stateSaved);
            }
        };
        stopAfter(a, 7);
        stopAfter(b, 11);
        QVERIFY(fs::exists(a.finetuneStatePath) && fs::exists(b.finetuneStatePath));
        for (auto [r, step, whole] : {std::tuple{a, 7, wholeA}, std::tuple{b, 11, wholeB}}) {
            std::vector<std::string> logs;
            const EvalReport resumed = evaluateCheckpoint(r, [&](const std::string& m) { logs.push_back(m); });
            const std::string expected = "continuing the fine-tuning from step " + std::to_string(step) + " of " + std::to_string(r.finetuneSteps);
            QVERIFY2(std::any_of(logs.begin(), logs.end(), [&](const std::string& m) { return m.find(expected) != std::string::npos; }),
                     expected.c_str());
            QCOMPARE(resumed.find("finetune")->top1, whole.find("finetune")->top1);
            QVERIFY(!fs::exists(r.finetuneStatePath));  // removed when done
        }
        fs::remove_all(dir);
    }
};

GRAFTLAB_REGISTER_TEST(EvalTest);
#include "test_eval.moc"
