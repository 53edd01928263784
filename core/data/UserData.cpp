// The user's own data: CIFAR-10 binary batches and ImageFolder trees (decoded with OpenCV).
#include "data/Dataset.h"
#include "base/data/Formats.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#ifdef GRAFTLAB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace graftlab {
namespace fs = std::filesystem;

Dataset loadCifar10(const std::string& rootIn, Split split, int imageSize) {
    if (rootIn.empty()) throw RecipeError("data.root", "cifar10 needs data.root: the folder of data_batch_*.bin and test_batch.bin");
    fs::path root(rootIn);
    if (fs::exists(root / "cifar-10-batches-bin")) root /= "cifar-10-batches-bin";
    std::vector<std::string> files;
    if (split == Split::Train)
        for (int i = 1; i <= 5; ++i) files.push_back((root / ("data_batch_" + std::to_string(i) + ".bin")).string());
    else
        files.push_back((root / "test_batch.bin").string());
    std::vector<uint8_t> pixels, labels;
    for (const auto& f : files) {
        if (!fs::exists(f)) throw FileError(f, "CIFAR-10 batch file not found (expected the binary version, cifar-10-binary.tar.gz, unpacked)");
        std::string raw = readFile(f);
        appendCifarBatch(std::vector<uint8_t>(raw.begin(), raw.end()), f, pixels, labels);
    }
    Dataset d;
    d.name = "cifar10";
    d.numClasses = 10;
    d.classNames = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    const int64_t n = int64_t(labels.size());
    d.images = torch::from_blob(pixels.data(), {n, 3, 32, 32}, torch::kUInt8).clone();
    d.labels = torch::from_blob(labels.data(), {n}, torch::kUInt8).to(torch::kInt64);
    if (imageSize != 32) d.images = resizeImagesU8(d.images, imageSize);
    computeChannelStats(d);
    return d;
}

#ifdef GRAFTLAB_HAVE_OPENCV
namespace {
bool isImageFile(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), ::tolower);
    return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".tif" || e == ".tiff" || e == ".webp" || e == ".pgm" || e == ".ppm";
}

// Shorter side to `size`, then the centre square: the usual evaluation-style resize.
bool decodeSquare(const std::string& path, int size, std::vector<uint8_t>& out) {
    cv::Mat bgr;
    try {
        bgr = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception&) {
        return false;
    }
    if (bgr.empty()) return false;
    double scale = double(size) / std::min(bgr.cols, bgr.rows);
    cv::Mat resized;
    cv::resize(bgr, resized, cv::Size(std::max(size, int(std::lround(bgr.cols * scale))), std::max(size, int(std::lround(bgr.rows * scale)))),
               0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    cv::Rect roi((resized.cols - size) / 2, (resized.rows - size) / 2, size, size);
    cv::Mat rgb;
    cv::cvtColor(resized(roi), rgb, cv::COLOR_BGR2RGB);
    // HWC -> CHW
    out.resize(size_t(3) * size * size);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
            for (int c = 0; c < 3; ++c) out[size_t(c) * size * size + size_t(y) * size + x] = rgb.at<cv::Vec3b>(y, x)[c];
    return true;
}
}  // namespace

Dataset loadImageFolder(const std::string& rootIn, Split split, int imageSize) {
    if (rootIn.empty()) throw RecipeError("data.root", "image_folder needs data.root: a folder with one sub-folder per class");
    fs::path root(rootIn);
    if (!fs::is_directory(root)) throw FileError(rootIn, "image folder not found");
    // root/train + root/test (or root/val) when present; otherwise root itself with every 10th image of a class
    // (sorted by name) held out as the test split.
    fs::path dir = root;
    bool holdOut = true;
    if (fs::is_directory(root / "train")) {
        holdOut = false;
        dir = split == Split::Train ? root / "train" : (fs::is_directory(root / "test") ? root / "test" : root / "val");
        if (!fs::is_directory(dir)) throw FileError((root / "test").string(), "image folder has train/ but no test/ or val/");
    }
    std::vector<fs::path> classes;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory()) classes.push_back(e.path());
    std::sort(classes.begin(), classes.end());
    if (classes.empty()) throw FileError(dir.string(), "no class sub-folders (expected one folder of images per class)");
    Dataset d;
    d.name = "image_folder";
    d.numClasses = int(classes.size());
    std::vector<uint8_t> pixels, buf;
    std::vector<int64_t> labels;
    int skipped = 0;
    for (size_t c = 0; c < classes.size(); ++c) {
        d.classNames.push_back(classes[c].filename().string());
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(classes[c]))
            if (e.is_regular_file() && isImageFile(e.path())) files.push_back(e.path());
        std::sort(files.begin(), files.end());
        int kept = 0;
        for (size_t i = 0; i < files.size(); ++i) {
            if (holdOut && ((i % 10 == 9) != (split == Split::Test))) continue;
            if (!decodeSquare(files[i].string(), imageSize, buf)) {
                spdlog::warn("{}: unreadable image, skipped", files[i].string());
                ++skipped;
                continue;
            }
            pixels.insert(pixels.end(), buf.begin(), buf.end());
            labels.push_back(int64_t(c));
            ++kept;
        }
        if (kept == 0)
            throw FileError(classes[c].string(), std::string("class folder has no readable image") +
                                                     (holdOut && split == Split::Test ? " for the test split (every 10th image is held out)" : ""));
    }
    const int64_t n = int64_t(labels.size());
    d.images = torch::from_blob(pixels.data(), {n, 3, imageSize, imageSize}, torch::kUInt8).clone();
    d.labels = torch::from_blob(labels.data(), {n}, torch::kInt64).clone();
    if (skipped) d.note = std::to_string(skipped) + " unreadable image(s) skipped (see the log)";
    computeChannelStats(d);
    return d;
}
Dataset loadImageFiles(const std::vector<std::string>& paths, int imageSize, int channels) {
    if (paths.empty()) throw std::invalid_argument("loadImageFiles: no images");
    Dataset d;
    d.name = "your images";
    d.numClasses = 1;
    std::vector<uint8_t> pixels, buf;
    const size_t plane = size_t(imageSize) * imageSize;
    for (const auto& p : paths) {
        if (!fs::is_regular_file(p)) throw FileError(p, "image not found");
        if (!decodeSquare(p, imageSize, buf)) throw FileError(p, "not an image OpenCV can decode (PNG, JPEG, BMP, TIFF, WebP, PNM)");
        if (channels == 1) {
            for (size_t i = 0; i < plane; ++i)
                pixels.push_back(uint8_t(std::lround(0.299 * buf[i] + 0.587 * buf[plane + i] + 0.114 * buf[2 * plane + i])));
        } else {
            pixels.insert(pixels.end(), buf.begin(), buf.end());
        }
        d.classNames.push_back(fs::path(p).filename().string());
    }
    const int64_t n = int64_t(paths.size());
    d.images = torch::from_blob(pixels.data(), {n, channels, imageSize, imageSize}, torch::kUInt8).clone();
    d.labels = torch::zeros({n}, torch::kInt64);
    computeChannelStats(d);
    return d;
}

std::vector<std::string> imageFilesIn(const std::string& dir) {
    if (!fs::is_directory(dir)) throw FileError(dir, "image folder not found");
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && isImageFile(e.path())) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    if (out.empty()) throw FileError(dir, "no image files (png, jpg, jpeg, bmp, tif, webp, pgm, ppm) in this folder");
    return out;
}
#else
Dataset loadImageFolder(const std::string& root, Split, int) {
    throw FileError(root, "this build has no image decoding (configured with GRAFTLAB_OPENCV=OFF)");
}
Dataset loadImageFiles(const std::vector<std::string>& paths, int, int) {
    throw FileError(paths.empty() ? std::string() : paths.front(), "this build has no image decoding (configured with GRAFTLAB_OPENCV=OFF)");
}
std::vector<std::string> imageFilesIn(const std::string& dir) {
    throw FileError(dir, "this build has no image decoding (configured with GRAFTLAB_OPENCV=OFF)");
}
#endif

}  // namespace graftlab
