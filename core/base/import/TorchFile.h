#pragma once
// Reads the files PyTorch's torch.save writes — the zip format (since 1.6: <dir>/data.pkl + <dir>/data/<key>) and
// the legacy format (magic number, protocol, sys info, the pickled object, storage keys, raw storages) — without
// running any code: the pickle is interpreted by a small machine of our own that knows only the globals torch.save
// writes for tensors, storages and ordered dicts, plus argparse.Namespace and numpy scalars read as data. Any other
// global (os.system, builtins.eval, a model class, ...) is refused by name before anything is built from it.
// No torch here: tensors come back as references into the file's bytes (the core turns them into torch tensors).
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

// A tensor as torch.save describes it: a storage, an offset into it, a shape and strides (in elements).
struct PickledTensor {
    std::string storageKey;
    std::string dtype;  // safetensors' names: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL
    int64_t offset = 0;
    std::vector<int64_t> shape, stride;
};

// One value of the pickle. Containers hold pointers into the reader's arena (a pickle may build cycles).
struct PickleValue {
    enum class Kind { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Object, Global, Storage, Tensor, Mark };
    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double number = 0;
    std::string text;  // String, Bytes; the qualified name of a Global; the class of an Object; a Storage's key
    std::vector<PickleValue*> items;                             // List, Tuple
    std::vector<std::pair<PickleValue*, PickleValue*>> entries;  // Dict, and an Object's attributes (argparse.Namespace)
    PickledTensor tensor;                                        // Tensor; a Storage's dtype in tensor.dtype

    bool isString() const { return kind == Kind::String; }
    bool isMapping() const { return kind == Kind::Dict || kind == Kind::Object; }
    // The value under string key `key` of a Dict or an Object's attributes; null when absent.
    const PickleValue* get(const std::string& key) const;
    // A one-line rendering for messages and summaries (containers abbreviated).
    std::string repr(int depth = 0) const;
};

struct StorageBytes {
    std::string dtype;
    int64_t numel = 0;
    const char* data = nullptr;  // into TorchFile::bytes
};

// A file's bytes: mapped read-only (pages the reader is done with can be handed back, so that importing a large
// checkpoint holds little more than the model it builds), or a buffer already in memory.
class FileBytes {
public:
    static std::shared_ptr<FileBytes> map(const std::string& path);  // FileError naming the file
    static std::shared_ptr<FileBytes> hold(std::string bytes);
    ~FileBytes();
    FileBytes(const FileBytes&) = delete;
    FileBytes& operator=(const FileBytes&) = delete;
    const char* data() const { return data_; }
    size_t size() const { return size_; }
    // Drops the mapped pages of [p, p + n) from memory (they are read again from the file if touched).
    void release(const char* p, size_t n) const;
    void releaseAll() const { release(data_, size_); }

private:
    FileBytes() = default;
    const char* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
    std::string held_;
};

struct TorchFile {
    std::string path;
    std::string format;                   // "zip" or "legacy"
    std::shared_ptr<const FileBytes> bytes;  // the whole file; storages and tensors point into it
    const PickleValue* root = nullptr;
    std::map<std::string, StorageBytes> storages;
    std::deque<PickleValue> arena;
    // Bytes of one element of `dtype` (0 for an unknown name).
    static int elementSize(const std::string& dtype);
    // A tensor's first element in the file, after checking that every element it spans lies within its storage.
    const char* tensorData(const PickledTensor& t) const;
};

// Reads `path` (zip or legacy torch.save). Throws FileError naming the file: not a torch file, truncated or damaged,
// or a global outside the allow-list (named, e.g. "posix.system"), in which case nothing of the pickle has run.
std::unique_ptr<TorchFile> readTorchFile(const std::string& path);
// The same from bytes already in memory (the fuzz target's entry point); `path` only names the source in messages.
std::unique_ptr<TorchFile> parseTorchFile(std::shared_ptr<const FileBytes> bytes, const std::string& path);

}  // namespace graftlab
