#include "base/recipe/Recipe.h"
#include "base/recipe/Presets.h"
#include "base/util/AtomicFile.h"
#include "TestRegistry.h"
#include "TestUtil.h"

#include <QtTest>

#include <filesystem>

using namespace graftlab;

namespace {
bool hasIssue(const std::vector<RecipeIssue>& issues, const std::string& field, const std::string& fragment = {}) {
    for (const auto& i : issues)
        if (i.field == field && i.message.find(fragment) != std::string::npos) return true;
    return false;
}
std::vector<RecipeIssue> issuesOf(const std::string& text, std::vector<std::string> sets = {}) {
    std::vector<RecipeIssue> issues;
    Recipe r = parseRecipeText(text, "test.json", sets, issues);
    for (auto& v : r.validate()) issues.push_back(v);  // as the CLI does: parse problems and the rest
    return issues;
}
}  // namespace

class RecipeTest : public QObject {
    Q_OBJECT
private slots:
    void defaultsAreValid() { QVERIFY(Recipe{}.validate().empty()); }

    // The linear scaling rule, written once: a stage's own base lr and the data-parallel ranks count.
    void peakLrKnowsStagesAndRanks() {
        Recipe r;
        r.optim.baseLr = 1e-3;
        r.optim.batchSize = 128;
        QCOMPARE(r.peakLr(), 5e-4);
        QCOMPARE(r.peakLr(0, 4), 2e-3);
        StageConfig a, b;
        a.method = "mae";
        a.steps = 10;
        b.method = "mocov3";
        b.steps = 10;
        b.baseLr = 4e-3;
        r.stages = {a, b};
        QCOMPARE(r.peakLr(0), 5e-4);  // no lr of its own: optim.base_lr
        QCOMPARE(r.peakLr(1), 2e-3);
        QCOMPARE(r.peakLr(1, 2), 4e-3);
        QCOMPARE(linearScaledLr(1.5e-4, 4096), 2.4e-3);  // MAE's ViT-B recipe
    }

    // One search for presets, the CLI's --recipe NAME and the GUI's File > Presets alike: every file of
    // resources/recipes is listed once by name, $GRAFTLAB_RECIPE_DIR comes first, and a path is not a name.
    void presetsAreFoundInOrderAndListedOnce() {
        auto presets = listPresets();
        std::map<std::string, std::string> byName(presets.begin(), presets.end());
        QCOMPARE(byName.size(), presets.size());
        for (const char* name : {"mae", "mocov3", "mtl", "layer_grafted", "conmim", "bench_mae_tiny"}) {
            QVERIFY2(byName.count(name), name);
            QVERIFY(std::filesystem::exists(byName[name]));
            QCOMPARE(findPreset(name), byName[name]);
        }
        QVERIFY(std::is_sorted(presets.begin(), presets.end()));
        QCOMPARE(findPreset("mae.json"), findPreset("mae"));
        QCOMPARE(findPreset("no_such_preset"), std::string());
        QCOMPARE(findPreset("recipes/mae"), std::string());

        std::string dir = test::tempDir("presets");
        writeFileAtomically(dir + "/mae.json", "{}");
        writeFileAtomically(dir + "/mine.json", "{}");
        writeFileAtomically(dir + "/notes.txt", "not a recipe");
        qputenv("GRAFTLAB_RECIPE_DIR", QByteArray::fromStdString(dir));
        QCOMPARE(findPreset("mae"), dir + "/mae.json");       // the user's directory comes first
        QCOMPARE(findPreset("mine"), dir + "/mine.json");
        auto withUser = listPresets();
        QCOMPARE(withUser.size(), presets.size() + 1);        // "mine" added, "mae" listed once
        QCOMPARE(std::count_if(withUser.begin(), withUser.end(), [](const auto& p) { return p.first == "mae"; }), 1L);
        QCOMPARE(std::count_if(withUser.begin(), withUser.end(), [](const auto& p) { return p.first == "notes"; }), 0L);
        qunsetenv("GRAFTLAB_RECIPE_DIR");
        QCOMPARE(findPreset("mae"), byName["mae"]);
    }

    void defaultPresetParsesAndMatchesDefaults() {
        std::vector<RecipeIssue> issues;
        Recipe r = loadRecipeFile(test::sourceDir() + "/resources/recipes/mae.json", {}, issues);
        QVERIFY2(issues.empty(), formatIssues(issues).c_str());
        QVERIFY(r.validate().empty());
        QCOMPARE(r.toJson().dump(), Recipe{}.toJson().dump());
    }

    void jsonRoundTrip() {
        Recipe r = test::tinyRecipe();
        r.mae.normPixLoss = false;
        r.optim.clipGrad = 1.5;
        std::vector<RecipeIssue> issues;
        Recipe back = Recipe::fromJson(r.toJson(), issues);
        QVERIFY(issues.empty());
        QCOMPARE(back.toJson().dump(), r.toJson().dump());
    }

    void patchMustDivideImage() {
        auto issues = issuesOf(R"({"data":{"image_size":28},"model":{"patch_size":5}})");
        QVERIFY(hasIssue(issues, "model.patch_size", "does not divide"));
    }

    void maskRatioOutsideOpenInterval() {
        QVERIFY(hasIssue(issuesOf(R"({"mae":{"mask_ratio":1.0}})"), "mae.mask_ratio"));
        QVERIFY(hasIssue(issuesOf(R"({"mae":{"mask_ratio":0}})"), "mae.mask_ratio"));
        QVERIFY(hasIssue(issuesOf(R"({"mae":{"mask_ratio":-0.5}})"), "mae.mask_ratio"));
        QVERIFY(issuesOf(R"({"mae":{"mask_ratio":0.5}})").empty());
    }

    void nonPositiveLrBatchSteps() {
        auto issues = issuesOf(R"({"optim":{"base_lr":0,"batch_size":-4},"train":{"steps":0}})");
        QVERIFY(hasIssue(issues, "optim.base_lr"));
        QVERIFY(hasIssue(issues, "optim.batch_size"));
        QVERIFY(hasIssue(issues, "train.steps"));
        QCOMPARE(int(issues.size()), 3);  // every problem, not just the first
    }

    void unknownMethodAndDataset() {
        auto issues = issuesOf(R"({"method":"simclr","data":{"dataset":"imagenet"}})");
        QVERIFY(hasIssue(issues, "method", "simclr"));
        QVERIFY(hasIssue(issues, "data.dataset", "imagenet"));
    }

    void unknownKeysAreErrors() {
        auto issues = issuesOf(R"({"optim":{"base_lrr":0.1},"tarin":{}})");
        QVERIFY(hasIssue(issues, "optim.base_lrr", "unknown key"));
        QVERIFY(hasIssue(issues, "optim.base_lrr", "optim.base_lr"));  // suggestion
        QVERIFY(hasIssue(issues, "tarin", "unknown key"));
    }

    void wrongTypes() {
        auto issues = issuesOf(R"({"optim":{"batch_size":"64"},"mae":{"norm_pix_loss":1},"model":"big"})");
        QVERIFY(hasIssue(issues, "optim.batch_size", "integer"));
        QVERIFY(hasIssue(issues, "mae.norm_pix_loss", "true or false"));
        QVERIFY(hasIssue(issues, "model", "object"));
    }

    void headsMustDivideWidth() {
        QVERIFY(hasIssue(issuesOf(R"({"model":{"embed_dim":192,"num_heads":5}})"), "model.num_heads"));
        QVERIFY(hasIssue(issuesOf(R"({"model":{"embed_dim":190,"num_heads":5}})"), "model.embed_dim", "multiple of 4"));
    }

    void malformedJsonHasLineAndColumn() {
        std::vector<RecipeIssue> issues;
        parseRecipeText("{\n  \"seed\": 1,\n  \"name\": oops\n}", "bad.json", {}, issues);
        QCOMPARE(int(issues.size()), 1);
        QVERIFY2(issues[0].message.find("bad.json:3:") != std::string::npos, issues[0].message.c_str());
        // fuzz regressions (tests/fuzz/regressions/fuzz_recipe): an issue, never an exception
        issues.clear();
        parseRecipeText("{\n \"seed\": 666e666\n}", "big.json", {}, issues);
        QCOMPARE(int(issues.size()), 1);
        QVERIFY2(issues[0].message.find("big.json:2:10: malformed JSON (number overflow") != std::string::npos, issues[0].message.c_str());
        for (const auto& entry : std::filesystem::directory_iterator(GRAFTLAB_SOURCE_DIR "/tests/fuzz/regressions/fuzz_recipe")) {
            issues.clear();
            parseRecipeText(readFile(entry.path().string()), entry.path().string(), {}, issues);
            QVERIFY(!issues.empty());
        }
    }

    void overridesApply() {
        std::vector<RecipeIssue> issues;
        Recipe r = parseRecipeText("{}", "x", {"optim.batch_size=32", "data.dataset=synthetic", "mae.norm_pix_loss=false"}, issues);
        QVERIFY(issues.empty());
        QCOMPARE(r.optim.batchSize, 32);
        QCOMPARE(r.data.dataset, std::string("synthetic"));
        QCOMPARE(r.mae.normPixLoss, false);
        parseRecipeText("{}", "x", {"optim.batch_sise=32"}, issues);
        QVERIFY(hasIssue(issues, "optim.batch_sise", "unknown key"));
    }

    void conmimNeedsAMaskRatio() {
        auto issues = issuesOf(R"({"method":"conmim","conmim":{"mask_ratio":0}})");
        QVERIFY(hasIssue(issues, "conmim.mask_ratio", "inside (0, 1)"));
        QVERIFY(issuesOf(R"({"method":"conmim","conmim":{"mask_ratio":0,"masking":false}})").empty());
        QVERIFY(hasIssue(issuesOf(R"({"conmim":{"perturbation":"weird"}})"), "conmim.perturbation"));
    }

    void stagesAreCheckedField_by_field() {
        auto issues = issuesOf(R"({"stages":[{"method":"mae","steps":5,"init":"previous","colour":1},
                                             {"method":"byol","steps":0,"init":"checkpoint",
                                              "lr_mult":{"blocks":[1,1],"tail":2}}]})");
        QVERIFY(hasIssue(issues, "stages[0].init", "no previous stage"));
        QVERIFY(hasIssue(issues, "stages[0].colour", "unknown key"));
        QVERIFY(hasIssue(issues, "stages[1].method", "byol"));
        QVERIFY(hasIssue(issues, "stages[1].steps"));
        QVERIFY(hasIssue(issues, "stages[1].checkpoint"));
        QVERIFY(hasIssue(issues, "stages[1].lr_mult.blocks", "6 blocks"));
        QVERIFY(hasIssue(issues, "stages[1].lr_mult.tail", "unknown key"));
        Recipe r;
        std::vector<RecipeIssue> none;
        r = Recipe::fromJson(nlohmann::json::parse(R"({"stages":[{"method":"mae","steps":5,"init":"random"},
                                                                   {"method":"mocov3","steps":7}]})"), none);
        QVERIFY(none.empty());
        QCOMPARE(r.totalSteps(), int64_t(12));
        QCOMPARE(r.stageAt(4), 0);
        QCOMPARE(r.stageAt(5), 1);
        QCOMPARE(r.stageStart(1), int64_t(5));
        std::vector<RecipeIssue> again;
        QCOMPARE(Recipe::fromJson(r.toJson(), again).toJson().dump(), r.toJson().dump());
    }

    void everyFieldHasHelp() {
        for (const auto& f : recipeFields()) QVERIFY2(f.help.size() > 10, f.path.c_str());
    }
};
GRAFTLAB_REGISTER_TEST(RecipeTest);
#include "test_recipe.moc"
