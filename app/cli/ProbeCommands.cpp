// graftlab-cli reconstruct and probe.
#include "CliCommon.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "data/Dataset.h"
#include "base/export/Npz.h"
#include "methods/Mae.h"
#include "methods/MocoV3.h"
#include "probes/ProbeExport.h"
#include "probes/Probes.h"
#include "probes/Reconstruction.h"
#include "train/Checkpoint.h"
#include "train/LoadedModel.h"
#include "train/Trainer.h"
#include "util/ImageIO.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kReconstructHelp =
    "Usage: graftlab-cli reconstruct --ckpt FILE|DIR --out GRID.png [--images N] [--seed S]\n"
    "                                [--image FILE ...] [--image-dir DIR] [--mask-ratio R]\n"
    "\n"
    "Writes MAE's four panels per image (original, masked, reconstruction, reconstruction + visible)\n"
    "for N test images (default 8) chosen, with the mask, from seed S (default 0); with --image / --image-dir\n"
    "for your own images instead (any size, grey or colour: shorter side to the model's size, centre square).\n"
    "--mask-ratio R: the share of patches masked (default: the model's mae.mask_ratio).\n"
    "A DIR (a run, an imported model) means its newest checkpoint.\n";

const char* kProbeHelp =
    "Usage: graftlab-cli probe --ckpt FILE --kind gradcos|attention|similarity|reconstruction|all --out DIR\n"
    "                          [--heads CKPT] [--samples N] [--block B] [--temperature T] [--query P] [--head H]\n"
    "                          [--format csv|npz] [--image FILE ...] [--image-dir DIR] [--mask-ratio R] [--mask-seed S]\n"
    "\n"
    "Runs a probe on the checkpoint's model (a DIR: its newest checkpoint; an imported model too) for N fixed probe\n"
    "images of its training set (evenly spaced, the same the training-time probes use), or for your own images\n"
    "(--image FILE, repeatable, or every image of --image-dir DIR; any size, grey or colour, resized and normalised\n"
    "as the model expects), and writes DIR/<kind>.png, DIR/<kind>.snap and DIR/<kind>.csv, or with\n"
    "--format npz DIR/<kind>.npz instead of the CSV: z = numpy.load('DIR/gradcos.npz'); z['cos'], z['summary'], ...;\n"
    "json.loads(z['meta'].item()) holds the kind, step, labels and notes.\n"
    "  gradcos         per-block cosine between the MIM (MAE) and CL (MoCo v3) loss gradients, per image (N images,\n"
    "                  default the recipe's probes.gradcos_samples = 64, in chunks of probes.samples), and for\n"
    "                  the summed losses of all of them (batch_cos).\n"
    "                  Needs both heads: an MTL checkpoint has them; otherwise --heads CKPT attaches the\n"
    "                  missing one from another checkpoint of the same architecture, and without it a freshly\n"
    "                  initialised head is attached (said in the output).\n"
    "  attention       class-token attention per block (mean of heads, or --head H) and rollout\n"
    "  similarity      cosine similarity of query patch P (default: centre) to every patch after block B\n"
    "                  (default -1 = last, after the final norm); ConMIM checkpoints add the look-up at T\n"
    "  reconstruction  MAE's four panels (needs an MAE decoder: MAE, MTL, or --heads), with --mask-ratio R and\n"
    "                  --mask-seed S (default: the model's mask ratio, a fixed seed)\n";

// --image FILE ... / --image-dir DIR: the user's images, empty when neither is given.
std::vector<std::string> userImages(const Args& a) {
    std::vector<std::string> files;
    if (a.options.count("image"))
        for (const auto& f : a.options.at("image")) files.push_back(f);
    if (a.has("image-dir"))
        for (const auto& f : imageFilesIn(a.get("image-dir"))) files.push_back(f);
    if (files.size() > 64) throw UsageError("at most 64 images at once (" + std::to_string(files.size()) + " given)");
    return files;
}

double maskRatioArg(const Args& a, double def) {
    if (!a.has("mask-ratio")) return def;
    double r = -1;
    try {
        r = std::stod(a.get("mask-ratio"));
    } catch (...) {
    }
    if (!(r > 0 && r < 1)) throw UsageError("--mask-ratio must be between 0 and 1 (exclusive)");
    return r;
}

void requireSameArchitecture(const LoadedModel& a, const LoadedModel& b) {
    auto ja = a.recipe.toJson(), jb = b.recipe.toJson();
    // the encoder's architecture: an attached head must fit it (its own decoder sizes are its own)
    for (const char* key : {"patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio"})
        if (ja["model"][key] != jb["model"][key])
            throw FileError(b.meta.path, std::string("has another architecture than ") + a.meta.path + ": model." + key + " " +
                                             jb["model"][key].dump() + " vs " + ja["model"][key].dump());
    if (ja["data"]["image_size"] != jb["data"]["image_size"] || a.meta.channels != b.meta.channels)
        throw FileError(b.meta.path, "was trained on other images (data.image_size or channels differ) than " + a.meta.path);
}

}  // namespace

int cmdReconstruct(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "images", "seed", "image", "image-dir", "mask-ratio"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kReconstructHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("reconstruct needs --ckpt FILE");
    if (!a.has("out")) throw UsageError("reconstruct needs --out GRID.png");
    setupLogging(a.has("verbose"));
    int64_t n = parseInt("images", a.get("images", "8"));
    int64_t seed = parseInt("seed", a.get("seed", "0"));
    if (n < 1 || n > 64) throw UsageError("--images must be in 1..64");
    std::string ckpt = resolveCheckpoint(a.get("ckpt"));
    CheckpointMeta meta = readCheckpointMeta(ckpt);
    if (meta.imported.is_object() && !meta.imported.value("parts", nlohmann::json::object()).value("decoder", false))
        throw FileError(ckpt, "has no MAE decoder: imported from " + meta.imported.value("source", std::string("another project")) +
                                  " as an encoder only (" + meta.imported.value("layout", std::string()) + ")");
    std::vector<RecipeIssue> issues;
    Recipe recipe = Recipe::fromJson(meta.recipe, issues);
    if (!issues.empty()) throw FileError(ckpt, "its recipe does not parse: " + issues.front().field + ": " + issues.front().message);
    std::string method = recipe.effectiveStages()[size_t(std::max(0, std::min(meta.stage, int(recipe.effectiveStages().size()) - 1)))].method;
    if (method != "mae")
        throw FileError(ckpt, "was trained with method \"" + method + "\"; reconstruct needs a MAE checkpoint (a MAE decoder)");
    recipe.mae.maskRatio = maskRatioArg(a, recipe.mae.maskRatio);
    torch::manual_seed(0);
    MaeObjective mae(recipe, meta.channels, meta.mean, meta.std);
    loadModelState(ckpt, mae, true);

    auto files = userImages(a);
    Dataset test = files.empty() ? loadDataset(recipe.data, Split::Test, uint64_t(recipe.seed))
                                 : loadImageFiles(files, recipe.data.imageSize, meta.channels);
    torch::Tensor idx;
    if (files.empty()) {
        auto gen = at::detail::createCPUGenerator(uint64_t(seed));
        idx = torch::randperm(test.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).slice(0, 0, n);
    } else {
        idx = torch::arange(test.size(), torch::kInt64);
        n = test.size();
    }
    auto images = test.images.index_select(0, idx).to(torch::kFloat32).div(255.f);
    ReconstructionPanels p = reconstruct(mae, images, uint64_t(seed) + 1);
    int scale = std::max(1, 112 / int(images.size(-1)));
    auto grid = panelsToGrid(p, scale);
    char title[256];
    std::snprintf(title, sizeof title, "MAE reconstruction  step %lld  mask ratio %.2f  loss %.4f  (%s%s)",
                  (long long)meta.step, recipe.mae.maskRatio, p.loss, test.name.c_str(), files.empty() ? ", test split" : "");
    writeImage(a.get("out"), grid, {title, p.pixelNote}, {"original", "masked", "reconstruction", "recon + visible"});
    spdlog::info("wrote {} ({} images, loss {:.4f})", a.get("out"), n, p.loss);
    return kExitOk;
}


int cmdProbe(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2,
                       {"ckpt", "kind", "out", "heads", "samples", "block", "temperature", "query", "head", "format", "image", "image-dir",
                        "mask-ratio", "mask-seed"},
                       {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kProbeHelp;
        return kExitOk;
    }
    if (!a.has("ckpt")) throw UsageError("probe needs --ckpt FILE");
    if (!a.has("out")) throw UsageError("probe needs --out DIR");
    std::string kind = a.get("kind", "all");
    static const std::set<std::string> kinds = {"gradcos", "attention", "similarity", "reconstruction", "all"};
    if (!kinds.count(kind)) throw UsageError("--kind must be gradcos, attention, similarity, reconstruction or all, got \"" + kind + "\"");
    std::string format = a.get("format", "csv");
    if (format != "csv" && format != "npz") throw UsageError("--format must be csv or npz, got \"" + format + "\"");
    setupLogging(a.has("verbose"));
    LoadedModel model = loadCheckpointModel(a.get("ckpt"));
    Recipe& recipe = model.recipe;
    const auto files = userImages(a);
    const double maskRatio = maskRatioArg(a, -1);
    const int64_t maskSeed = parseInt("mask-seed", a.get("mask-seed", "12345"));
    if (!files.empty()) {  // every one of the user's images, in the chunk the CL loss contrasts
        recipe.probes.samples = int(files.size());
        recipe.probes.gradcosSamples = int(files.size());
    }
    if (a.has("samples")) {
        int64_t n = parseInt("samples", a.get("samples"));
        if (n < 1 || n > 256) throw UsageError("--samples must be in 1..256");
        recipe.probes.samples = int(std::min<int64_t>(n, recipe.probes.samples));  // the chunk the CL loss contrasts
        recipe.probes.gradcosSamples = int(std::max<int64_t>(2, n));
    }
    int block = int(parseInt("block", a.get("block", "-1")));
    if (block < -1 || block >= recipe.model.depth)
        throw UsageError("--block must be -1 (last) or below the model's depth " + std::to_string(recipe.model.depth));
    double temperature = recipe.probes.similarityTemperature;
    if (a.has("temperature")) {
        try {
            temperature = std::stod(a.get("temperature"));
        } catch (...) {
            temperature = -1;
        }
        if (!(temperature > 0)) throw UsageError("--temperature must be a positive number");
    }
    ProbeExportOptions exportOptions;
    exportOptions.query = int(parseInt("query", a.get("query", "-1")));
    exportOptions.head = int(parseInt("head", a.get("head", "-1")));
    if (exportOptions.query >= recipe.numPatches())
        throw UsageError("--query must be a patch index below " + std::to_string(recipe.numPatches()));
    if (exportOptions.head >= recipe.model.numHeads)
        throw UsageError("--head must be below the model's " + std::to_string(recipe.model.numHeads) + " heads");

    // The other head: from --heads, else (for the two-loss probes) freshly initialised.
    std::shared_ptr<Objective> other;
    std::string otherName;
    std::optional<LoadedModel> attached;
    if (a.has("heads")) {
        attached = loadCheckpointModel(a.get("heads"));
        requireSameArchitecture(model, *attached);
        other = attached->objective;
        otherName = a.get("heads") + " (" + attached->method + ", step " + std::to_string(attached->meta.step) + ")";
    } else {
        ProbeHeads h = findProbeHeads(*model.objective, nullptr, "");
        bool wantsBoth = kind == "gradcos" || kind == "all";
        bool wantsMim = wantsBoth || kind == "reconstruction";
        std::string missing = (!h.cl && wantsBoth) ? "mocov3" : (!h.mim && wantsMim) ? "mae" : "";
        if (!missing.empty()) {
            torch::manual_seed(uint64_t(recipe.seed) + 77);
            other = makeObjective(recipe, missing, model.meta.channels, model.meta.mean, model.meta.std);
            if (auto cl = other->heads().clHeads) {
                auto enc = model.objective->encoder();
                cl->syncMomentum(enc);  // keys from the probed encoder itself
            }
            otherName = "freshly initialised " + missing + " (seed " + std::to_string(recipe.seed + 77) +
                        "; attach a trained one with --heads)";
            spdlog::warn("{} has no {} head: attaching a {}", a.get("ckpt"), missing == "mae" ? "MIM" : "CL", otherName);
        }
    }

    Dataset data = files.empty() ? loadDataset(recipe.data, Split::Train, uint64_t(recipe.seed))
                                 : loadImageFiles(files, recipe.data.imageSize, model.meta.channels);
    if (data.channels() != model.meta.channels)
        throw FileError(a.get("ckpt"), "was trained on " + std::to_string(model.meta.channels) + "-channel images, but its dataset now has " +
                                           std::to_string(data.channels()));
    data.mean = model.meta.mean;  // the checkpoint's normalisation, as in training
    data.std = model.meta.std;
    ProbeRunner runner(recipe, data, torch::kCPU);
    runner.setReconstructionMask(maskRatio, uint64_t(maskSeed));
    std::error_code ec;
    fs::create_directories(a.get("out"), ec);
    if (ec) throw FileError(a.get("out"), "cannot create directory: " + ec.message());
    std::vector<std::string> selected = kind == "all" ? std::vector<std::string>{"reconstruction", "attention", "similarity", "gradcos"}
                                                  : std::vector<std::string>{kind};
    int produced = 0;
    for (const auto& k : selected) {
        auto t0 = std::chrono::steady_clock::now();
        Snapshot s;
        int64_t step = model.meta.step;
        int stage = model.meta.stage;
        if (k == "gradcos") s = runner.gradcos(step, stage, *model.objective, other.get(), otherName);
        else if (k == "attention") s = runner.attention(step, stage, *model.objective);
        else if (k == "similarity") s = runner.similarity(step, stage, *model.objective, block, temperature);
        else s = runner.reconstruction(step, stage, *model.objective, other.get(), otherName);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!s.unavailable().empty()) {
            std::cerr << "note: " << k << " unavailable for " << a.get("ckpt") << ": " << s.unavailable() << "\n";
            continue;
        }
        std::string stem = (fs::path(a.get("out")) / k).string();
        writeSnapshotFile(stem + ".snap", s);
        std::vector<std::string> csvs;
        if (format == "npz") {
            writeNpz(stem + ".npz", snapshotArrays(s));
            csvs.push_back(stem + ".npz");
        } else {
            csvs = exportSnapshotCsv(s, stem + ".csv");
        }
        std::string png = stem + ".png";
        if (imageIoAvailable()) exportSnapshotPng(s, png, exportOptions);
        else png = "(no PNG: built without OpenCV)";
        ++produced;
        spdlog::info("{}: {} and {} ({:.1f} s)", k, png, csvs.front(), secs);
        if (k == "gradcos") {
            const auto& sum = *s.find("summary");
            auto groups = s.meta["groups"].get<std::vector<std::string>>();
            std::printf("gradient cosine MIM vs CL, step %lld, %lld images\n  MIM head: %s\n  CL head:  %s\n",
                        (long long)step, (long long)s.find("cos")->shape[1], s.meta.value("mim_head", "").c_str(),
                        s.meta.value("cl_head", "").c_str());
            std::printf("  %-10s %8s %8s %8s %8s\n", "group", "mean", "q10", "q90", "neg");
            for (size_t g = 0; g < groups.size(); ++g)
                std::printf("  %-10s %8.3f %8.3f %8.3f %7.0f%%\n", groups[g].c_str(), sum.at({int64_t(g), kCosMean}), sum.at({int64_t(g), kCosQ10}),
                            sum.at({int64_t(g), kCosQ90}), 100.0 * sum.at({int64_t(g), kCosFracNegative}));
        }
    }
    if (produced == 0) return kExitUsage;
    return kExitOk;
}

}  // namespace graftlab::cli
