// graftlab-cli: the headless face of GraftLab. Every sub-command has --help; user errors exit 2 with the
// field or file named, runtime failures exit 1. Each command lives in its own file of app/cli/.
#include "CliCommon.h"
#include "base/util/StopSignals.h"
#include "base/recipe/Recipe.h"
#include "base/util/Errors.h"
#include "util/Log.h"
#include "base/util/ThreadEnv.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

using namespace graftlab;
using namespace graftlab::cli;

namespace {

const char* kMainHelp =
    "graftlab-cli - self-supervised ViT pretraining (MAE, MoCo v3, their combinations, grafting, ConMIM) from the\n"
    "command line\n"
    "\n"
    "Usage: graftlab-cli <command> [options]\n"
    "\n"
    "Commands:\n"
    "  train        train a recipe into a run directory\n"
    "  resume       continue a run directory from its newest checkpoint\n"
    "  reconstruct  MAE demo grid (original / masked / reconstruction / + visible) from a checkpoint\n"
    "  eval         linear probe, 1% few-shot, k-NN and fine-tuning of a checkpoint's encoder\n"
    "  table        train several recipes with equal optimizer steps and evaluate them all (the papers' Table 1)\n"
    "  sweep        train one recipe over a grid of field values, evaluate each, one table and one figure\n"
    "  embed        frozen features of a split, for Python (torch.load)\n"
    "  export       the encoder with timm's names (.pt or .safetensors), or a run's probe results as .npz\n"
    "  report       one self-contained HTML page of a run: curves, recipe, evaluation, probes\n"
    "  probe        gradient cosines, attention, patch similarity or reconstructions of a checkpoint (PNG + CSV or .npz)\n"
    "  recipe       print a recipe with every default filled in, or the list of fields\n"
    "  import       open a checkpoint the field publishes (MAE, MoCo v3, Layer Grafted, DINO, timm) as a GraftLab model\n"
    "  bench        training speed: images/s, model FLOPs, achieved vs measured sgemm GFLOP/s\n"
    "\n"
    "Options: --version, --help.  `graftlab-cli <command> --help` describes each command.\n";

}  // namespace

int main(int argc, char** argv) {
    graftlab::blockStopSignals();  // before any thread, and kept across the re-execution below
    graftlab::ensureThreadEnvironment(argv);
    // The commands that write a run take every stop signal from the start (one sent before the re-execution above
    // waits, blocked, until now): one that comes while the data, the model or a sweep's evaluation are being
    // prepared is kept, and the run stops with a checkpoint at the next safe point (before its first step, between
    // a sweep's points) instead of being killed by it. `eval` (and a table's or sweep's evaluations) stop at the
    // next protocol or fine-tuning step, a fine-tuning saving its state to continue from.
    std::optional<graftlab::StopSignalRoute> early;
    if (argc >= 2 && (std::strcmp(argv[1], "train") == 0 || std::strcmp(argv[1], "resume") == 0 || std::strcmp(argv[1], "sweep") == 0 ||
                      std::strcmp(argv[1], "table") == 0 || std::strcmp(argv[1], "eval") == 0))
        early.emplace([](int sig) { spdlog::warn("{} received: stopping at the next safe point", strsignal(sig)); });
    graftlab::startStopSignalThread();
    setupLogging(false);
    if (argc < 2) {
        std::cerr << kMainHelp;
        return kExitUsage;
    }
    std::string cmd = argv[1];
    try {
        if (cmd == "--version" || cmd == "version") {
            std::cout << "graftlab-cli " << versionString() << " (LibTorch " << TORCH_VERSION << ")\n";
            return kExitOk;
        }
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            std::cout << kMainHelp;
            return kExitOk;
        }
        if (cmd == "train") return cmdTrain(argc, argv);
        if (cmd == "resume") return cmdResume(argc, argv);
        if (cmd == "reconstruct") return cmdReconstruct(argc, argv);
        if (cmd == "recipe") return cmdRecipe(argc, argv);
        if (cmd == "probe") return cmdProbe(argc, argv);
        if (cmd == "eval") return cmdEval(argc, argv);
        if (cmd == "embed") return cmdEmbed(argc, argv);
        if (cmd == "export") return cmdExport(argc, argv);
        if (cmd == "table") return cmdTable(argc, argv);
        if (cmd == "sweep") return cmdSweep(argc, argv);
        if (cmd == "report") return cmdReport(argc, argv);
        if (cmd == "bench") return cmdBench(argc, argv);
        if (cmd == "import") return cmdImport(argc, argv);
        std::cerr << "error: unknown command \"" << cmd << "\"\n\n" << kMainHelp;
        return kExitUsage;
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << " (see graftlab-cli " << cmd << " --help)\n";
        return kExitUsage;
    } catch (const RecipeError& e) {
        std::cerr << "error: recipe field " << e.what() << "\n";
        return kExitUsage;
    } catch (const FileError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitUsage;
    } catch (const std::filesystem::filesystem_error& e) {
        // e.g. --out naming a file where a directory is needed: the path and the system's reason, not the library's text
        std::string path = e.path1().empty() ? std::string("(path)") : e.path1().string();
        std::cerr << "error: " << path << ": " << e.code().message() << "\n";
        return kExitUsage;
    } catch (const c10::Error& e) {
        std::cerr << "error: " << e.what_without_backtrace() << "\n";
        return kExitFailure;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitFailure;
    }
}
