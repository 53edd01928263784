#include "train/Checkpoint.h"

#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/ZipCheck.h"
#include "base/import/TorchFile.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

namespace graftlab {
namespace fs = std::filesystem;

static const char* kFormat = "graftlab-checkpoint-1";

namespace {

std::string firstLine(const std::string& s) {
    auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
}

struct OpenArchive {
    std::string bytes;
    torch::serialize::InputArchive archive;
};

void openArchive(const std::string& path, OpenArchive& a) {
    if (!fs::exists(path)) throw FileError(path, "checkpoint not found");
    a.bytes = readFile(path);
    verifyZipArchive(a.bytes.data(), a.bytes.size(), path);  // damage is reported here, before torch parses anything
    try {
        a.archive.load_from(a.bytes.data(), a.bytes.size());
    } catch (const c10::Error& e) {
        throw FileError(path, "not a GraftLab checkpoint, or truncated/corrupt (" + firstLine(e.what_without_backtrace()) + ")");
    } catch (const std::exception& e) {  // torch's TorchScript importer also throws its own error types (fuzzing found)
        throw FileError(path, "not a GraftLab checkpoint, or truncated/corrupt (" + firstLine(e.what()) + ")");
    }
    c10::IValue format;
    if (!a.archive.try_read("format", format) || !format.isString() || format.toStringRef() != kFormat)
        throw FileError(path, std::string("not a GraftLab checkpoint (missing format tag \"") + kFormat + "\")");
}

// Runs `f`; any error but a FileError (a damaged entry inside a readable archive) becomes a FileError naming
// the file, so that callers see one kind of error for every bad checkpoint.
template <class F>
auto namingFile(const std::string& path, const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const FileError&) {
        throw;
    } catch (const c10::Error& e) {
        throw FileError(path, std::string("damaged GraftLab checkpoint: ") + what + " (" + firstLine(e.what_without_backtrace()) + ")");
    } catch (const std::exception& e) {
        throw FileError(path, std::string("damaged GraftLab checkpoint: ") + what + " (" + firstLine(e.what()) + ")");
    }
}

std::vector<float> toVector(const torch::Tensor& t) {
    auto c = t.to(torch::kFloat32).contiguous();
    return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

}  // namespace

void saveCheckpoint(const std::string& path, const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                    const CheckpointMeta& meta, bool streamToFile) {
    torch::serialize::OutputArchive root;
    root.write("format", c10::IValue(std::string(kFormat)));
    root.write("recipe", c10::IValue(meta.recipe.dump()));
    root.write("step", c10::IValue(meta.step));
    root.write("stage", c10::IValue(int64_t(meta.stage)));
    root.write("channels", c10::IValue(int64_t(meta.channels)));
    root.write("dataset", c10::IValue(meta.dataset));
    root.write("data_mean", torch::tensor(meta.mean, torch::kFloat32));
    root.write("data_std", torch::tensor(meta.std, torch::kFloat32));
    if (!meta.imported.is_null()) root.write("imported", c10::IValue(meta.imported.dump()));

    torch::serialize::OutputArchive modelArchive;
    for (const auto& p : model.named_parameters(true)) modelArchive.write(p.key(), p.value().detach().cpu());
    for (const auto& b : model.named_buffers(true)) modelArchive.write(b.key(), b.value().detach().cpu(), true);
    root.write("model", modelArchive);

    if (optimizer) {
        torch::serialize::OutputArchive optArchive;
        optimizer->save(optArchive);
        root.write("optimizer", optArchive);
    }
    {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        root.write("rng", gen.get_state());
    }
    if (streamToFile) {
        std::string tmp = tempPathFor(path);
        try {
            root.save_to(tmp);
        } catch (const std::exception& e) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw FileError(path, std::string("write failed (") + firstLine(e.what()) + ")");
        }
        commitTempFile(tmp, path);
        return;
    }
    std::ostringstream out;
    root.save_to(out);
    writeFileAtomically(path, out.str());
}

bool readMetaMapped(const TorchFile& f, CheckpointMeta& m) {
    const PickleValue* root = f.root;
    auto str = [&](const char* k) -> const PickleValue* {
        auto* v = root->get(k);
        return v && v->isString() ? v : nullptr;
    };
    auto integer = [&](const char* k) -> const PickleValue* {
        auto* v = root->get(k);
        return v && v->kind == PickleValue::Kind::Int ? v : nullptr;
    };
    auto floats = [&](const char* k, std::vector<float>& out) {
        auto* v = root->get(k);
        if (!v || v->kind != PickleValue::Kind::Tensor || v->tensor.dtype != "F32" || v->tensor.shape.size() != 1) return false;
        const float* p = reinterpret_cast<const float*>(f.tensorData(v->tensor));
        out.clear();
        for (int64_t i = 0; i < v->tensor.shape[0]; ++i) out.push_back(p[i * v->tensor.stride[0]]);
        return true;
    };
    const PickleValue* model = root->get("model");
    if (root->kind != PickleValue::Kind::Object || !str("format") || str("format")->text != kFormat || !str("recipe") || !integer("step") ||
        !integer("channels") || !str("dataset") || !model || model->kind != PickleValue::Kind::Object)
        return false;
    CheckpointMeta out;
    out.path = f.path;
    try {
        out.recipe = nlohmann::json::parse(str("recipe")->text);
        if (auto* imp = str("imported")) out.imported = nlohmann::json::parse(imp->text);
    } catch (const std::exception&) {
        return false;
    }
    out.step = integer("step")->integer;
    out.stage = integer("stage") ? int(integer("stage")->integer) : 0;
    out.channels = int(integer("channels")->integer);
    out.dataset = str("dataset")->text;
    if (!floats("data_mean", out.mean) || !floats("data_std", out.std)) return false;
    m = std::move(out);
    return true;
}

CheckpointMeta readCheckpointMeta(const std::string& path) {
    {
        // The header alone, without LibTorch reading every tensor of the file (a ViT-B checkpoint is 340 MB)
        CheckpointMeta m;
        try {
            auto f = readTorchFile(path);
            f->bytes->releaseAll();
            if (readMetaMapped(*f, m)) return m;
        } catch (const FileError& e) {
            // a zip that is no torch file at all (a .npz, a .zip of images): said plainly, not in LibTorch's words
            if (std::string(e.what()).find("without data.pkl") != std::string::npos)
                throw FileError(path, "not a GraftLab checkpoint: a zip archive without data.pkl (a .npz, or another kind of zip?)");
            // damaged or not a checkpoint: the archive reader below says what, as it always has
        }
    }
    OpenArchive a;
    openArchive(path, a);
    CheckpointMeta m;
    m.path = path;
    c10::IValue v;
    try {
        a.archive.read("recipe", v);
        m.recipe = nlohmann::json::parse(v.toStringRef());
        a.archive.read("step", v);
        m.step = v.toInt();
        if (a.archive.try_read("stage", v)) m.stage = int(v.toInt());
        a.archive.read("channels", v);
        m.channels = int(v.toInt());
        a.archive.read("dataset", v);
        m.dataset = v.toStringRef();
        torch::Tensor t;
        a.archive.read("data_mean", t);
        m.mean = toVector(t);
        torch::Tensor s;
        a.archive.read("data_std", s);
        m.std = toVector(s);
        if (a.archive.try_read("imported", v) && v.isString()) m.imported = nlohmann::json::parse(v.toStringRef());
    } catch (const std::exception& e) {
        throw FileError(path, std::string("damaged GraftLab checkpoint header (") + firstLine(e.what()) + ")");
    }
    return m;
}

int loadModelState(const std::string& path, torch::nn::Module& model, bool strict) {
    return namingFile(path, "model tensors", [&] {
        OpenArchive a;
        openArchive(path, a);
        torch::serialize::InputArchive m;
        if (!a.archive.try_read("model", m)) throw FileError(path, "checkpoint holds no model");
        std::vector<std::string> stored = m.keys();
        std::set<std::string> storedSet(stored.begin(), stored.end());
        torch::NoGradGuard ng;
        int loaded = 0;
        std::vector<std::string> missing;
        auto loadOne = [&](const std::string& name, torch::Tensor& dst, bool isBuffer) {
            if (!storedSet.count(name)) {
                missing.push_back(name);
                return;
            }
            torch::Tensor src;
            m.read(name, src, isBuffer);
            requireSameShape(path, name, src, dst);
            dst.copy_(src);
            storedSet.erase(name);
            ++loaded;
        };
        for (auto& p : model.named_parameters(true)) loadOne(p.key(), p.value(), false);
        for (auto& b : model.named_buffers(true)) loadOne(b.key(), b.value(), true);
        if (strict && !missing.empty())
            throw FileError(path, "checkpoint lacks " + std::to_string(missing.size()) + " tensor(s) of the model, e.g. \"" +
                                      missing.front() + "\" (another architecture or method?)");
        if (strict && !storedSet.empty())
            throw FileError(path, "checkpoint has " + std::to_string(storedSet.size()) + " tensor(s) the model lacks, e.g. \"" +
                                      *storedSet.begin() + "\" (another architecture or method?)");
        return loaded;
    });
}

std::map<std::string, torch::Tensor> readModelTensors(const std::string& path) {
    return namingFile(path, "model tensors", [&] {
        OpenArchive a;
        openArchive(path, a);
        torch::serialize::InputArchive m;
        if (!a.archive.try_read("model", m)) throw FileError(path, "checkpoint holds no model");
        std::map<std::string, torch::Tensor> out;
        for (const auto& key : m.keys()) {
            torch::Tensor t;
            if (m.try_read(key, t) || m.try_read(key, t, true)) out[key] = t;
        }
        return out;
    });
}

void loadOptimizerState(const std::string& path, torch::optim::Optimizer& optimizer) {
    namingFile(path, "optimizer state", [&] {
        OpenArchive a;
        openArchive(path, a);
        torch::serialize::InputArchive o;
        if (!a.archive.try_read("optimizer", o)) throw FileError(path, "checkpoint holds no optimizer state");
        try {
            optimizer.load(o);
        } catch (const c10::Error& e) {
            throw FileError(path, "optimizer state does not match this recipe (" + firstLine(e.what_without_backtrace()) + ")");
        }
    });
}

void restoreRngState(const std::string& path) {
    namingFile(path, "random-number state", [&] {
        OpenArchive a;
        openArchive(path, a);
        torch::Tensor state;
        if (!a.archive.try_read("rng", state)) return;
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state);
    });
}

std::string checkpointFileName(int64_t step) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "step-%08lld.ckpt", static_cast<long long>(step));
    return buf;
}

std::vector<std::pair<int64_t, std::string>> listCheckpoints(const std::string& dir) {
    std::vector<std::pair<int64_t, std::string>> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    static const std::regex re(R"(step-(\d+)\.ckpt)");
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::smatch m;
        std::string name = e.path().filename().string();
        if (std::regex_match(name, m, re)) out.emplace_back(std::stoll(m[1].str()), e.path().string());
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first > b.first; });
    return out;
}

void pruneCheckpoints(const std::string& dir, int64_t newestStep, int keepEvery, const std::vector<int64_t>& alsoKeep) {
    // Temp files of writes that a kill interrupted: never renamed, never complete.
    static const std::regex tmp(R"(\..*\.ckpt\.tmp-\d+)");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (std::regex_match(e.path().filename().string(), tmp)) fs::remove(e.path(), ec);
    for (const auto& [step, path] : listCheckpoints(dir)) {
        if (step >= newestStep) continue;
        if (keepEvery > 0 && step % keepEvery == 0) continue;
        if (std::find(alsoKeep.begin(), alsoKeep.end(), step) != alsoKeep.end()) continue;
        std::error_code ec;
        fs::remove(path, ec);
    }
}

void requireSameShape(const std::string& path, const std::string& name, const torch::Tensor& stored, const torch::Tensor& model) {
    if (stored.sizes() == model.sizes()) return;
    std::ostringstream os;
    os << "tensor \"" << name << "\" has shape " << stored.sizes() << " in the checkpoint but " << model.sizes()
       << " in the model (another architecture?)";
    throw FileError(path, os.str());
}

std::string resolveCheckpoint(const std::string& fileOrDir) {
    std::error_code ec;
    if (!fs::is_directory(fileOrDir, ec)) return fileOrDir;
    fs::path sub = fs::path(fileOrDir) / "checkpoints";
    std::string found = latestGoodCheckpoint(fs::is_directory(sub, ec) ? sub.string() : fileOrDir);
    if (found.empty()) throw FileError(fileOrDir, "a directory with no readable checkpoint (step-*.ckpt) in it or in its checkpoints/");
    return found;
}

std::string latestGoodCheckpoint(const std::string& dir) {
    for (const auto& [step, path] : listCheckpoints(dir)) {
        try {
            (void)readCheckpointMeta(path);
            return path;
        } catch (const FileError& e) {
            spdlog::warn("skipping unreadable checkpoint {}", e.what());
        }
    }
    return {};
}

}  // namespace graftlab
