#include "base/recipe/Recipe.h"

#include <thread>
#include "base/util/AtomicFile.h"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>
#include <sstream>
#include <variant>

namespace graftlab {

const std::vector<std::string> kMethods = {"mae", "mocov3", "mtl", "conmim"};
const std::vector<std::string> kProtocols = {"linear", "fewshot", "knn", "finetune"};
using nlohmann::json;

namespace {

using FieldRef = std::variant<int*, int64_t*, double*, bool*, std::string*>;

struct Binding {
    RecipeFieldInfo info;
    std::function<FieldRef(Recipe&)> ref;
};

template <class T>
const char* kindOf() {
    if constexpr (std::is_same_v<T, int> || std::is_same_v<T, int64_t>) return "int";
    else if constexpr (std::is_same_v<T, double>) return "number";
    else if constexpr (std::is_same_v<T, bool>) return "bool";
    else return "string";
}

#define GL_FIELD(PATH, MEMBER, HELP, ...)                                                          \
    Binding {                                                                                      \
        RecipeFieldInfo{PATH, kindOf<std::remove_reference_t<decltype(std::declval<Recipe&>().MEMBER)>>(), \
                        HELP, std::vector<std::string>{__VA_ARGS__}},                               \
            [](Recipe& r) -> FieldRef { return &r.MEMBER; }                                        \
    }

const std::vector<Binding>& bindings() {
    static const std::vector<Binding> b = {
        GL_FIELD("name", name, "Name of the recipe, shown in run lists and plots."),
        GL_FIELD("method", method, "Objective of a single-stage recipe: mae (masked autoencoder), mocov3 (contrastive), mtl (both losses on one encoder). Recipes with `stages` name one per stage.", "mae", "mocov3", "mtl", "conmim"),
        GL_FIELD("seed", seed, "Seed of every random choice (data order, augmentation, masking, init): same seed, same run."),
        GL_FIELD("device", device, "Where to train: auto (CUDA when LibTorch has it, else CPU), cpu or cuda.", "auto", "cpu", "cuda"),
        GL_FIELD("threads", threads, "CPU threads for LibTorch; 0 = all cores."),
        GL_FIELD("data.dataset", data.dataset, "Training images: fashion_mnist (Debian package dataset-fashion-mnist), synthetic (built-in, 10 procedural classes), cifar10 (binary batches in data.root) or image_folder (one sub-folder per class in data.root).", "fashion_mnist", "synthetic", "cifar10", "image_folder"),
        GL_FIELD("data.root", data.root, "Folder holding the dataset's files; empty = its standard place (Fashion-MNIST: /usr/share/datasets/fashion-mnist). Required for cifar10 and image_folder."),
        GL_FIELD("data.image_size", data.imageSize, "Side of the square training images in pixels; the data is resized to it."),
        GL_FIELD("data.synthetic_size", data.syntheticSize, "Number of training images of the synthetic set (its test split has a quarter as many)."),
        GL_FIELD("data.fallback_to_synthetic", data.fallbackToSynthetic, "When the dataset's files are missing, train on the synthetic set (with a warning) instead of failing."),
        GL_FIELD("data.augment_on", data.augmentOn, "Where each step's views are cropped, jittered and blurred: auto (on the GPU when training on CUDA, else the CPU), cpu (the loader's thread on the CPU, views copied to the GPU from pinned memory) or device (the training device: the loader uploads the batch's 8-bit images and makes the views there, leaving the CPU free; the random choices are drawn on the CPU either way, so a run sees the same crops on every device).", "auto", "cpu", "device"),
        GL_FIELD("model.patch_size", model.patchSize, "Side of a ViT patch in pixels; must divide data.image_size."),
        GL_FIELD("model.embed_dim", model.embedDim, "Width of the encoder tokens; a multiple of 4 (2-D sin-cos position embedding) and of model.num_heads."),
        GL_FIELD("model.depth", model.depth, "Number of transformer blocks in the encoder."),
        GL_FIELD("model.num_heads", model.numHeads, "Attention heads per encoder block."),
        GL_FIELD("model.mlp_ratio", model.mlpRatio, "Hidden width of each block's MLP as a multiple of embed_dim."),
        GL_FIELD("model.decoder_embed_dim", model.decoderEmbedDim, "Width of the MAE decoder tokens; a multiple of 4 and of decoder_num_heads."),
        GL_FIELD("model.decoder_depth", model.decoderDepth, "Number of transformer blocks in the MAE decoder."),
        GL_FIELD("model.decoder_num_heads", model.decoderNumHeads, "Attention heads per decoder block."),
        GL_FIELD("mae.mask_ratio", mae.maskRatio, "Fraction of patches hidden from the encoder, in (0, 1); MAE uses 0.75."),
        GL_FIELD("mae.norm_pix_loss", mae.normPixLoss, "Regress each patch normalised by its own mean and variance (MAE's norm-pix target)."),
        GL_FIELD("augment.crop_scale_min", augment.cropScaleMin, "Smallest area fraction kept by the random resized crop (MAE: 0.2)."),
        GL_FIELD("augment.crop_scale_max", augment.cropScaleMax, "Largest area fraction kept by the random resized crop (MAE: 1.0)."),
        GL_FIELD("augment.hflip", augment.hflip, "Flip images horizontally with probability 0.5."),
        GL_FIELD("augment.cl_crop_scale_min", augment.clCropScaleMin, "Smallest area fraction of the random resized crop of contrastive views (MoCo v3: 0.08)."),
        GL_FIELD("augment.jitter_prob", augment.jitterProb, "Probability of colour jitter on a contrastive view (BYOL: 0.8)."),
        GL_FIELD("augment.brightness", augment.brightness, "Colour jitter: brightness factor drawn from [1-b, 1+b]."),
        GL_FIELD("augment.contrast", augment.contrast, "Colour jitter: contrast factor drawn from [1-c, 1+c]."),
        GL_FIELD("augment.saturation", augment.saturation, "Colour jitter: saturation factor from [1-s, 1+s]; no effect on 1-channel images."),
        GL_FIELD("augment.hue", augment.hue, "Colour jitter: hue shift in [-h, h] turns; no effect on 1-channel images."),
        GL_FIELD("augment.grayscale_prob", augment.grayscaleProb, "Probability of converting a contrastive view to grayscale (identity on 1-channel images)."),
        GL_FIELD("augment.view1_blur_prob", augment.view1BlurProb, "Gaussian-blur probability of the first contrastive view (BYOL: 1.0)."),
        GL_FIELD("augment.view2_blur_prob", augment.view2BlurProb, "Gaussian-blur probability of the second contrastive view (BYOL: 0.1)."),
        GL_FIELD("augment.view1_solarize_prob", augment.view1SolarizeProb, "Solarize probability of the first contrastive view (BYOL: 0)."),
        GL_FIELD("augment.view2_solarize_prob", augment.view2SolarizeProb, "Solarize probability of the second contrastive view (BYOL: 0.2)."),
        GL_FIELD("augment.blur_sigma_min", augment.blurSigmaMin, "Smallest Gaussian-blur sigma in pixels."),
        GL_FIELD("augment.blur_sigma_max", augment.blurSigmaMax, "Largest Gaussian-blur sigma in pixels."),
        GL_FIELD("moco.temperature", moco.temperature, "InfoNCE temperature T of MoCo v3 (0.2); the loss is scaled by 2T."),
        GL_FIELD("moco.momentum", moco.momentum, "Starting momentum of the key encoder; rises to 1 on a cosine over the stage (MoCo v3: 0.99)."),
        GL_FIELD("moco.hidden_dim", moco.hiddenDim, "Hidden width of the projector and predictor MLPs."),
        GL_FIELD("moco.out_dim", moco.outDim, "Output width of the projector and predictor (the contrastive embedding)."),
        GL_FIELD("moco.frozen_patch_embed", moco.frozenPatchEmbed, "Keep the patch projection fixed: at its random initialisation (MoCo v3's stability trick), or in a grafted MoCo v3 stage as taken from the stage before (Layer Grafted Pretraining's --stop-grad-conv1; the layer_grafted preset does this, false trains it at lr_mult.embed)."),
        GL_FIELD("conmim.temperature", conmim.temperature, "Temperature of ConMIM's patch-level InfoNCE (0.1)."),
        GL_FIELD("conmim.momentum", conmim.momentum, "Starting EMA momentum of the slow model; rises to 1 on a cosine over the stage (0.996)."),
        GL_FIELD("conmim.mask_ratio", conmim.maskRatio, "Fraction of patches replaced by the learned mask token in the online input, in (0, 1)."),
        GL_FIELD("conmim.proj_dim", conmim.projDim, "Output width of the projector applied after the final LayerNorm (online and slow model)."),
        GL_FIELD("conmim.mask_style", conmim.maskStyle, "How patches are masked: blockwise (BEiT's block-wise masking, as the official ConMIM code) or random (uniformly at random, GraftLab's earlier choice).", "blockwise", "random"),
        GL_FIELD("conmim.projector", conmim.projector, "The projector after the final LayerNorm: mlp_bn (3 layers with BatchNorm, the last without affine, as the official code) or simple (Linear-GELU-Linear, GraftLab's earlier choice).", "mlp_bn", "simple"),
        GL_FIELD("conmim.proj_hidden_dim", conmim.projHiddenDim, "Hidden width of the mlp_bn projector (the official code: 4096 at ViT-B)."),
        GL_FIELD("conmim.slow_model", conmim.slowModel, "Keys from a slow (EMA) model; false = keys from the online model with stop-gradient (ablation)."),
        GL_FIELD("conmim.perturbation", conmim.perturbation, "Image perturbations: asymmetric (basic for the masked online input, strong for the slow input), strong_both, basic_both, or switched (ablations).", "asymmetric", "strong_both", "basic_both", "switched"),
        GL_FIELD("conmim.contrast", conmim.contrast, "patch: denoising patch-level contrast within each image; instance: mean of the patch tokens contrasted over the batch (ablation).", "patch", "instance"),
        GL_FIELD("conmim.masking", conmim.masking, "Mask the online input; false = patch-level contrast without masking, which the paper reports fails through trivial leakage (ablation)."),
        GL_FIELD("conmim.strong_blur_prob", conmim.strongBlurProb, "Gaussian-blur probability of the strong perturbation (0.1 as the official ConMIM code; GraftLab's earlier choice was 0.5)."),
        GL_FIELD("conmim.strong_solarize_prob", conmim.strongSolarizeProb, "Solarize probability of the strong perturbation."),
        GL_FIELD("mtl.mim_weight", mtl.mimWeight, "MTL combination: weight of the MAE loss on the minimally augmented view."),
        GL_FIELD("mtl.cl_weight", mtl.clWeight, "MTL combination: weight of the MoCo v3 loss on the two strong views."),
        GL_FIELD("optim.base_lr", optim.baseLr, "Base learning rate; the peak lr is base_lr x batch_size / 256."),
        GL_FIELD("optim.batch_size", optim.batchSize, "Images per optimisation step."),
        GL_FIELD("optim.weight_decay", optim.weightDecay, "AdamW weight decay (not applied to biases, norms and other 1-D parameters)."),
        GL_FIELD("optim.beta1", optim.beta1, "AdamW beta1 (first-moment decay)."),
        GL_FIELD("optim.beta2", optim.beta2, "AdamW beta2 (second-moment decay); MAE uses 0.95."),
        GL_FIELD("optim.warmup_steps", optim.warmupSteps, "Steps of linear learning-rate warm-up before the cosine decay."),
        GL_FIELD("optim.min_lr", optim.minLr, "Learning rate at the end of the cosine decay."),
        GL_FIELD("optim.clip_grad", optim.clipGrad, "Clip the global gradient norm to this value; 0 = no clipping."),
        GL_FIELD("train.steps", train.steps, "Total optimisation steps of the run."),
        GL_FIELD("train.log_every", train.logEvery, "Write a metrics row every this many steps."),
        GL_FIELD("train.checkpoint_every", train.checkpointEvery, "Write a checkpoint every this many steps (and always at the end or on stop)."),
        GL_FIELD("train.on_nonfinite", train.onNonFinite, "When a loss is NaN or infinite: stop (no optimizer step; the last checkpoint stays the newest) or skip that batch (the run fails after 10 skips in a row). On CUDA with LibTorch 2.x the loss is checked on the GPU: the bad step is skipped there and the stop is reported at the next log, checkpoint or probe step.", "stop", "skip"),
        GL_FIELD("train.precision", train.precision, "Arithmetic of the training forward pass: auto (bf16 autocast on CUDA, fp32 on CPU), fp32, or bf16 (autocast: matrix products in bfloat16, reductions and losses in fp32; on a CPU without bf16 instructions it is slower than fp32). Probes and evaluation always run in fp32.", "auto", "fp32", "bf16"),
        GL_FIELD("probes.every", probes.every, "Run the probes every this many steps (and at the start and end of the run); 0 = no probes. They run on the training thread and their share of the time is logged as probe_share."),
        GL_FIELD("probes.samples", probes.samples, "Number of fixed probe images (evenly spaced over the training set); the gradient-cosine probe costs two backward passes per image."),
        GL_FIELD("probes.gradcos_samples", probes.gradcosSamples, "Images of the gradient-cosine probe (evenly spaced over the training set), in chunks of probes.samples: the CL loss contrasts the images of a chunk; each image costs two backward passes."),
        GL_FIELD("probes.keep", probes.keep, "Snapshots kept per probe kind in the run's snapshots/ folder; beyond it older ones are thinned (the first, the last and an even spread stay). 0 = keep all."),
        GL_FIELD("probes.gradcos", probes.gradcos, "Per-block cosine between the gradients of the MIM and the CL loss, per probe image (Layer Grafted Pretraining); needs both heads: MTL, or a grafting stage after a stage of the other kind."),
        GL_FIELD("probes.attention", probes.attention, "Class-token attention to every patch per block and head, and attention rollout."),
        GL_FIELD("probes.similarity", probes.similarity, "Cosine similarity between patch tokens after probes.similarity_block, and for ConMIM its dictionary look-up (softmax of masked-view features against full-view keys)."),
        GL_FIELD("probes.reconstruction", probes.reconstruction, "MAE's four panels (original, masked, reconstruction, visible patches pasted) for the probe images with a fixed mask; needs an MAE decoder."),
        GL_FIELD("probes.similarity_block", probes.similarityBlock, "Block whose output patch tokens the similarity probe compares (0-based); -1 = the last block (after the final norm)."),
        GL_FIELD("probes.similarity_temperature", probes.similarityTemperature, "Temperature of the softmax in the ConMIM dictionary look-up view."),
        GL_FIELD("train.keep_every", train.keepEvery, "Besides the newest checkpoint, keep those whose step is a multiple of this; 0 = only the newest."),
    };
    return b;
}
#undef GL_FIELD

json::json_pointer pointerOf(const std::string& dotted) {
    std::string p;
    std::stringstream ss(dotted);
    std::string part;
    while (std::getline(ss, part, '.')) p += "/" + part;
    return json::json_pointer(p);
}

std::string typeName(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    return "an object";
}

void collectUnknown(const json& j, const std::string& prefix, const std::set<std::string>& leaves,
                    const std::set<std::string>& sections, std::vector<RecipeIssue>& issues) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (leaves.count(path)) continue;
        if (sections.count(path)) {
            if (!it->is_object())
                issues.push_back({path, "expected an object (section), got " + typeName(*it)});
            else
                collectUnknown(*it, path, leaves, sections, issues);
            continue;
        }
        std::string hint;
        // Suggest a known key of the same section that differs little (typo help).
        for (const auto& l : leaves) {
            auto dot = l.rfind('.');
            std::string sec = dot == std::string::npos ? "" : l.substr(0, dot);
            std::string key = dot == std::string::npos ? l : l.substr(dot + 1);
            if (sec != prefix) continue;
            size_t common = 0;
            while (common < key.size() && common < it.key().size() && key[common] == it.key()[common]) ++common;
            if (common >= 3 && hint.empty()) hint = " (did you mean \"" + l + "\"?)";
        }
        issues.push_back({path, "unknown key" + hint});
    }
}

}  // namespace

const std::vector<RecipeFieldInfo>& recipeFields() {
    static const std::vector<RecipeFieldInfo> infos = [] {
        std::vector<RecipeFieldInfo> v;
        for (const auto& b : bindings()) v.push_back(b.info);
        return v;
    }();
    return infos;
}

json Recipe::toJson() const {
    json j = json::object();
    Recipe copy = *this;
    for (const auto& b : bindings()) {
        auto ptr = pointerOf(b.info.path);
        std::visit([&](auto* p) { j[ptr] = *p; }, b.ref(copy));
    }
    if (!stages.empty()) {
        json arr = json::array();
        for (const auto& st : stages) {
            json o;
            o["name"] = st.name;
            o["method"] = st.method;
            o["steps"] = st.steps;
            o["init"] = st.init;
            o["checkpoint"] = st.checkpoint;
            o["init_modules"] = st.initModules;
            o["init_blocks"] = st.initBlocks;
            o["base_lr"] = st.baseLr;
            o["warmup_steps"] = st.warmupSteps;
            o["lr_mult"] = {{"embed", st.embedLr}, {"blocks", st.blockLr}, {"head", st.headLr}};
            arr.push_back(o);
        }
        j["stages"] = arr;
    }
    return j;
}

namespace {

void parseStages(const json& v, std::vector<StageConfig>& out, std::vector<RecipeIssue>& issues) {
    if (!v.is_array()) {
        issues.push_back({"stages", "expected an array of stage objects, got " + typeName(v)});
        return;
    }
    if (v.empty()) {
        issues.push_back({"stages", "an empty list would train the single-stage `method` under this recipe's name: give the stages, "
                                    "or remove the key for a single-stage recipe"});
        return;
    }
    for (size_t i = 0; i < v.size(); ++i) {
        std::string base = "stages[" + std::to_string(i) + "]";
        const json& o = v[i];
        StageConfig st;
        st.name = "stage " + std::to_string(i + 1);
        if (!o.is_object()) {
            issues.push_back({base, "expected an object, got " + typeName(o)});
            continue;
        }
        auto str = [&](const char* key, std::string& dst) {
            if (!o.contains(key)) return;
            if (o[key].is_string()) dst = o[key].get<std::string>();
            else issues.push_back({base + "." + key, "expected a string, got " + typeName(o[key])});
        };
        auto num = [&](const json& obj, const std::string& field, const char* key, double& dst) {
            if (!obj.contains(key)) return;
            if (obj[key].is_number()) dst = obj[key].get<double>();
            else issues.push_back({field, "expected a number, got " + typeName(obj[key])});
        };
        auto integer = [&](const char* key, int64_t& dst) {
            if (!o.contains(key)) return;
            if (o[key].is_number_integer()) dst = o[key].get<int64_t>();
            else issues.push_back({base + "." + key, "expected an integer, got " + typeName(o[key])});
        };
        str("name", st.name);
        str("method", st.method);
        integer("steps", st.steps);
        str("init", st.init);
        str("checkpoint", st.checkpoint);
        str("init_modules", st.initModules);
        if (o.contains("init_blocks")) {
            if (o["init_blocks"].is_number_integer()) st.initBlocks = int(o["init_blocks"].get<int64_t>());
            else issues.push_back({base + ".init_blocks", "expected an integer, got " + typeName(o["init_blocks"])});
        }
        num(o, base + ".base_lr", "base_lr", st.baseLr);
        integer("warmup_steps", st.warmupSteps);
        if (o.contains("lr_mult")) {
            const json& m = o["lr_mult"];
            std::string mb = base + ".lr_mult";
            if (!m.is_object()) {
                issues.push_back({mb, "expected an object {embed, blocks, head}, got " + typeName(m)});
            } else {
                num(m, mb + ".embed", "embed", st.embedLr);
                num(m, mb + ".head", "head", st.headLr);
                if (m.contains("blocks")) {
                    if (!m["blocks"].is_array()) issues.push_back({mb + ".blocks", "expected an array of numbers, one per block"});
                    else
                        for (const auto& x : m["blocks"]) {
                            if (x.is_number()) st.blockLr.push_back(x.get<double>());
                            else issues.push_back({mb + ".blocks", "expected numbers, got " + typeName(x)});
                        }
                }
                for (auto it = m.begin(); it != m.end(); ++it)
                    if (it.key() != "embed" && it.key() != "blocks" && it.key() != "head")
                        issues.push_back({mb + "." + it.key(), "unknown key (expected embed, blocks or head)"});
            }
        }
        static const std::set<std::string> known = {"name", "method", "steps", "init", "checkpoint", "init_modules", "init_blocks",
                                                    "base_lr", "warmup_steps", "lr_mult"};
        for (auto it = o.begin(); it != o.end(); ++it)
            if (!known.count(it.key())) issues.push_back({base + "." + it.key(), "unknown key"});
        out.push_back(st);
    }
}

}  // namespace

std::vector<StageConfig> Recipe::effectiveStages() const {
    if (!stages.empty()) return stages;
    StageConfig st;
    st.name = method;
    st.method = method;
    st.steps = train.steps;
    st.init = "random";
    return {st};
}

int64_t Recipe::totalSteps() const {
    int64_t t = 0;
    for (const auto& s : effectiveStages()) t += s.steps;
    return t;
}

int Recipe::stageAt(int64_t step) const {
    auto st = effectiveStages();
    int64_t end = 0;
    for (size_t i = 0; i < st.size(); ++i) {
        end += st[i].steps;
        if (step < end) return int(i);
    }
    return int(st.size()) - 1;
}

int64_t Recipe::stageStart(int stage) const {
    auto st = effectiveStages();
    int64_t start = 0;
    for (int i = 0; i < stage && i < int(st.size()); ++i) start += st[size_t(i)].steps;
    return start;
}

Recipe Recipe::fromJson(const json& j, std::vector<RecipeIssue>& issues) {
    Recipe r;
    if (!j.is_object()) {
        issues.push_back({"", "a recipe must be a JSON object, got " + typeName(j)});
        return r;
    }
    std::set<std::string> leaves, sections;
    for (const auto& b : bindings()) {
        leaves.insert(b.info.path);
        auto dot = b.info.path.find('.');
        if (dot != std::string::npos) sections.insert(b.info.path.substr(0, dot));
        auto ptr = pointerOf(b.info.path);
        if (!j.contains(ptr)) continue;
        const json& v = j.at(ptr);
        std::visit(
            [&](auto* p) {
                using T = std::remove_pointer_t<decltype(p)>;
                if constexpr (std::is_same_v<T, bool>) {
                    if (v.is_boolean()) *p = v.get<bool>();
                    else issues.push_back({b.info.path, "expected true or false, got " + typeName(v)});
                } else if constexpr (std::is_same_v<T, std::string>) {
                    if (v.is_string()) *p = v.get<std::string>();
                    else issues.push_back({b.info.path, "expected a string, got " + typeName(v)});
                } else if constexpr (std::is_same_v<T, double>) {
                    if (v.is_number()) *p = v.get<double>();
                    else issues.push_back({b.info.path, "expected a number, got " + typeName(v)});
                } else {
                    if (v.is_number_integer() || v.is_number_unsigned()) {
                        *p = static_cast<T>(v.get<int64_t>());
                    } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                               std::abs(v.get<double>()) < 9e15) {
                        *p = static_cast<T>(v.get<double>());
                    } else {
                        issues.push_back({b.info.path, "expected an integer, got " + typeName(v)});
                    }
                }
            },
            b.ref(r));
    }
    if (j.contains("stages")) parseStages(j["stages"], r.stages, issues);
    leaves.insert("stages");
    collectUnknown(j, "", leaves, sections, issues);
    return r;
}

void Recipe::validateChoices(std::vector<RecipeIssue>& e) const {
    auto oneOf = [&](const std::string& field, const std::string& value) {
        for (const auto& f : recipeFields()) {
            if (f.path != field) continue;
            if (std::find(f.choices.begin(), f.choices.end(), value) != f.choices.end()) return;
            std::string list;
            for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
            e.push_back({field, "unknown value \"" + value + "\"; expected one of: " + list});
        }
    };
    {
        // every string field with a fixed set of values
        Recipe copy = *this;
        for (const auto& b : bindings())
            if (!b.info.choices.empty())
                if (FieldRef ref = b.ref(copy); std::holds_alternative<std::string*>(ref))
                    oneOf(b.info.path, *std::get<std::string*>(ref));
    }
}

void Recipe::validateDataAndModel(std::vector<RecipeIssue>& e) const {
    if ((data.dataset == "cifar10" || data.dataset == "image_folder") && data.root.empty())
        e.push_back({"data.root", data.dataset + " needs data.root (the folder of your data)"});
    if (threads < 0) e.push_back({"threads", "must be >= 0 (0 = all cores), got " + std::to_string(threads)});
    if (int most = maxThreads(); threads > most)
        e.push_back({"threads", "at most " + std::to_string(most) + " (4x the " + std::to_string(most / 4) + " cores here), got " + std::to_string(threads)});
    if (data.imageSize <= 0) e.push_back({"data.image_size", "must be positive, got " + std::to_string(data.imageSize)});
    if (data.syntheticSize < 8) e.push_back({"data.synthetic_size", "must be at least 8, got " + std::to_string(data.syntheticSize)});
    if (model.patchSize <= 0)
        e.push_back({"model.patch_size", "must be positive, got " + std::to_string(model.patchSize)});
    else if (data.imageSize > 0 && data.imageSize % model.patchSize != 0)
        e.push_back({"model.patch_size", "patch size " + std::to_string(model.patchSize) +
                                             " does not divide data.image_size " + std::to_string(data.imageSize)});
    auto widthHeads = [&](const std::string& dimField, int dim, const std::string& headField, int heads) {
        if (dim <= 0) {
            e.push_back({dimField, "must be positive, got " + std::to_string(dim)});
            return;
        }
        if (dim % 4 != 0)
            e.push_back({dimField, "must be a multiple of 4 (2-D sin-cos position embedding), got " + std::to_string(dim)});
        if (heads <= 0)
            e.push_back({headField, "must be positive, got " + std::to_string(heads)});
        else if (dim % heads != 0)
            e.push_back({headField, std::to_string(heads) + " heads do not divide the width " + std::to_string(dim) +
                                        " (" + dimField + ")"});
    };
    widthHeads("model.embed_dim", model.embedDim, "model.num_heads", model.numHeads);
    widthHeads("model.decoder_embed_dim", model.decoderEmbedDim, "model.decoder_num_heads", model.decoderNumHeads);
    if (model.depth <= 0) e.push_back({"model.depth", "must be at least 1, got " + std::to_string(model.depth)});
    if (model.decoderDepth <= 0)
        e.push_back({"model.decoder_depth", "must be at least 1, got " + std::to_string(model.decoderDepth)});
    if (!(model.mlpRatio > 0)) e.push_back({"model.mlp_ratio", "must be positive"});
    if (!(mae.maskRatio > 0 && mae.maskRatio < 1)) {
        e.push_back({"mae.mask_ratio", "must be inside (0, 1), got " + std::to_string(mae.maskRatio)});
    } else if (data.imageSize > 0 && model.patchSize > 0 && data.imageSize % model.patchSize == 0) {
        int keep = static_cast<int>(numPatches() * (1.0 - mae.maskRatio));
        if (keep < 1)
            e.push_back({"mae.mask_ratio", "keeps no visible patch out of " + std::to_string(numPatches())});
    }
}

void Recipe::validateAugment(std::vector<RecipeIssue>& e) const {
    if (!(augment.cropScaleMin > 0 && augment.cropScaleMin <= 1))
        e.push_back({"augment.crop_scale_min", "must be inside (0, 1]"});
    if (!(augment.cropScaleMax > 0 && augment.cropScaleMax <= 1))
        e.push_back({"augment.crop_scale_max", "must be inside (0, 1]"});
    else if (augment.cropScaleMax < augment.cropScaleMin)
        e.push_back({"augment.crop_scale_max", "must be >= augment.crop_scale_min"});
    if (!(augment.clCropScaleMin > 0 && augment.clCropScaleMin <= augment.cropScaleMax))
        e.push_back({"augment.cl_crop_scale_min", "must be inside (0, augment.crop_scale_max]"});
    for (auto [field, v] : {std::pair<const char*, double>{"augment.jitter_prob", augment.jitterProb},
                            {"augment.grayscale_prob", augment.grayscaleProb},
                            {"augment.view1_blur_prob", augment.view1BlurProb},
                            {"augment.view2_blur_prob", augment.view2BlurProb},
                            {"augment.view1_solarize_prob", augment.view1SolarizeProb},
                            {"augment.view2_solarize_prob", augment.view2SolarizeProb}})
        if (!(v >= 0 && v <= 1)) e.push_back({field, "is a probability: must be inside [0, 1]"});
    for (auto [field, v] : {std::pair<const char*, double>{"augment.brightness", augment.brightness},
                            {"augment.contrast", augment.contrast}, {"augment.saturation", augment.saturation}})
        if (!(v >= 0 && v <= 1)) e.push_back({field, "must be inside [0, 1]"});
    if (!(augment.hue >= 0 && augment.hue <= 0.5)) e.push_back({"augment.hue", "must be inside [0, 0.5]"});
    if (!(augment.blurSigmaMin > 0)) e.push_back({"augment.blur_sigma_min", "must be positive"});
    if (augment.blurSigmaMax < augment.blurSigmaMin) e.push_back({"augment.blur_sigma_max", "must be >= augment.blur_sigma_min"});
}

void Recipe::validateOptimAndTrain(std::vector<RecipeIssue>& e) const {
    if (!(optim.baseLr > 0)) e.push_back({"optim.base_lr", "must be positive, got " + std::to_string(optim.baseLr)});
    if (optim.batchSize <= 0) e.push_back({"optim.batch_size", "must be positive, got " + std::to_string(optim.batchSize)});
    if (optim.weightDecay < 0) e.push_back({"optim.weight_decay", "must be >= 0"});
    if (!(optim.beta1 >= 0 && optim.beta1 < 1)) e.push_back({"optim.beta1", "must be inside [0, 1)"});
    if (!(optim.beta2 >= 0 && optim.beta2 < 1)) e.push_back({"optim.beta2", "must be inside [0, 1)"});
    if (optim.warmupSteps < 0) e.push_back({"optim.warmup_steps", "must be >= 0"});
    if (optim.minLr < 0) e.push_back({"optim.min_lr", "must be >= 0"});
    if (optim.clipGrad < 0) e.push_back({"optim.clip_grad", "must be >= 0 (0 = off)"});
    if (train.steps <= 0) e.push_back({"train.steps", "must be positive, got " + std::to_string(train.steps)});
    if (train.logEvery <= 0) e.push_back({"train.log_every", "must be positive"});
    if (train.checkpointEvery <= 0) e.push_back({"train.checkpoint_every", "must be positive"});
    if (train.keepEvery < 0) e.push_back({"train.keep_every", "must be >= 0"});
}

void Recipe::validateProbes(std::vector<RecipeIssue>& e) const {
    if (probes.every < 0) e.push_back({"probes.every", "must be >= 0 (0 = no probes)"});
    if (probes.samples < 1 || probes.samples > 256) e.push_back({"probes.samples", "must be between 1 and 256"});
    if (probes.gradcosSamples < 2 || probes.gradcosSamples > 1024) e.push_back({"probes.gradcos_samples", "must be between 2 and 1024"});
    if (probes.keep < 0) e.push_back({"probes.keep", "must be >= 0 (0 = keep all)"});
    if (probes.keep == 1) e.push_back({"probes.keep", "must be at least 2 (the first and the last snapshot) or 0"});
    if (probes.similarityBlock < -1 || probes.similarityBlock >= model.depth)
        e.push_back({"probes.similarity_block", "must be -1 (last) or a block index below model.depth (" + std::to_string(model.depth) + ")"});
    if (!(probes.similarityTemperature > 0)) e.push_back({"probes.similarity_temperature", "must be positive"});
}

void Recipe::validateMethods(std::vector<RecipeIssue>& e) const {
    if (!(moco.temperature > 0)) e.push_back({"moco.temperature", "must be positive"});
    if (!(moco.momentum >= 0 && moco.momentum <= 1)) e.push_back({"moco.momentum", "must be inside [0, 1]"});
    if (moco.hiddenDim <= 0) e.push_back({"moco.hidden_dim", "must be positive"});
    if (moco.outDim <= 0) e.push_back({"moco.out_dim", "must be positive"});
    if (mtl.mimWeight < 0) e.push_back({"mtl.mim_weight", "must be >= 0"});
    if (mtl.clWeight < 0) e.push_back({"mtl.cl_weight", "must be >= 0"});
    if (!(conmim.temperature > 0)) e.push_back({"conmim.temperature", "must be positive"});
    if (!(conmim.momentum >= 0 && conmim.momentum <= 1)) e.push_back({"conmim.momentum", "must be inside [0, 1]"});
    if (conmim.projDim <= 0) e.push_back({"conmim.proj_dim", "must be positive"});
    if (conmim.projHiddenDim <= 0) e.push_back({"conmim.proj_hidden_dim", "must be positive"});
    if (conmim.maskStyle != "blockwise" && conmim.maskStyle != "random")
        e.push_back({"conmim.mask_style", "expected blockwise or random, got \"" + conmim.maskStyle + "\""});
    if (conmim.projector != "mlp_bn" && conmim.projector != "simple")
        e.push_back({"conmim.projector", "expected mlp_bn or simple, got \"" + conmim.projector + "\""});
    if (!(conmim.strongBlurProb >= 0 && conmim.strongBlurProb <= 1)) e.push_back({"conmim.strong_blur_prob", "is a probability: must be inside [0, 1]"});
    if (!(conmim.strongSolarizeProb >= 0 && conmim.strongSolarizeProb <= 1)) e.push_back({"conmim.strong_solarize_prob", "is a probability: must be inside [0, 1]"});
    bool usesConMim = method == "conmim";
    for (const auto& st : stages) usesConMim = usesConMim || st.method == "conmim";
    if (usesConMim && conmim.masking && !(conmim.maskRatio > 0 && conmim.maskRatio < 1))
        e.push_back({"conmim.mask_ratio", "ConMIM with masking needs a mask ratio inside (0, 1), got " + std::to_string(conmim.maskRatio) +
                                              " (set conmim.masking to false for the unmasked ablation)"});
    else if (usesConMim && conmim.masking && data.imageSize > 0 && model.patchSize > 0 && data.imageSize % model.patchSize == 0 &&
             int(numPatches() * conmim.maskRatio) < 1)
        e.push_back({"conmim.mask_ratio", "masks no patch out of " + std::to_string(numPatches())});
}

void Recipe::validateStages(std::vector<RecipeIssue>& e) const {
    static const std::set<std::string> methods(kMethods.begin(), kMethods.end());
    for (size_t i = 0; i < stages.size(); ++i) {
        const auto& st = stages[i];
        std::string b = "stages[" + std::to_string(i) + "]";
        if (!methods.count(st.method)) e.push_back({b + ".method", "unknown method \"" + st.method + "\"; expected mae, mocov3, mtl or conmim"});
        if (st.steps <= 0) e.push_back({b + ".steps", "must be positive"});
        if (st.init != "random" && st.init != "previous" && st.init != "checkpoint")
            e.push_back({b + ".init", "expected random, previous or checkpoint, got \"" + st.init + "\""});
        if (i == 0 && st.init == "previous") e.push_back({b + ".init", "the first stage has no previous stage (use random or checkpoint)"});
        if (st.init == "checkpoint" && st.checkpoint.empty()) e.push_back({b + ".checkpoint", "init = checkpoint needs a checkpoint file"});
        if (st.initModules != "encoder" && st.initModules != "all")
            e.push_back({b + ".init_modules", "expected encoder or all, got \"" + st.initModules + "\""});
        if (st.initBlocks < -1 || st.initBlocks > model.depth)
            e.push_back({b + ".init_blocks", "must be -1 (every block) or 0.." + std::to_string(model.depth) + " (model.depth)"});
        if (st.initBlocks >= 0 && st.init == "random")
            e.push_back({b + ".init_blocks", "takes blocks from the previous stage or a checkpoint; init is random"});
        if (st.baseLr < 0) e.push_back({b + ".base_lr", "must be >= 0 (0 = optim.base_lr)"});
        if (st.embedLr < 0) e.push_back({b + ".lr_mult.embed", "must be >= 0 (0 = frozen)"});
        if (st.headLr < 0) e.push_back({b + ".lr_mult.head", "must be >= 0 (0 = frozen)"});
        if (!st.blockLr.empty() && int(st.blockLr.size()) != model.depth)
            e.push_back({b + ".lr_mult.blocks", "has " + std::to_string(st.blockLr.size()) + " multipliers for " +
                                                    std::to_string(model.depth) + " blocks (model.depth)"});
        for (double m : st.blockLr)
            if (m < 0) e.push_back({b + ".lr_mult.blocks", "multipliers must be >= 0 (0 = frozen)"});
    }
}

std::vector<RecipeIssue> Recipe::validate() const {
    std::vector<RecipeIssue> e;
    validateChoices(e);
    validateDataAndModel(e);
    validateAugment(e);
    validateOptimAndTrain(e);
    validateProbes(e);
    validateMethods(e);
    validateStages(e);
    return e;
}

void applyOverride(json& j, const std::string& assignment, std::vector<RecipeIssue>& issues) {
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
        issues.push_back({"", "--set expects dotted.key=value, got \"" + assignment + "\""});
        return;
    }
    std::string key = assignment.substr(0, eq);
    std::string text = assignment.substr(eq + 1);
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // bare words are strings: --set data.dataset=synthetic
    try {
        j[pointerOf(key)] = value;
    } catch (const json::exception& ex) {
        issues.push_back({key, std::string("cannot set: ") + ex.what()});
    }
}

Recipe parseRecipeText(const std::string& text, const std::string& origin, const std::vector<std::string>& overrides,
                       std::vector<RecipeIssue>& issues) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& ex) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i + 1 < ex.byte && i < text.size(); ++i) {
            if (text[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        std::string what = ex.what();
        auto pos = what.find("syntax error");
        issues.push_back({"", origin + ":" + std::to_string(line) + ":" + std::to_string(col) + ": malformed JSON (" +
                                  (pos == std::string::npos ? what : what.substr(pos)) + ")"});
        return Recipe{};
    } catch (const json::exception& ex) {
        // e.g. out_of_range 406 "number overflow parsing '1e999'" (found by fuzzing): it carries no position, so the
        // quoted token is looked up in the text
        std::string what = ex.what();
        std::string where = origin;
        auto q1 = what.find('\''), q2 = what.rfind('\'');
        if (q1 != std::string::npos && q2 > q1 + 1) {
            size_t at = text.find(what.substr(q1 + 1, q2 - q1 - 1));
            if (at != std::string::npos) {
                size_t line = 1 + size_t(std::count(text.begin(), text.begin() + at, '\n'));
                size_t lineStart = text.rfind('\n', at == 0 ? 0 : at - 1);
                size_t col = at == 0 || lineStart == std::string::npos ? at + 1 : at - lineStart;
                where += ":" + std::to_string(line) + ":" + std::to_string(col);
            }
        }
        auto bracket = what.find("] ");
        issues.push_back({"", where + ": malformed JSON (" + (bracket == std::string::npos ? what : what.substr(bracket + 2)) +
                                  (ex.id == 406 ? ": the number does not fit a double)" : ")")});
        return Recipe{};
    }
    for (const auto& o : overrides) applyOverride(j, o, issues);
    return Recipe::fromJson(j, issues);
}

Recipe loadRecipeFile(const std::string& path, const std::vector<std::string>& overrides,
                      std::vector<RecipeIssue>& issues) {
    return parseRecipeText(readFile(path), path, overrides, issues);
}

std::string formatIssues(const std::vector<RecipeIssue>& issues) {
    std::string s;
    for (const auto& i : issues) s += "  " + (i.field.empty() ? std::string("recipe") : i.field) + ": " + i.message + "\n";
    return s;
}

int maxThreads() { return 4 * int(std::max(1u, std::thread::hardware_concurrency())); }

double Recipe::peakLr(int stage, int world) const {
    const auto all = effectiveStages();
    const double stageBase = stage >= 0 && size_t(stage) < all.size() ? all[size_t(stage)].baseLr : 0.0;
    const double base = stageBase > 0 ? stageBase : optim.baseLr;
    return linearScaledLr(base, int64_t(optim.batchSize) * world);
}

}  // namespace graftlab
