#include "recipe/Recipe.h"
#include "util/AtomicFile.h"

#include <functional>
#include <set>
#include <sstream>
#include <variant>

namespace graftlab {
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
        GL_FIELD("method", method, "Pretraining objective: mae = masked autoencoder with pixel targets.", "mae"),
        GL_FIELD("seed", seed, "Seed of every random choice (data order, augmentation, masking, init): same seed, same run."),
        GL_FIELD("device", device, "Where to train: auto (CUDA when LibTorch has it, else CPU), cpu or cuda.", "auto", "cpu", "cuda"),
        GL_FIELD("threads", threads, "CPU threads for LibTorch; 0 = all cores."),
        GL_FIELD("data.dataset", data.dataset, "Training images: fashion_mnist (Debian package dataset-fashion-mnist) or synthetic (built-in, 10 procedural classes).", "fashion_mnist", "synthetic"),
        GL_FIELD("data.root", data.root, "Folder holding the dataset's files; empty = its standard place (/usr/share/datasets/fashion-mnist)."),
        GL_FIELD("data.image_size", data.imageSize, "Side of the square training images in pixels; the data is resized to it."),
        GL_FIELD("data.synthetic_size", data.syntheticSize, "Number of training images of the synthetic set (its test split has a quarter as many)."),
        GL_FIELD("data.fallback_to_synthetic", data.fallbackToSynthetic, "When the dataset's files are missing, train on the synthetic set (with a warning) instead of failing."),
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
    return j;
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
    collectUnknown(j, "", leaves, sections, issues);
    return r;
}

std::vector<RecipeIssue> Recipe::validate() const {
    std::vector<RecipeIssue> e;
    auto oneOf = [&](const std::string& field, const std::string& value) {
        for (const auto& f : recipeFields()) {
            if (f.path != field) continue;
            if (std::find(f.choices.begin(), f.choices.end(), value) != f.choices.end()) return;
            std::string list;
            for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
            e.push_back({field, "unknown value \"" + value + "\"; expected one of: " + list});
        }
    };
    oneOf("method", method);
    oneOf("device", device);
    oneOf("data.dataset", data.dataset);
    if (threads < 0) e.push_back({"threads", "must be >= 0 (0 = all cores), got " + std::to_string(threads)});
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
    if (!(augment.cropScaleMin > 0 && augment.cropScaleMin <= 1))
        e.push_back({"augment.crop_scale_min", "must be inside (0, 1]"});
    if (!(augment.cropScaleMax > 0 && augment.cropScaleMax <= 1))
        e.push_back({"augment.crop_scale_max", "must be inside (0, 1]"});
    else if (augment.cropScaleMax < augment.cropScaleMin)
        e.push_back({"augment.crop_scale_max", "must be >= augment.crop_scale_min"});
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

}  // namespace graftlab
