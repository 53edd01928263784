#include "data/Dataset.h"
#include "util/Errors.h"

#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

// Reads a whole IDX file through zlib (which also reads uncompressed files transparently).
std::vector<uint8_t> readMaybeGz(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw FileError(path, "cannot open file");
    std::vector<uint8_t> out;
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
        int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
        if (n < 0) {
            int err = 0;
            std::string msg = gzerror(f, &err);
            gzclose(f);
            throw FileError(path, "corrupt or truncated gzip data (" + msg + ")");
        }
        if (n == 0) break;
        out.insert(out.end(), buf.begin(), buf.begin() + n);
    }
    int err = 0;
    const char* msg = gzerror(f, &err);
    std::string m = msg ? msg : "";
    bool truncated = err == Z_BUF_ERROR;
    gzclose(f);
    if (truncated) throw FileError(path, "truncated gzip stream (unexpected end of file)");
    return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t off) {
    return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | uint32_t(b[off + 3]);
}

std::string findIdx(const std::string& root, const std::string& stem) {
    for (const std::string& name : {stem + ".gz", stem}) {
        fs::path p = fs::path(root) / name;
        if (fs::exists(p)) return p.string();
    }
    throw FileError((fs::path(root) / (stem + ".gz")).string(),
                    "Fashion-MNIST file not found (install the Debian package dataset-fashion-mnist, or set data.root)");
}

}  // namespace

std::string defaultFashionMnistRoot() { return "/usr/share/datasets/fashion-mnist"; }

Dataset loadFashionMnist(const std::string& rootIn, Split split, int imageSize) {
    std::string root = rootIn.empty() ? defaultFashionMnistRoot() : rootIn;
    std::string prefix = split == Split::Train ? "train" : "t10k";
    std::string imgPath = findIdx(root, prefix + "-images-idx3-ubyte");
    std::string lblPath = findIdx(root, prefix + "-labels-idx1-ubyte");

    auto img = readMaybeGz(imgPath);
    if (img.size() < 16) throw FileError(imgPath, "truncated: " + std::to_string(img.size()) + " bytes, an IDX image header needs 16");
    uint32_t magic = be32(img, 0);
    if (magic != 0x00000803)
        throw FileError(imgPath, "not an IDX image file (magic number 0x" + fmt::format("{:08x}", magic) + ", expected 0x00000803)");
    uint32_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
    if (rows != 28 || cols != 28)
        throw FileError(imgPath, "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", Fashion-MNIST has 28x28");
    size_t want = 16 + size_t(n) * rows * cols;
    if (img.size() != want)
        throw FileError(imgPath, (img.size() < want ? "truncated: " : "too long: ") + std::to_string(img.size()) +
                                     " bytes, the header announces " + std::to_string(n) + " images = " +
                                     std::to_string(want) + " bytes");

    auto lbl = readMaybeGz(lblPath);
    if (lbl.size() < 8) throw FileError(lblPath, "truncated: " + std::to_string(lbl.size()) + " bytes, an IDX label header needs 8");
    uint32_t lmagic = be32(lbl, 0);
    if (lmagic != 0x00000801)
        throw FileError(lblPath, "not an IDX label file (magic number 0x" + fmt::format("{:08x}", lmagic) + ", expected 0x00000801)");
    uint32_t ln = be32(lbl, 4);
    if (lbl.size() != 8 + size_t(ln))
        throw FileError(lblPath, (lbl.size() < 8 + size_t(ln) ? "truncated: " : "too long: ") + std::to_string(lbl.size()) +
                                     " bytes, the header announces " + std::to_string(ln) + " labels");
    if (ln != n)
        throw FileError(lblPath, std::to_string(ln) + " labels for " + std::to_string(n) + " images in " + imgPath);
    for (size_t i = 8; i < lbl.size(); ++i)
        if (lbl[i] > 9) throw FileError(lblPath, "label " + std::to_string(lbl[i]) + " at index " + std::to_string(i - 8) + " is outside 0..9");

    Dataset d;
    d.name = "fashion_mnist";
    d.numClasses = 10;
    d.classNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    d.images = torch::from_blob(img.data() + 16, {int64_t(n), 1, 28, 28}, torch::kUInt8).clone();
    d.labels = torch::from_blob(lbl.data() + 8, {int64_t(n)}, torch::kUInt8).to(torch::kInt64);
    if (imageSize != 28) d.images = resizeImagesU8(d.images, imageSize);
    computeChannelStats(d);
    return d;
}

}  // namespace graftlab
