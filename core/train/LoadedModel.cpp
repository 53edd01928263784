#include "train/LoadedModel.h"
#include "base/import/TorchFile.h"
#include "base/util/Errors.h"

#include <spdlog/spdlog.h>

#include <torch/torch.h>

#include <map>
#include <set>
#include <sstream>

namespace graftlab {

namespace {

torch::Tensor mappedTensor(const TorchFile& f, const PickledTensor& t) {
    static const std::map<std::string, torch::Dtype> dtypes = {{"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16},
                                                               {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
                                                               {"U8", torch::kUInt8}, {"BOOL", torch::kBool}};
    auto it = dtypes.find(t.dtype);
    if (it == dtypes.end()) throw FileError(f.path, "a tensor of dtype " + t.dtype);
    return torch::from_blob(const_cast<char*>(f.tensorData(t)), t.shape, t.stride, torch::TensorOptions().dtype(it->second));
}

// One pass over a large checkpoint: the zip checked and its pickles read by import/TorchFile (nothing run), the model
// built, then each stored tensor copied from the mapped file straight into it, its pages handed back at once. A model
// of M bytes loads holding about M bytes (LibTorch's archive reader would hold the file, its tensors and the model).
// Returns false (the caller takes the archive path, with its messages) for anything it does not recognise.
// The recipe, the method of the stage the checkpoint was written in, and a fresh objective for m.meta.
void buildObjective(LoadedModel& m, const std::string& path) {
    std::vector<RecipeIssue> issues;
    m.recipe = Recipe::fromJson(m.meta.recipe, issues);
    if (issues.empty()) issues = m.recipe.validate();
    if (!issues.empty()) throw FileError(path, "its recipe does not parse: " + issues.front().field + ": " + issues.front().message);
    auto stages = m.recipe.effectiveStages();
    m.method = stages[size_t(std::clamp(m.meta.stage, 0, int(stages.size()) - 1))].method;
    torch::manual_seed(uint64_t(m.recipe.seed));
    m.objective = makeObjective(m.recipe, m.method, m.meta.channels, m.meta.mean, m.meta.std);
}

struct MappedLoad {
    size_t loaded = 0, modelTensors = 0, unused = 0;  // copied in; the model's; the file's left over
};

bool loadMapped(const std::string& path, LoadedModel& m, MappedLoad& r, std::string& why) {
    std::unique_ptr<TorchFile> f;
    try {
        f = readTorchFile(path);
    } catch (const FileError& e) {
        why = e.what();
        return false;
    }
    f->bytes->releaseAll();
    if (!readMetaMapped(*f, m.meta)) {
        why = "not the layout this reader knows";
        return false;
    }
    const PickleValue* model = f->root->get("model");
    buildObjective(m, path);
    std::map<std::string, const PickleValue*> stored;
    for (const auto& [k, v] : model->entries)
        if (k->isString() && v->kind == PickleValue::Kind::Tensor) stored[k->text] = v;
    torch::NoGradGuard ng;
    std::vector<std::pair<std::string, torch::Tensor>> targets;
    for (auto& p : m.objective->named_parameters(true)) targets.emplace_back(p.key(), p.value());
    for (auto& b : m.objective->named_buffers(true)) targets.emplace_back(b.key(), b.value());
    size_t loaded = 0;
    for (auto& [name, dst] : targets) {
        auto it = stored.find(name);
        if (it == stored.end()) continue;
        auto src = mappedTensor(*f, it->second->tensor);
        requireSameShape(path, name, src, dst);
        dst.copy_(src);
        f->bytes->release(static_cast<const char*>(src.data_ptr()), size_t(src.numel()) * src.element_size());
        stored.erase(it);
        ++loaded;
    }
    r.loaded = loaded;
    r.modelTensors = targets.size();
    r.unused = stored.size();
    return true;
}

}  // namespace

size_t importedPartTensors(const LoadedModel& m) {
    const auto parts = m.meta.imported.value("parts", nlohmann::json::object());
    std::set<std::string> present = {"encoder."};
    if (parts.value("decoder", false)) present.insert("decoder.");
    if (parts.value("cl_heads", false)) present.insert("moco.");
    size_t expected = 0;
    auto count = [&](const std::string& name) {
        for (const auto& p : present)
            if (name.compare(0, p.size(), p) == 0) return ++expected, void();
    };
    for (const auto& p : m.objective->named_parameters(true)) count(p.key());
    for (const auto& b : m.objective->named_buffers(true)) count(b.key());
    return expected;
}

LoadedModel loadCheckpointModel(const std::string& pathIn, torch::Device device) {
    const std::string path = resolveCheckpoint(pathIn);
    LoadedModel m;
    MappedLoad mapped;
    std::string why;
    bool done = false;
    if (loadMapped(path, m, mapped, why)) {
        if (m.meta.imported.is_object()) {
            // An imported model holds the parts its file had: each of those whole, the others not at all.
            size_t expected = importedPartTensors(m);
            if (mapped.loaded != expected || mapped.unused != 0)
                throw FileError(path, "an imported model with " + std::to_string(mapped.loaded) + " of the " + std::to_string(expected) +
                                          " tensors its parts need (damaged?)");
            done = true;
        } else {
            done = mapped.loaded == mapped.modelTensors && mapped.unused == 0;  // else the archive path names what differs
        }
    } else {
        spdlog::debug("{}: read through LibTorch's archive reader ({})", path, why);
    }
    if (!done) {
        m = LoadedModel();
        m.meta = readCheckpointMeta(path);
        buildObjective(m, path);
        if (m.meta.imported.is_object()) {
            size_t expected = importedPartTensors(m);
            int loaded = loadModelState(path, *m.objective, false);
            if (size_t(loaded) != expected)
                throw FileError(path, "an imported model with " + std::to_string(loaded) + " of the " + std::to_string(expected) +
                                          " tensors its parts need (damaged?)");
        } else {
            loadModelState(path, *m.objective, true);
        }
    }
    if (m.meta.imported.is_object() && !m.meta.imported.value("parts", nlohmann::json::object()).value("decoder", false))
        m.objective->mimHeadAbsent = "imported from " + m.meta.imported.value("source", std::string("another project")) +
                                     " without an MAE decoder (" + m.meta.imported.value("layout", std::string()) + ")";
    m.objective->to(device);
    return m;
}

}  // namespace graftlab
