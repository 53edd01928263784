// graftlab-cli import: the checkpoints the field publishes as GraftLab models.
#include "CliCommon.h"
#include "import/ImportModel.h"
#include "util/Log.h"

#include <chrono>
#include <iostream>

namespace graftlab::cli {

namespace {

const char* kImportHelp =
    "Usage: graftlab-cli import FILE --out DIR [--image-size PX] [--set key=value ...] [--force]\n"
    "\n"
    "Makes of a checkpoint another project published a GraftLab model directory (recipe.json,\n"
    "checkpoints/step-00000000.ckpt, import.json) that every command takes: eval, embed, probe, reconstruct,\n"
    "export, report, and a stage's init (\"init\": \"checkpoint\", \"checkpoint\": \"DIR\").\n"
    "Layouts: facebookresearch/mae (released encoders {'model': ...}, visualisation checkpoints with the decoder,\n"
    "training checkpoints with optimizer/scaler/epoch/args), facebookresearch/moco-v3 and Layer Grafted Pretraining\n"
    "(state_dict with module.base_encoder.* / momentum_encoder.* / predictor.*), DINO and timm ViTs (a bare state\n"
    "dict, .pth or .safetensors; a classifier head is left out). ConMIM / BEiT models (layer scale, q/v biases,\n"
    "relative position bias) are refused with what is missing.\n"
    "The file is read without running any of its code: a pickle that names anything but tensors, storages,\n"
    "dicts, argparse.Namespace or numpy scalars is refused, naming the global.\n"
    "  --image-size PX  the input size (default: the size the position embedding was trained for; another size\n"
    "                   interpolates it bicubically, as timm does)\n"
    "  --set k=v        on the written recipe: model.num_heads (the weights do not fix it: default from the\n"
    "                   checkpoint's model name, else the ViT table by width), model.decoder_num_heads, the\n"
    "                   dataset eval and probes use (data.dataset, data.root), mae.mask_ratio, ...\n"
    "  --force          replace DIR when it holds an earlier import\n";

}  // namespace

int cmdImport(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"out", "image-size", "set"}, {"force", "verbose", "help"});
    if (a.has("help")) {
        std::cout << kImportHelp;
        return kExitOk;
    }
    if (a.positional.size() != 1) throw UsageError("import needs one checkpoint FILE");
    if (!a.has("out")) throw UsageError("import needs --out DIR");
    setupLogging(a.has("verbose"));
    ImportOptions o;
    if (a.has("image-size")) {
        int64_t px = parseInt("image-size", a.get("image-size"));
        if (px < 8 || px > 4096) throw UsageError("--image-size must be in 8..4096");
        o.imageSize = int(px);
    }
    if (a.options.count("set")) o.overrides = a.options.at("set");
    o.force = a.has("force");
    auto t0 = std::chrono::steady_clock::now();
    ImportResult r = importModel(a.positional[0], a.get("out"), o);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "imported " << a.positional[0] << " (sha256 " << r.info["sha256"].get<std::string>().substr(0, 16) << "...)\n";
    for (const auto& l : r.lines) std::cout << "  " << l << "\n";
    std::cout << "model: " << r.checkpoint << "  (" << secs << " s)\n";
    return kExitOk;
}

}  // namespace graftlab::cli
