#include "data/Dataset.h"
#include "base/data/Formats.h"
#include "base/util/Errors.h"

#include <torch/torch.h>

#include <filesystem>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

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

    IdxImages img = parseIdxImages(readMaybeGzFile(imgPath), imgPath, 28, 28);
    std::vector<uint8_t> lbl = parseIdxLabels(readMaybeGzFile(lblPath), lblPath, 9);
    if (lbl.size() != img.count)
        throw FileError(lblPath, std::to_string(lbl.size()) + " labels for " + std::to_string(img.count) + " images in " + imgPath);
    const int64_t n = img.count;

    Dataset d;
    d.name = "fashion_mnist";
    d.numClasses = 10;
    d.classNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    d.images = torch::from_blob(img.pixels.data(), {n, 1, 28, 28}, torch::kUInt8).clone();
    d.labels = torch::from_blob(lbl.data(), {n}, torch::kUInt8).to(torch::kInt64);
    if (imageSize != 28) d.images = resizeImagesU8(d.images, imageSize);
    computeChannelStats(d);
    return d;
}

}  // namespace graftlab
