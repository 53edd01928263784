#include "train/EncoderExport.h"
#include "base/export/Safetensors.h"
#include "train/Device.h"
#include "train/LoadedModel.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <torch/torch.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <fstream>

namespace graftlab {
namespace fs = std::filesystem;

std::map<std::string, torch::Tensor> encoderStateDict(VisionTransformer encoder) {
    std::map<std::string, torch::Tensor> out;
    for (auto& p : encoder->named_parameters(true)) out[p.key()] = p.value().detach().cpu().contiguous();
    for (auto& b : encoder->named_buffers(true)) out[b.key()] = b.value().detach().cpu().contiguous();
    return out;
}

void saveForPython(const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
    c10::Dict<std::string, torch::Tensor> dict;
    for (const auto& [k, v] : tensors) dict.insert(k, v);
    // torch::pickle_save tags the dict with its C++ type (torch.jit._pickle.restore_type_tag), a global that
    // torch.load refuses by default from PyTorch 2.6 on (weights_only=True): the pickle here is written untagged,
    // as Python's torch.save writes a dict of tensors, so plain `torch.load(path)` reads it everywhere.
    std::vector<char> pickle;
    torch::jit::Pickler pickler([&](const char* buf, size_t size) { pickle.insert(pickle.end(), buf, buf + size); }, nullptr,
                                nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(torch::IValue(dict));
    pickler.stop();
    std::string container;
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t len) {
        container.append(static_cast<const char*>(data), len);
        return len;
    });
    torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
    writer.writeEndOfFile();
    writeFileAtomically(path, container);
}

std::map<std::string, std::string> encoderExportMetadata(const Recipe& r, const CheckpointMeta& meta, const std::string& method) {
    std::map<std::string, std::string> m;
    m["format"] = "pt";  // the key timm and Hugging Face look for: PyTorch tensor layout
    m["producer"] = std::string("GraftLab ") + GRAFTLAB_VERSION;
    m["architecture"] = "vit (timm VisionTransformer names: class token, no register tokens, LayerNorm eps 1e-6, qkv bias)";
    m["method"] = method;
    m["step"] = std::to_string(meta.step);
    m["patch_size"] = std::to_string(r.model.patchSize);
    m["embed_dim"] = std::to_string(r.model.embedDim);
    m["depth"] = std::to_string(r.model.depth);
    m["num_heads"] = std::to_string(r.model.numHeads);
    m["mlp_ratio"] = nlohmann::json(r.model.mlpRatio).dump();
    m["img_size"] = std::to_string(r.data.imageSize);
    m["in_chans"] = std::to_string(meta.channels);
    m["dataset"] = meta.dataset;
    m["mean"] = nlohmann::json(meta.mean).dump();
    m["std"] = nlohmann::json(meta.std).dump();
    m["normalization"] = "x = (pixel / 255 - mean) / std, per channel, on images of img_size x img_size";
    m["recipe"] = meta.recipe.dump();
    return m;
}

std::string EncoderExport::summary() const {
    std::string s = path + ": " + std::to_string(tensors) + " tensors of the " + method + " encoder at step " + std::to_string(step) +
                    " (timm names; " + (format == "safetensors" ? "safetensors.torch.load_file reads it, metadata in its header"
                                                                 : "torch.load reads it, metadata in " + metadataPath) + ")";
    return s;
}

EncoderExport exportEncoder(const std::string& checkpoint, const std::string& out, std::string format) {
    if (format.empty()) format = fs::path(out).extension() == ".safetensors" ? "safetensors" : "pt";
    if (format != "pt" && format != "safetensors") throw FileError(out, "unknown export format \"" + format + "\" (pt or safetensors)");
    LoadedModel m = loadCheckpointModel(checkpoint);
    auto sd = encoderStateDict(m.objective->encoder());
    auto meta = encoderExportMetadata(m.recipe, m.meta, m.method);
    EncoderExport e;
    e.path = out;
    e.format = format;
    e.tensors = sd.size();
    e.method = m.method;
    e.step = m.meta.step;
    if (format == "safetensors") {
        std::vector<RawTensor> raw;
        for (const auto& [name, t] : sd) {
            auto c = t.to(torch::kFloat32).contiguous();
            raw.push_back({name, "F32", c.sizes().vec(), std::string(static_cast<const char*>(c.data_ptr()), size_t(c.nbytes()))});
        }
        writeSafetensors(out, raw, meta);
    } else {
        saveForPython(out, sd);
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [k, v] : meta) {
            auto parsed = nlohmann::json::parse(v, nullptr, false);  // numbers and lists as JSON values
            j[k] = parsed.is_discarded() || parsed.is_string() ? nlohmann::json(v) : parsed;
        }
        e.metadataPath = (fs::path(out).parent_path() / (fs::path(out).stem().string() + ".json")).string();
        writeFileAtomically(e.metadataPath, j.dump(2) + "\n");
    }
    return e;
}

}  // namespace graftlab
