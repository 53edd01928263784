#pragma once
// Opens the checkpoints the field publishes — facebookresearch/mae (encoder, visualisation and training checkpoints),
// facebookresearch/moco-v3 and Layer Grafted Pretraining (MoCo v3's layout), DINO and timm ViTs (.pth or
// .safetensors) — and makes of each a GraftLab model directory: recipe.json, checkpoints/step-00000000.ckpt and
// import.json (source file, SHA-256, layout, parts, notes). Every command and view that takes a checkpoint takes it.
// The architecture comes from the tensors; every tensor is taken as stored (position embeddings too); a layout with
// parts GraftLab's ViT lacks (ConMIM / BEiT: layer scale, q/v biases, relative position bias) is refused, naming them.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace graftlab {

struct ImportOptions {
    int imageSize = 0;                   // 0 = the size the position embedding was trained for; else interpolated (bicubic)
    std::vector<std::string> overrides;  // "--set" on the written recipe: model.num_heads, data.dataset, data.root, ...
    bool force = false;                  // replace an existing model directory (never a training run)
};

struct ImportResult {
    std::string layout;       // e.g. "MAE visualisation checkpoint (facebookresearch/mae)"
    std::string checkpoint;   // DIR/checkpoints/step-00000000.ckpt
    std::string method;       // the objective the model is held in: mae, mocov3
    nlohmann::json info;      // the content of import.json
    std::vector<std::string> lines;  // what was found and what each part enables, for the user
};

// Reads `file` and writes the model directory `outDir`. Throws FileError naming the file (unreadable, a refused
// pickle global, an unknown or unsupported layout, with what is missing) or the directory; RecipeError for a bad --set.
ImportResult importModel(const std::string& file, const std::string& outDir, const ImportOptions& options);

// The number of attention heads of a ViT of width `width`: from a model name in the checkpoint (MAE's args.model,
// MoCo v3's arch: its "vit_small" has 12 heads, where DINO's and timm's have 6, hence `mocoNames` for a MoCo v3
// layout), else the standard table (192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16), else width / 64. `source` says which.
int headsFor(int width, const std::string& modelName, std::string& source, bool mocoNames = false);

}  // namespace graftlab
