#pragma once
// In-memory image datasets. Images stay uint8 (N x C x H x W) until the loader turns a batch into floats.
#include "base/recipe/Recipe.h"

#include <torch/types.h>

#include <string>
#include <vector>

namespace graftlab {

enum class Split { Train, Test };

struct Dataset {
    std::string name;             // "fashion_mnist", "synthetic", ...
    torch::Tensor images;         // uint8, N x C x H x W, already at the recipe's image size
    torch::Tensor labels;         // int64, N
    int numClasses = 0;
    std::vector<std::string> classNames;
    std::vector<float> mean, std; // per channel, of images / 255 — used to normalise and to un-normalise for display
    std::string note;             // e.g. why a fallback was taken; empty otherwise

    int64_t size() const { return images.defined() ? images.size(0) : 0; }
    int channels() const { return images.defined() ? static_cast<int>(images.size(1)) : 0; }
};

// Fashion-MNIST from the four IDX files (".gz" or plain) in `root` (default /usr/share/datasets/fashion-mnist).
// Checks magic numbers, dimensions and counts; throws FileError naming the file at fault.
Dataset loadFashionMnist(const std::string& root, Split split, int imageSize);

// Built-in procedural images with 10 classes (disk, square, triangle, ring, h-stripes, v-stripes, plus, X,
// checkerboard, two blobs), deterministic from `seed`: the fallback and the test data.
Dataset makeSynthetic(int64_t count, int imageSize, uint64_t seed, Split split);

// CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin) in `root` or root/cifar-10-batches-bin.
Dataset loadCifar10(const std::string& root, Split split, int imageSize);

// One sub-folder of images per class (root/train + root/test|val when present, else every 10th image of each
// class is the test split). RGB, shorter side resized to imageSize then centre-cropped. Unreadable files are
// skipped with a warning naming them; a class without a readable image is an error naming its folder.
Dataset loadImageFolder(const std::string& root, Split split, int imageSize);
// The user's own images (PNG, JPEG, ... any size, grey or colour) as a dataset without labels: shorter side to
// imageSize, centre square, `channels` 3 (grey replicated) or 1 (luma). FileError naming a file that does not decode.
Dataset loadImageFiles(const std::vector<std::string>& paths, int imageSize, int channels);
// The image files of a folder (not its sub-folders), sorted by name; FileError when there are none.
std::vector<std::string> imageFilesIn(const std::string& dir);

// The dataset a recipe asks for, with the fallback to the synthetic set when allowed (reason in `note`).
Dataset loadDataset(const DataConfig& cfg, Split split, uint64_t seed);

std::string defaultFashionMnistRoot();

// Resizes uint8 images to `size` x `size` (bilinear, antialiased when shrinking).
torch::Tensor resizeImagesU8(const torch::Tensor& images, int size);

// How many images of `test` are byte for byte an image of `train` (same stored size): a test split that shares
// images with the training split measures memory, not features.
int64_t imagesShared(const Dataset& train, const Dataset& test);

// Fills mean/std per channel from the images.
void computeChannelStats(Dataset& d);

}  // namespace graftlab
