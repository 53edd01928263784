// graftlab-cli reconstruct and probe.
#include "CliCommon.h"
#include "recipe/Recipe.h"
#include "util/Errors.h"
#include "util/Log.h"
#include "data/Dataset.h"
#include "export/Npz.h"
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
    "Usage: graftlab-cli reconstruct --ckpt FILE --out GRID.png [--images N] [--seed S]\n"
    "\n"
    "Writes MAE's four panels per image (original, masked, reconstruction, reconstruction + visible)\n"
    "for N test images (default 8) chosen, with the mask, from seed S (default 0).\n";

const char* kProbeHelp =
    "Usage: graftlab-cli probe --ckpt FILE --kind gradcos|attention|similarity|reconstruction|all --out DIR\n"
    "                          [--heads CKPT] [--samples N] [--block B] [--temperature T] [--query P] [--head H]\n"
    "                          [--format csv|npz]\n"
    "\n"
    "Runs a probe on the checkpoint's model for N fixed probe images of its training set (evenly spaced, the\n"
    "same the training-time probes use) and writes DIR/<kind>.png, DIR/<kind>.snap and DIR/<kind>.csv, or with\n"
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
    "  reconstruction  MAE's four panels (needs an MAE decoder: MAE, MTL, or --heads)\n";

void requireSameArchitecture(const LoadedModel& a, const LoadedModel& b) {
    auto ja = a.recipe.toJson(), jb = b.recipe.toJson();
    for (const char* key : {"patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "decoder_embed_dim", "decoder_depth", "decoder_num_heads"})
        if (ja["model"][key] != jb["model"][key])
            throw FileError(b.meta.path, std::string("has another architecture than ") + a.meta.path + ": model." + key + " " +
                                             jb["model"][key].dump() + " vs " + ja["model"][key].dump());
    if (ja["data"]["image_size"] != jb["data"]["image_size"] || a.meta.channels != b.meta.channels)
        throw FileError(b.meta.path, "was trained on other images (data.image_size or channels differ) than " + a.meta.path);
}

}  // namespace

int cmdReconstruct(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "images", "seed"}, {"verbose", "help"});
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
    std::string ckpt = a.get("ckpt");
    CheckpointMeta meta = readCheckpointMeta(ckpt);
    std::vector<RecipeIssue> issues;
    Recipe recipe = Recipe::fromJson(meta.recipe, issues);
    if (!issues.empty()) throw FileError(ckpt, "its recipe does not parse: " + issues.front().field + ": " + issues.front().message);
    std::string method = recipe.effectiveStages()[size_t(std::max(0, std::min(meta.stage, int(recipe.effectiveStages().size()) - 1)))].method;
    if (method != "mae")
        throw FileError(ckpt, "was trained with method \"" + method + "\"; reconstruct needs a MAE checkpoint (a MAE decoder)");
    torch::manual_seed(0);
    MaeImpl mae(recipe, meta.channels, meta.mean, meta.std);
    loadModelState(ckpt, mae, true);

    Dataset test = loadDataset(recipe.data, Split::Test, uint64_t(recipe.seed));
    auto gen = at::detail::createCPUGenerator(uint64_t(seed));
    auto idx = torch::randperm(test.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).slice(0, 0, n);
    auto images = test.images.index_select(0, idx).to(torch::kFloat32).div(255.f);
    ReconstructionPanels p = reconstruct(mae, images, uint64_t(seed) + 1);
    int scale = std::max(1, 112 / int(images.size(-1)));
    auto grid = panelsToGrid(p, scale);
    char title[256];
    std::snprintf(title, sizeof title, "MAE reconstruction  step %lld  mask ratio %.2f  loss %.4f  (%s, test split)",
                  (long long)meta.step, recipe.mae.maskRatio, p.loss, test.name.c_str());
    writeImage(a.get("out"), grid, {title, p.pixelNote}, {"original", "masked", "reconstruction", "recon + visible"});
    spdlog::info("wrote {} ({} images, loss {:.4f})", a.get("out"), n, p.loss);
    return kExitOk;
}


int cmdProbe(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "kind", "out", "heads", "samples", "block", "temperature", "query", "head", "format"},
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

    Dataset data = loadDataset(recipe.data, Split::Train, uint64_t(recipe.seed));
    if (data.channels() != model.meta.channels)
        throw FileError(a.get("ckpt"), "was trained on " + std::to_string(model.meta.channels) + "-channel images, but its dataset now has " +
                                           std::to_string(data.channels()));
    data.mean = model.meta.mean;  // the checkpoint's normalisation, as in training
    data.std = model.meta.std;
    ProbeRunner runner(recipe, data, torch::kCPU);
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
                std::printf("  %-10s %8.3f %8.3f %8.3f %7.0f%%\n", groups[g].c_str(), sum.at({int64_t(g), 0}), sum.at({int64_t(g), 1}),
                            sum.at({int64_t(g), 5}), 100.0 * sum.at({int64_t(g), 6}));
        }
    }
    if (produced == 0) return kExitUsage;
    return kExitOk;
}

}  // namespace graftlab::cli
