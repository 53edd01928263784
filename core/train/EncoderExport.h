#pragma once
// A checkpoint's encoder for Python: its tensors under timm's names, written as torch.save writes them (torch's
// pickle format, so torch.load reads them) or as safetensors, with the metadata a user needs to feed it images.
#include "base/recipe/Recipe.h"
#include "train/Checkpoint.h"

#include <map>
#include <string>

namespace graftlab {

// The encoder's tensors under timm's names (patch_embed.proj.weight, cls_token, pos_embed, blocks.0.attn.qkv.weight, ...).
std::map<std::string, torch::Tensor> encoderStateDict(VisionTransformer encoder);
// Writes a dict of tensors that Python's torch.load reads (torch's pickle format). Throws FileError.
void saveForPython(const std::string& path, const std::map<std::string, torch::Tensor>& tensors);

// What an exported encoder needs beside its weights: the model sizes, the image size and channels, and the input
// normalisation it was trained with (x = (pixel / 255 - mean) / std per channel). Values are strings (safetensors'
// metadata); lists and the recipe are JSON text.
std::map<std::string, std::string> encoderExportMetadata(const Recipe& recipe, const CheckpointMeta& meta, const std::string& method);

struct EncoderExport {
    std::string path, format;      // format: "pt" or "safetensors"
    std::string metadataPath;      // .pt: the JSON file beside it that holds the metadata
    size_t tensors = 0;
    std::string method;
    int64_t step = 0;
    std::string summary() const;
};
// Exports a checkpoint's encoder with timm's names. format "" = from the extension (.safetensors, else .pt).
// .pt: torch's pickle format (torch.load) and ENCODER.json beside it with the metadata; .safetensors: float32
// tensors with the metadata in the header. Throws FileError naming the file.
EncoderExport exportEncoder(const std::string& checkpoint, const std::string& out, std::string format = "");

}  // namespace graftlab
