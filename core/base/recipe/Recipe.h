#pragma once
// A recipe is every hyperparameter of a run. JSON in/out; unknown keys are errors (a typo must not be
// silently ignored); validate() reports every problem with the dotted field name at fault.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace graftlab {

// The vocabularies every part of GraftLab spells the same way.
extern const std::vector<std::string> kMethods;    // the objectives: mae, mocov3, mtl, conmim
extern const std::vector<std::string> kProtocols;  // the evaluation protocols: linear, fewshot, knn, finetune

struct RecipeIssue {
    std::string field;    // dotted JSON path, e.g. "model.patch_size"; "" for the document itself
    std::string message;  // what is wrong and what is expected
};

// The linear scaling rule of MAE and MoCo v3 (and of GraftLab's evaluation protocols): lr = base x global batch / 256.
inline double linearScaledLr(double baseLr, int64_t globalBatch) { return baseLr * double(globalBatch) / 256.0; }

struct DataConfig {
    std::string dataset = "fashion_mnist";
    std::string root;                 // empty = the dataset's standard location
    int imageSize = 28;
    int64_t syntheticSize = 8192;     // images in the synthetic training split (test split: a quarter)
    bool fallbackToSynthetic = true;  // when the dataset's files are missing
    std::string augmentOn = "auto";   // where views are made: auto (the GPU when training on CUDA, else the CPU) | cpu | device
};

struct ModelConfig {
    int patchSize = 4;
    int embedDim = 192;
    int depth = 6;
    int numHeads = 3;
    double mlpRatio = 4.0;
    int decoderEmbedDim = 128;
    int decoderDepth = 2;
    int decoderNumHeads = 4;
};

struct MaeConfig {
    double maskRatio = 0.75;
    bool normPixLoss = false;  // pixel targets show best on Fashion-MNIST's flat backgrounds
};

struct AugmentConfig {
    double cropScaleMin = 0.2;   // MIM views (MAE: 0.2 - 1)
    double cropScaleMax = 1.0;
    bool hflip = true;
    // Contrastive views (BYOL / MoCo v3 recipe)
    double clCropScaleMin = 0.08;
    double jitterProb = 0.8;
    double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
    double grayscaleProb = 0.2;
    double view1BlurProb = 1.0, view2BlurProb = 0.1;
    double view1SolarizeProb = 0.0, view2SolarizeProb = 0.2;
    double blurSigmaMin = 0.1, blurSigmaMax = 2.0;
};

struct MocoConfig {
    double temperature = 0.2;
    double momentum = 0.99;      // rises to 1 on a cosine over the stage
    int hiddenDim = 512;         // MLP hidden width (MoCo v3: 4096 for ViT-B)
    int outDim = 128;            // projection width (MoCo v3: 256)
    bool frozenPatchEmbed = true;  // MoCo v3's random, frozen patch projection
};

// ConMIM (Yi et al. 2023) and the ablations of its Tables 6 and 8 as flags.
struct ConMimConfig {
    double temperature = 0.1;
    double momentum = 0.996;            // slow model EMA, rising to 1 on a cosine over the stage
    double maskRatio = 0.4;             // share of patches masked (the paper: ~40%, 75 of 196)
    std::string maskStyle = "blockwise";  // blockwise (BEiT's, as the official code) | random (GraftLab's first)
    int projDim = 128;                  // output width of the projector (after the final LayerNorm)
    std::string projector = "mlp_bn";   // mlp_bn: 3 layers with BatchNorm, last BN without affine (official) | simple: Linear-GELU-Linear
    int projHiddenDim = 512;            // hidden width of the mlp_bn projector (official: 4096 at ViT-B)
    bool slowModel = true;              // false: keys from the online model with stop-gradient
    std::string perturbation = "asymmetric";  // asymmetric | strong_both | basic_both | switched
    std::string contrast = "patch";     // patch (denoising, intra-image) | instance (mean token, over the batch)
    bool masking = true;                // false: patch-level contrast without masking (reported to fail)
    double strongBlurProb = 0.1;        // the official code's; 0.5 was GraftLab's first choice
    double strongSolarizeProb = 0.2;
};

struct MtlConfig {
    double mimWeight = 1.0;
    double clWeight = 1.0;
};

// One stage of a (possibly grafted) run: its objective, its length, what initialises it, and a learning-rate
// multiplier per part of the encoder (0 = frozen).
struct StageConfig {
    std::string name;
    std::string method = "mae";
    int64_t steps = 100;
    std::string init = "previous";      // random | previous | checkpoint
    std::string checkpoint;             // with init = checkpoint
    std::string initModules = "encoder";  // encoder (into base and momentum encoders) | all (heads too)
    int initBlocks = -1;                // take only the embedding and the lower k encoder blocks; -1 = all blocks
    double baseLr = 0;                  // 0 = optim.base_lr
    int64_t warmupSteps = -1;           // -1 = optim.warmup_steps
    double embedLr = 1.0;               // patch + position embedding, class token
    std::vector<double> blockLr;        // one per block; empty = all 1
    double headLr = 1.0;                // final norm and every head
};

struct OptimConfig {
    double baseLr = 4e-3;     // lr = baseLr * batchSize / 256
    int batchSize = 64;
    double weightDecay = 0.05;
    double beta1 = 0.9;
    double beta2 = 0.95;
    int64_t warmupSteps = 30;
    double minLr = 0.0;
    double clipGrad = 0.0;  // max global gradient norm; 0 = off
};

struct TrainConfig {
    int64_t steps = 1000;
    int logEvery = 10;
    int checkpointEvery = 100;
    int keepEvery = 0;  // also keep every checkpoint whose step is a multiple of this; 0 = keep only the last
    std::string onNonFinite = "stop";  // a NaN/Inf loss: stop (last checkpoint kept) | skip the batch
    std::string precision = "auto";    // forward arithmetic: auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
};

// Probes of what the model learns, run on the training thread every `every` steps on fixed probe images.
struct ProbeConfig {
    int every = 100;                // steps between probes; 0 = off
    int samples = 8;                // probe images (fixed: evenly spaced over the training set)
    int gradcosSamples = 64;        // images of the gradient-cosine probe, taken in chunks of `samples`
    int keep = 100;                 // snapshots kept per kind; older ones are thinned (first, last, even spread)
    bool gradcos = true;            // per-block cosine of the MIM and CL gradients (needs both heads)
    bool attention = true;          // class-token attention per block and head, and rollout
    bool similarity = true;         // patch-token cosine similarity (and ConMIM's dictionary look-up)
    bool reconstruction = true;     // MAE's four panels (needs an MAE decoder)
    int similarityBlock = -1;       // block whose output tokens are compared; -1 = the last
    double similarityTemperature = 0.1;  // temperature of the ConMIM look-up softmax
};

struct Recipe {
    std::string name = "mae";
    std::string method = "mae";
    int64_t seed = 0;
    std::string device = "auto";
    int threads = 0;  // 0 = all cores
    DataConfig data;
    ModelConfig model;
    MaeConfig mae;
    AugmentConfig augment;
    OptimConfig optim;
    TrainConfig train;
    MocoConfig moco;
    MtlConfig mtl;
    ConMimConfig conmim;
    ProbeConfig probes;
    std::vector<StageConfig> stages;  // empty = one stage: `method` for train.steps

    nlohmann::json toJson() const;
    // Reads a recipe: missing keys keep their defaults; wrong types and unknown keys go into `issues`.
    static Recipe fromJson(const nlohmann::json& j, std::vector<RecipeIssue>& issues);
    // Semantic checks (ranges, divisibility, known names). Empty = valid.
    std::vector<RecipeIssue> validate() const;
    // validate()'s parts, one a section of the recipe; each appends what it finds to `e`.
    void validateChoices(std::vector<RecipeIssue>& e) const;       // every field with a fixed set of values
    void validateDataAndModel(std::vector<RecipeIssue>& e) const;  // data.*, threads, model.*, mae.mask_ratio
    void validateAugment(std::vector<RecipeIssue>& e) const;       // augment.*
    void validateOptimAndTrain(std::vector<RecipeIssue>& e) const; // optim.*, train.*
    void validateProbes(std::vector<RecipeIssue>& e) const;        // probes.*
    void validateMethods(std::vector<RecipeIssue>& e) const;       // moco.*, mtl.*, conmim.*
    void validateStages(std::vector<RecipeIssue>& e) const;        // stages[i].*

    // The stages the run goes through (one built from `method` and train.steps when `stages` is empty).
    std::vector<StageConfig> effectiveStages() const;
    int64_t totalSteps() const;
    // Index of the stage that trains global step `step` (the last stage for step >= totalSteps()).
    int stageAt(int64_t step) const;
    int64_t stageStart(int stage) const;

    int gridSize() const { return data.imageSize / model.patchSize; }
    int numPatches() const { return gridSize() * gridSize(); }
    // The peak lr of stage `stage` (the linear scaling rule of MAE / MoCo v3): its base lr (the stage's own when it
    // sets one, else optim.base_lr) x the global batch (batch_size x `world` data-parallel ranks) / 256. The one
    // place the rule is written: the trainer, bench and tests take it from here.
    double peakLr(int stage = 0, int world = 1) const;
};

// One field of the recipe: its dotted path, a one-line help text (tooltips, --help), and its kind.
struct RecipeFieldInfo {
    std::string path;
    std::string kind;  // "int", "number", "bool", "string"
    std::string help;
    std::vector<std::string> choices;  // for strings with a fixed set of values
};
const std::vector<RecipeFieldInfo>& recipeFields();

// Reads a recipe file, applies `--set dotted.key=value` overrides, and parses it. Malformed JSON is reported
// with line and column as an issue on field "". Throws FileError when the file cannot be read.
Recipe loadRecipeFile(const std::string& path, const std::vector<std::string>& overrides,
                      std::vector<RecipeIssue>& issues);
// Parses recipe text (same rules as loadRecipeFile; `origin` names the source in messages).
Recipe parseRecipeText(const std::string& text, const std::string& origin,
                       const std::vector<std::string>& overrides, std::vector<RecipeIssue>& issues);

// Applies one "dotted.key=value" override to a JSON document (value parsed as JSON, else taken as a string).
void applyOverride(nlohmann::json& j, const std::string& assignment, std::vector<RecipeIssue>& issues);

std::string formatIssues(const std::vector<RecipeIssue>& issues);

// The most CPU threads a recipe, eval or bench may ask for: 4x the cores of this machine (more only oversubscribes,
// and a typo like 100000 would start that many threads).
int maxThreads();

}  // namespace graftlab
