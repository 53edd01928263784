#include "import/ImportModel.h"

#include "base/export/Safetensors.h"
#include "base/import/TorchFile.h"
#include "methods/MocoV3.h"
#include "methods/Objective.h"
#include "base/recipe/Recipe.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/Sha256.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <regex>
#include <set>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

using Tensors = std::map<std::string, torch::Tensor>;

const std::vector<float> kImageNetMean = {0.485f, 0.456f, 0.406f};
const std::vector<float> kImageNetStd = {0.229f, 0.224f, 0.225f};

bool startsWith(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string shapeOf(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
}

torch::Dtype torchDtype(const std::string& d) {
    static const std::map<std::string, torch::Dtype> m = {
        {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F64", torch::kFloat64},
        {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},    {"I8", torch::kInt8},
        {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
    auto it = m.find(d);
    if (it == m.end()) throw std::runtime_error("dtype " + d);
    return it->second;
}

// A pickled tensor as a view of the mapped file (no copy: the model it is copied into holds the only copy, and the
// pages are handed back right after; the view keeps the mapping alive).
torch::Tensor tensorFrom(const std::shared_ptr<TorchFile>& f, const PickledTensor& t) {
    const char* p = f->tensorData(t);
    return torch::from_blob(const_cast<char*>(p), t.shape, t.stride, [f](void*) {}, torch::TensorOptions().dtype(torchDtype(t.dtype)));
}

// Hands back the mapped pages under a view made by tensorFrom (nothing for a tensor of its own).
void releaseView(const std::shared_ptr<const FileBytes>& bytes, const torch::Tensor& t) {
    if (!bytes || !t.defined() || !t.has_storage()) return;
    const char* p = static_cast<const char*>(t.storage().data());
    if (p >= bytes->data() && p < bytes->data() + bytes->size()) bytes->release(p, t.storage().nbytes());
}

// Argparse Namespace / dict of plain values as JSON (tensors and deeper containers left out).
nlohmann::json plainJson(const PickleValue* v) {
    using K = PickleValue::Kind;
    if (!v) return nullptr;
    switch (v->kind) {
    case K::Bool: return v->boolean;
    case K::Int: return v->integer;
    case K::Float: return std::isfinite(v->number) ? nlohmann::json(v->number) : nlohmann::json(nullptr);
    case K::String: return v->text;
    case K::Dict:
    case K::Object: {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [k, x] : v->entries)
            if (k->isString() && (x->kind == K::Bool || x->kind == K::Int || x->kind == K::Float || x->kind == K::String ||
                                  x->kind == K::None))
                j[k->text] = plainJson(x);
        return j;
    }
    default: return nullptr;
    }
}

struct Source {
    Tensors tensors;           // the state dict, names as stored (a DDP "module." prefix removed)
    nlohmann::json args;       // MAE's / DINO's args, when the file has them
    std::string arch;          // MoCo v3's arch, or MAE's args.model
    std::string container;     // where the state dict was: "model", "state_dict", "teacher" or "" (bare)
    std::vector<std::string> topKeys;
    std::string format;        // zip, legacy, safetensors
    std::shared_future<std::string> sha256;  // computed on another core while the file is read
    std::shared_ptr<const FileBytes> mapped;  // the file the tensors view (torch.save formats)
};

Source readSource(const std::string& path) {
    Source s;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw FileError(path, "no such file");
    auto bytes = FileBytes::map(path);
    s.sha256 = std::async(std::launch::async, [bytes] {
                   Sha256 h;
                   constexpr size_t chunk = size_t(8) << 20;  // hashed pages handed back as it goes
                   for (size_t at = 0; at < bytes->size(); at += chunk) {
                       size_t n = std::min(chunk, bytes->size() - at);
                       h.update(bytes->data() + at, n);
                       bytes->release(bytes->data() + at, n);
                   }
                   return h.hex();
               }).share();
    bool safetensors = bytes->size() >= 9 && bytes->data()[8] == '{';
    if (safetensors) {
        s.format = "safetensors";
        s.sha256.wait();
        bytes.reset();
        auto c = readSafetensors(path);
        for (const auto& t : c.tensors) {
            auto blob = torch::from_blob(const_cast<char*>(t.bytes.data()), t.shape, torch::TensorOptions().dtype(torchDtype(t.dtype)));
            s.tensors[t.name] = blob.clone();
        }
        return s;
    }
    std::shared_ptr<TorchFile> f = parseTorchFile(bytes, path);
    f->bytes->releaseAll();  // the zip's CRC pass touched every page
    s.mapped = f->bytes;
    s.format = f->format;
    const PickleValue* root = f->root;
    const PickleValue* sd = nullptr;
    if (root->kind == PickleValue::Kind::Dict) {
        for (const auto& [k, v] : root->entries)
            if (k->isString()) s.topKeys.push_back(k->text);
        for (const char* key : {"state_dict", "model", "teacher", "module"}) {
            const PickleValue* v = root->get(key);
            if (v && v->kind == PickleValue::Kind::Dict) {
                sd = v;
                s.container = key;
                break;
            }
        }
        if (!sd) {
            bool allTensors = !root->entries.empty();
            for (const auto& [k, v] : root->entries) allTensors = allTensors && k->isString() && v->kind == PickleValue::Kind::Tensor;
            if (allTensors) sd = root;
        }
        if (auto* a = root->get("args")) s.args = plainJson(a);
        if (auto* a = root->get("arch"); a && a->isString()) s.arch = a->text;
        if (s.arch.empty() && s.args.is_object()) {
            for (const char* key : {"model", "arch"})
                if (s.args.contains(key) && s.args[key].is_string()) {
                    s.arch = s.args[key].get<std::string>();
                    break;
                }
        }
    }
    if (!sd) {
        std::string keys;
        for (const auto& k : s.topKeys) keys += (keys.empty() ? "" : ", ") + k;
        throw FileError(path, "holds no state dict of tensors (top-level: " + (keys.empty() ? root->repr() : keys) +
                                  "); GraftLab reads {'model': ...}, {'state_dict': ...}, {'teacher': ...} or a bare state dict");
    }
    for (const auto& [k, v] : sd->entries) {
        if (!k->isString()) continue;
        if (v->kind != PickleValue::Kind::Tensor) continue;
        try {
            s.tensors[k->text] = tensorFrom(f, v->tensor);
        } catch (const FileError&) {
            throw;
        } catch (const std::exception& e) {
            throw FileError(path, "tensor \"" + k->text + "\" cannot be read (" + e.what() + ")");
        }
    }
    if (s.tensors.empty()) throw FileError(path, "its " + (s.container.empty() ? std::string("state dict") : "'" + s.container + "'") + " holds no tensors");
    return s;
}

// Removes `prefix` from every name that has it (all must, for a DDP "module."), or keeps only those with it.
Tensors stripPrefix(const Tensors& in, const std::string& prefix, bool onlyThose) {
    Tensors out;
    for (const auto& [k, v] : in) {
        if (startsWith(k, prefix)) out[k.substr(prefix.size())] = v;
        else if (!onlyThose) out[k] = v;
    }
    return out;
}

const std::regex kEncoderKey(R"((cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)))");

// Parts of other ViT variants that GraftLab's ViT has no place for: refused by name, never loaded half.
std::vector<std::string> unsupportedFeatures(const std::vector<std::string>& keys) {
    struct Feature {
        std::regex re;
        const char* what;
    };
    static const std::vector<Feature> features = {
        {std::regex(R"((^|\.)(gamma_1|gamma_2|ls1\.gamma|ls2\.gamma)$)"), "layer scale (blocks.N.gamma_1/gamma_2 or ls1/ls2.gamma)"},
        {std::regex(R"(attn\.(q_bias|v_bias)$)"), "separate q/v biases (attn.q_bias, attn.v_bias)"},
        {std::regex(R"(relative_position)"), "relative position bias (relative_position_bias_table)"},
        {std::regex(R"(^(dist_token|reg_token))"), "distillation or register tokens"},
        {std::regex(R"(attn\.(q_norm|k_norm))"), "qk normalisation (attn.q_norm, attn.k_norm)"},
        {std::regex(R"(^norm_pre\.)"), "a pre-norm before the blocks (norm_pre)"},
        {std::regex(R"(^fc_norm\.)"), "global-pool norm of a fine-tuned model (fc_norm)"},
        {std::regex(R"(^patch_embed\.proj\.\d+\.)"), "a convolutional stem (patch_embed.proj.N: MoCo v3's vit_conv_*)"},
        {std::regex(R"(^(lm_head|head\.(layers|mlp|last_layer)))"), "a BEiT/ConMIM or DINO pretraining head"},
    };
    std::vector<std::string> found;
    for (const auto& f : features)
        for (const auto& k : keys)
            if (std::regex_search(k, f.re)) {
                found.push_back(std::string(f.what) + ", e.g. \"" + k + "\"");
                break;
            }
    return found;
}

struct Arch {
    int dim = 0, depth = 0, patch = 0, chans = 0, grid = 0, hidden = 0;
    bool qkvBias = true;
};

Arch encoderArch(const Tensors& enc, const std::string& path, const std::string& where) {
    auto need = [&](const std::string& k) -> const torch::Tensor& {
        auto it = enc.find(k);
        if (it == enc.end()) throw FileError(path, where + "lacks \"" + k + "\": not a ViT GraftLab can hold");
        return it->second;
    };
    Arch a;
    const auto& cls = need("cls_token");
    a.dim = int(cls.size(-1));
    const auto& pw = need("patch_embed.proj.weight");
    if (pw.dim() != 4 || pw.size(2) != pw.size(3) || pw.size(0) != a.dim)
        throw FileError(path, where + "patch_embed.proj.weight has shape " + shapeOf(pw) + ": not a square patch embedding of width " + std::to_string(a.dim));
    a.patch = int(pw.size(2));
    a.chans = int(pw.size(1));
    if (!enc.count("pos_embed"))
        throw FileError(path, where + "has no absolute position embedding (pos_embed): a model with relative position bias only "
                                      "(BEiT, ConMIM) is not one GraftLab's ViT can hold");
    const auto& pos = enc.at("pos_embed");
    int64_t tokens = pos.size(1) - 1;
    int64_t g = int64_t(std::llround(std::sqrt(double(std::max<int64_t>(tokens, 0)))));
    if (pos.dim() != 3 || g * g != tokens || pos.size(2) != a.dim)
        throw FileError(path, where + "pos_embed has shape " + shapeOf(pos) +
                                  ": GraftLab's ViT needs a class-token slot plus a square grid of patches");
    a.grid = int(g);
    while (enc.count("blocks." + std::to_string(a.depth) + ".norm1.weight")) ++a.depth;
    if (a.depth == 0) throw FileError(path, where + "has no transformer blocks (blocks.0.*)");
    a.hidden = int(need("blocks.0.mlp.fc1.weight").size(0));
    a.qkvBias = enc.count("blocks.0.attn.qkv.bias") > 0;
    for (int b = 0; b < a.depth; ++b) {
        std::string p = "blocks." + std::to_string(b) + ".";
        for (const char* k : {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias", "norm2.weight",
                              "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"})
            need(p + k);
        if (enc.count(p + "attn.qkv.bias") != (a.qkvBias ? 1u : 0u)) throw FileError(path, where + "has a qkv bias in some blocks only");
    }
    need("norm.weight");
    need("norm.bias");
    need("patch_embed.proj.bias");
    return a;
}

// timm's resample_abs_pos_embed: the patch grid resized bicubically, the class token's slot kept.
torch::Tensor resamplePosEmbed(const torch::Tensor& pos, int newGrid) {
    int64_t D = pos.size(2), g = int64_t(std::llround(std::sqrt(double(pos.size(1) - 1))));
    if (g == newGrid) return pos;
    namespace F = torch::nn::functional;
    auto grid = pos.slice(1, 1).reshape({1, g, g, D}).permute({0, 3, 1, 2}).to(torch::kFloat32);
    grid = F::interpolate(grid, F::InterpolateFuncOptions().size(std::vector<int64_t>{newGrid, newGrid}).mode(torch::kBicubic).align_corners(false));
    grid = grid.permute({0, 2, 3, 1}).reshape({1, int64_t(newGrid) * newGrid, D});
    return torch::cat({pos.slice(1, 0, 1).to(torch::kFloat32), grid}, 1);
}

}  // namespace

int headsFor(int width, const std::string& modelName, std::string& source, bool mocoNames) {
    // Model names that fix the heads: facebookresearch/mae models_mae.py, moco-v3 vits.py (12 heads at ViT-S), timm.
    static const std::vector<std::tuple<std::string, int, int>> named = {
        {"vit_base", 768, 12},          {"mae_vit_base_patch16", 768, 12},
        {"mae_vit_large_patch16", 1024, 16}, {"mae_vit_huge_patch14", 1280, 16}, {"vit_large", 1024, 16},
        {"vit_huge", 1280, 16},        {"vit_tiny", 192, 3},           {"deit_small", 384, 6},
        {"deit_tiny", 192, 3},         {"deit_base", 768, 12}};
    std::string lower = modelName;
    for (auto& c : lower) c = char(std::tolower(uint8_t(c)));
    if (mocoNames && width == 384 && (lower == "vit_small" || lower == "vit_conv_small")) {
        source = "the checkpoint's model name \"" + modelName + "\" (moco-v3's vits.py: 12 heads)";
        return 12;
    }
    for (const auto& [name, w, h] : named)
        if (w == width && (lower == name || startsWith(lower, name + "_") || startsWith(lower, name + "16") || startsWith(lower, name + "8"))) {
            source = "the checkpoint's model name \"" + modelName + "\"";
            return h;
        }
    static const std::map<int, int> table = {{192, 3}, {384, 6}, {768, 12}, {1024, 16}, {1280, 16}};
    if (auto it = table.find(width); it != table.end()) {
        source = "the standard ViT table (width " + std::to_string(width) + ")";
        return it->second;
    }
    source = "width / 64 (no model name or table entry; set model.num_heads if that is wrong)";
    return std::max(1, width / 64);
}

ImportResult importModel(const std::string& file, const std::string& outDir, const ImportOptions& options) {
    ImportResult res;
    RunLayout layout(outDir);
    std::error_code ec;
    const std::string ckptDir = layout.checkpoints();
    if (fs::exists(outDir, ec) && !fs::is_empty(outDir, ec)) {
        bool isImport = fs::exists(fs::path(outDir) / "import.json", ec);
        if (!options.force || !isImport)
            throw FileError(outDir, isImport ? "already holds an imported model (--force replaces it)"
                                             : "exists and is not empty: choose a new directory (an import never writes into a run)");
    }

    Source src = readSource(file);
    std::vector<std::string> notes;
    Tensors all = src.tensors;
    // DDP's "module." prefix on every name
    bool allModule = true;
    for (const auto& [k, v] : all) allModule = allModule && startsWith(k, "module.");
    if (allModule) all = stripPrefix(all, "module.", false);

    Tensors enc, dec, proj, menc, mproj, pred;
    std::vector<std::string> dropped, unknown;
    bool moco = false;
    for (const auto& [k, v] : all) moco = moco || startsWith(k, "base_encoder.");
    if (src.container == "teacher") {  // DINO training checkpoint: the teacher's backbone
        all = stripPrefix(all, "backbone.", true);
        notes.push_back("DINO training checkpoint: the teacher's backbone is imported; the DINO head is left out");
    }
    if (moco) {
        for (const auto& [k, v] : all) {
            if (startsWith(k, "base_encoder.head.")) proj[k.substr(18)] = v;
            else if (startsWith(k, "base_encoder.")) enc[k.substr(13)] = v;
            else if (startsWith(k, "momentum_encoder.head.")) mproj[k.substr(22)] = v;
            else if (startsWith(k, "momentum_encoder.")) menc[k.substr(17)] = v;
            else if (startsWith(k, "predictor.")) pred[k.substr(10)] = v;
            else unknown.push_back(k);
        }
        for (const auto& [k, v] : enc)
            if (!std::regex_match(k, kEncoderKey)) unknown.push_back("base_encoder." + k);
        for (const auto& [k, v] : menc)
            if (!std::regex_match(k, kEncoderKey)) unknown.push_back("momentum_encoder." + k);
    } else {
        static const std::regex decKey(R"((mask_token|decoder_embed\.(weight|bias)|decoder_pos_embed|decoder_norm\.(weight|bias)|decoder_pred\.(weight|bias)|decoder_blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)))");
        for (const auto& [k, v] : all) {
            if (std::regex_match(k, kEncoderKey)) enc[k] = v;
            else if (std::regex_match(k, decKey)) dec[k] = v;
            else if (k == "head.weight" || k == "head.bias") dropped.push_back(k);
            else unknown.push_back(k);
        }
    }
    std::vector<std::string> names;
    for (const auto& [k, v] : all) names.push_back(k);
    auto features = unsupportedFeatures(names);
    if (!features.empty() || (enc.count("cls_token") && !enc.count("pos_embed") && dec.count("mask_token"))) {
        std::string msg = "is a ViT with parts GraftLab's ViT does not have";
        if (dec.count("mask_token") && !dec.count("decoder_embed.weight")) msg += " (BEiT / ConMIM layout)";
        msg += ":";
        for (const auto& f : features) msg += "\n  - " + f;
        if (!enc.count("pos_embed")) msg += "\n  - no absolute position embedding (pos_embed)";
        throw FileError(file, msg + "\nNothing was imported: GraftLab loads a model whole or not at all.");
    }
    if (!unknown.empty()) {
        std::string list;
        for (size_t i = 0; i < unknown.size() && i < 5; ++i) list += (i ? ", " : "") + std::string("\"") + unknown[i] + "\"";
        throw FileError(file, std::to_string(unknown.size()) + " tensor(s) have no place in GraftLab's ViT, MAE decoder or MoCo v3 heads (" +
                                  list + (unknown.size() > 5 ? ", ..." : "") + "); nothing was imported");
    }
    const std::string where = moco ? "its base encoder " : "its encoder ";
    Arch a = encoderArch(enc, file, where);
    if (a.hidden % a.dim != 0) throw FileError(file, "MLP width " + std::to_string(a.hidden) + " is not a whole multiple of the width " + std::to_string(a.dim));
    if (!a.qkvBias) {
        for (int b = 0; b < a.depth; ++b) enc["blocks." + std::to_string(b) + ".attn.qkv.bias"] = torch::zeros({3 * a.dim});
        notes.push_back("no qkv bias in the file (qkv_bias=False): zero biases, the same function");
    }
    if (moco) {
        Arch m = encoderArch(menc, file, "its momentum encoder ");
        if (m.dim != a.dim || m.depth != a.depth || m.patch != a.patch || m.grid != a.grid || m.hidden != a.hidden || m.qkvBias != a.qkvBias)
            throw FileError(file, "its momentum encoder has another architecture than its base encoder");
        if (!m.qkvBias)
            for (int b = 0; b < m.depth; ++b) menc["blocks." + std::to_string(b) + ".attn.qkv.bias"] = torch::zeros({3 * m.dim});
    }
    const bool hasDecoder = !dec.empty();
    const bool hasCl = moco && !proj.empty() && !pred.empty() && !mproj.empty();
    if (moco && !hasCl) throw FileError(file, "a MoCo v3 checkpoint without all of its heads (base_encoder.head, momentum_encoder.head, predictor)");

    // The recipe the model is held in.
    Recipe r;
    std::string stem = fs::path(file).filename().string();
    for (const char* ext : {".tar", ".pth", ".pt", ".safetensors", ".ckpt", ".bin"})
        if (stem.size() > strlen(ext) && stem.compare(stem.size() - strlen(ext), strlen(ext), ext) == 0) stem.resize(stem.size() - strlen(ext));
    r.name = "imported-" + stem;
    r.method = hasCl ? "mocov3" : "mae";
    r.data.dataset = "synthetic";
    r.data.imageSize = options.imageSize > 0 ? options.imageSize : a.grid * a.patch;
    if (r.data.imageSize % a.patch != 0)
        throw RecipeError("data.image_size", std::to_string(r.data.imageSize) + " px is not a multiple of the patch size " + std::to_string(a.patch));
    r.model.patchSize = a.patch;
    r.model.embedDim = a.dim;
    r.model.depth = a.depth;
    std::string headsSource, decoderHeadsSource = "models_mae.py's 16";
    r.model.numHeads = headsFor(a.dim, src.arch, headsSource, moco);
    r.model.mlpRatio = double(a.hidden) / a.dim;
    if (hasDecoder) {
        auto it = dec.find("decoder_embed.weight");
        if (it == dec.end()) throw FileError(file, "has decoder tensors but no decoder_embed.weight: an incomplete MAE decoder");
        r.model.decoderEmbedDim = int(it->second.size(0));
        int d = 0;
        while (dec.count("decoder_blocks." + std::to_string(d) + ".norm1.weight")) ++d;
        r.model.decoderDepth = d;
        r.model.decoderNumHeads = r.model.decoderEmbedDim % 16 == 0 ? 16 : std::max(1, r.model.decoderEmbedDim / 32);  // models_mae.py: 16
        if (r.model.decoderNumHeads != 16) decoderHeadsSource = "width / 32";
        if (d > 0 && dec.at("decoder_blocks.0.mlp.fc1.weight").size(0) != int64_t(std::llround(r.model.decoderEmbedDim * r.model.mlpRatio)))
            throw FileError(file, "its decoder's MLP ratio differs from its encoder's: GraftLab's MAE uses one ratio for both");
        if (!dec.count("decoder_blocks.0.attn.qkv.bias"))
            for (int b = 0; b < d; ++b) dec["decoder_blocks." + std::to_string(b) + ".attn.qkv.bias"] = torch::zeros({3 * r.model.decoderEmbedDim});
    }
    if (hasCl) {
        if (!proj.count("0.weight") || !proj.count("6.weight") || !pred.count("0.weight") || !pred.count("3.weight"))
            throw FileError(file, "its MoCo v3 heads are not moco-v3's _build_mlp (3-layer projector head.0/3/6, 2-layer predictor 0/3)");
        r.moco.hiddenDim = int(proj.at("0.weight").size(0));
        r.moco.outDim = int(proj.at("6.weight").size(0));
    }
    if (src.args.is_object()) {
        if (src.args.contains("mask_ratio") && src.args["mask_ratio"].is_number()) r.mae.maskRatio = src.args["mask_ratio"].get<double>();
        if (src.args.contains("norm_pix_loss") && src.args["norm_pix_loss"].is_boolean()) r.mae.normPixLoss = src.args["norm_pix_loss"].get<bool>();
    }
    // --set on top; the heads, the dataset the probes and eval use, ...
    std::vector<RecipeIssue> issues;
    r = parseRecipeText(r.toJson().dump(), file, options.overrides, issues);
    if (issues.empty()) issues = r.validate();
    if (!issues.empty()) throw RecipeError(issues.front().field, issues.front().message);
    for (const char* key : {"model.patch_size", "model.embed_dim", "model.depth", "model.mlp_ratio", "model.decoder_embed_dim", "model.decoder_depth"})
        for (const auto& o : options.overrides)
            if (startsWith(o, std::string(key) + "="))
                throw RecipeError(key, "comes from the checkpoint's tensors and cannot be set on import");
    for (const auto& o : options.overrides)
        if (startsWith(o, "model.num_heads=")) headsSource = "--set model.num_heads";
    for (const auto& o : options.overrides)
        if (startsWith(o, "model.decoder_num_heads=")) decoderHeadsSource = "--set model.decoder_num_heads";
    if (a.dim % r.model.numHeads != 0)
        throw RecipeError("model.num_heads", std::to_string(r.model.numHeads) + " heads do not divide the width " + std::to_string(a.dim));
    int newGrid = r.data.imageSize / a.patch;

    // The objective, then every tensor copied in by name with its shape checked.
    torch::manual_seed(0);
    auto objective = makeObjective(r, r.method, a.chans, kImageNetMean, kImageNetStd);
    std::map<std::string, torch::Tensor> target;
    for (auto& p : objective->named_parameters(true)) target[p.key()] = p.value();
    for (auto& b : objective->named_buffers(true)) target[b.key()] = b.value();
    std::set<std::string> filled;
    torch::NoGradGuard ng;
    auto put = [&](const std::string& name, torch::Tensor src_, const std::string& from) {
        auto it = target.find(name);
        if (it == target.end()) throw std::logic_error("import maps \"" + from + "\" to \"" + name + "\", which the model lacks");
        if (name == "encoder.pos_embed" || name == "moco.momentum_encoder.pos_embed" || name == "decoder.pos_embed") {
            auto resampled = resamplePosEmbed(src_, newGrid);
            if (!resampled.is_same(src_)) releaseView(src.mapped, src_);
            src_ = resampled;
        }
        if (src_.sizes() != it->second.sizes())
            throw FileError(file, "tensor \"" + from + "\" has shape " + shapeOf(src_) + " but GraftLab's model expects " +
                                      shapeOf(it->second) + " for it (\"" + name + "\")");
        it->second.copy_(src_);
        releaseView(src.mapped, src_);
        filled.insert(name);
    };
    for (auto& [k, v] : enc) put("encoder." + k, v, k);
    if (hasDecoder) {
        for (auto& [k, v] : dec) {
            std::string n = k == "mask_token" ? "decoder.mask_token"
                            : k == "decoder_pos_embed" ? "decoder.pos_embed"
                            : "decoder." + k.substr(8);  // decoder_embed.* -> decoder.embed.*, decoder_blocks.* -> decoder.blocks.*
            put(n, v, k);
        }
    }
    if (hasCl) {
        for (auto& [k, v] : proj) put("moco.projector." + k, v, "base_encoder.head." + k);
        for (auto& [k, v] : pred) put("moco.predictor." + k, v, "predictor." + k);
        for (auto& [k, v] : menc) put("moco.momentum_encoder." + k, v, "momentum_encoder." + k);
        for (auto& [k, v] : mproj) put("moco.momentum_projector." + k, v, "momentum_encoder.head." + k);
    }
    // Every tensor of the parts the file holds must have come from it.
    for (const auto& [name, t] : target) {
        bool inPart = startsWith(name, "encoder.") || (hasDecoder && startsWith(name, "decoder.")) || (hasCl && startsWith(name, "moco."));
        if (inPart && !filled.count(name))
            throw FileError(file, "lacks the tensor GraftLab's model holds as \"" + name + "\"; nothing was imported");
    }
    src.tensors.clear();
    enc.clear(), dec.clear(), proj.clear(), menc.clear(), mproj.clear(), pred.clear(), all.clear();

    // What was found, and what each part enables.
    std::string kind = moco ? "MoCo v3 / Layer Grafted Pretraining checkpoint (facebookresearch/moco-v3 layout)"
                       : hasDecoder && src.container == "model" && src.args.is_object() ? "MAE training checkpoint (facebookresearch/mae, with decoder and args)"
                       : hasDecoder ? "MAE checkpoint with decoder (facebookresearch/mae visualisation layout)"
                       : src.container == "model" ? "ViT encoder in {'model': ...} (facebookresearch/mae released encoder)"
                       : src.container == "teacher" ? "DINO training checkpoint (teacher backbone)"
                       : src.format == "safetensors" ? "ViT state dict in safetensors (timm names)"
                       : "bare ViT state dict (DINO / timm names)";
    res.layout = kind;
    res.method = r.method;
    char buf[512];
    std::snprintf(buf, sizeof buf, "ViT: width %d, depth %d, patch %d, %d channels, %d px (%dx%d patches)%s, MLP ratio %g, %d heads (from %s)",
                  a.dim, a.depth, a.patch, a.chans, r.data.imageSize, newGrid, newGrid,
                  newGrid != a.grid ? (" interpolated from " + std::to_string(a.grid * a.patch) + " px").c_str() : "", r.model.mlpRatio,
                  r.model.numHeads, headsSource.c_str());
    res.lines.push_back(std::string("layout: ") + kind + " [" + src.format + "]");
    res.lines.push_back(buf);
    res.lines.push_back("encoder: yes -> features, eval (linear, 1%, k-NN, fine-tune), attention, patch similarity, a stage's init");
    if (hasDecoder) {
        std::snprintf(buf, sizeof buf, "decoder: yes (width %d, depth %d, %d heads from %s) -> reconstructions (mask ratio %.2f, norm-pix %s)",
                      r.model.decoderEmbedDim, r.model.decoderDepth, r.model.decoderNumHeads, decoderHeadsSource.c_str(), r.mae.maskRatio,
                      r.mae.normPixLoss ? "on" : "off");
        res.lines.push_back(buf);
    } else {
        res.lines.push_back("decoder: no -> no reconstructions");
    }
    if (hasCl) {
        std::snprintf(buf, sizeof buf, "CL heads: yes (projector %d-%d, predictor, momentum encoder) -> MoCo v3 loss; gradient cosines need an MIM head too (probe --heads)",
                      r.moco.hiddenDim, r.moco.outDim);
        res.lines.push_back(buf);
    } else {
        res.lines.push_back("CL heads: no");
    }
    for (const auto& d : dropped) notes.push_back("left out \"" + d + "\" (a classifier head)");
    if (newGrid != a.grid) notes.push_back("position embedding interpolated (bicubic) from " + std::to_string(a.grid) + "x" + std::to_string(a.grid) + " to " + std::to_string(newGrid) + "x" + std::to_string(newGrid));
    for (const auto& n : notes) res.lines.push_back("note: " + n);
    res.lines.push_back("input normalisation: ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)");

    nlohmann::json info;
    info["source"] = fs::absolute(file).lexically_normal().string();
    info["sha256"] = src.sha256.get();
    src.mapped.reset();
    info["format"] = src.format;
    info["layout"] = kind;
    info["container"] = src.container;
    info["parts"] = {{"encoder", true}, {"decoder", hasDecoder}, {"cl_heads", hasCl}};
    info["heads_from"] = headsSource;
    info["image_size_trained"] = a.grid * a.patch;
    info["notes"] = notes;
    info["normalisation"] = {{"mean", kImageNetMean}, {"std", kImageNetStd}};
    if (!src.args.is_null()) info["args"] = src.args;
    if (!src.arch.empty()) info["arch"] = src.arch;
    info["report"] = res.lines;
    res.info = info;

    // The model directory: written whole, then put in place.
    fs::path tmpDir = fs::path(outDir).lexically_normal().string() + ".import-tmp";
    fs::remove_all(tmpDir, ec);
    fs::create_directories(tmpDir / "checkpoints", ec);
    if (ec) throw FileError(outDir, "cannot create directory: " + ec.message());
    CheckpointMeta meta;
    meta.recipe = r.toJson();
    meta.step = 0;
    meta.channels = a.chans;
    meta.dataset = "imported";
    meta.mean = kImageNetMean;
    meta.std = kImageNetStd;
    meta.imported = info;
    const std::string ckptName = checkpointFileName(0);
    // Only the parts the file had: a part it lacked is not stored at all (never random weights that look trained).
    torch::nn::Module held;
    for (auto& child : objective->named_children()) {
        const std::string& n = child.key();
        if (n == "encoder" || (n == "decoder" && hasDecoder) || (n == "moco" && hasCl)) held.register_module(n, child.value());
    }
    saveCheckpoint((tmpDir / "checkpoints" / ckptName).string(), held, nullptr, meta, /*streamToFile=*/true);
    writeFileAtomically((tmpDir / "recipe.json").string(), r.toJson().dump(2) + "\n");
    writeFileAtomically((tmpDir / "import.json").string(), info.dump(2) + "\n");
    if (fs::exists(outDir, ec)) fs::remove_all(outDir, ec);
    fs::rename(tmpDir, outDir, ec);
    if (ec) throw FileError(outDir, "cannot move the imported model into place: " + ec.message());
    res.checkpoint = (fs::path(outDir) / "checkpoints" / ckptName).string();
    return res;
}

}  // namespace graftlab
