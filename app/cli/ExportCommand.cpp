// graftlab-cli export and report: files in the field's formats.
#include "CliCommon.h"
#include "eval/EvaluateCheckpoint.h"
#include "train/EncoderExport.h"
#include "base/export/Npz.h"
#include "base/export/Report.h"
#include "base/probes/DepthProfile.h"
#include "base/util/AtomicFile.h"
#include "base/probes/Snapshot.h"
#include "base/run/RunLayout.h"
#include "base/util/Errors.h"
#include "util/Log.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace graftlab::cli {
namespace fs = std::filesystem;

namespace {

const char* kExportHelp =
    "Usage: graftlab-cli export --ckpt FILE --out ENCODER.pt|ENCODER.safetensors [--format pt|safetensors]\n"
    "       graftlab-cli export --run DIR --out PROBES.npz [--kind gradcos|attention|similarity|reconstruction]\n"
    "       graftlab-cli export --run DIR --out PROFILE.csv --format profile [--phases N]\n"
    "\n"
    "Encoder: the checkpoint's encoder with timm's ViT names (patch_embed.proj.weight, cls_token, pos_embed,\n"
    "blocks.0.attn.qkv.weight, blocks.0.mlp.fc1.weight, ..., norm.weight), and what a user must know to feed it:\n"
    "model sizes, img_size, in_chans and the input normalisation (mean, std: x = (pixel / 255 - mean) / std).\n"
    "  .safetensors  safetensors.torch.load_file('ENCODER.safetensors'); the metadata is in the header\n"
    "                (safetensors.safe_open(...).metadata()); timm loads the tensors directly\n"
    "  .pt           sd = torch.load('ENCODER.pt'); the metadata is written to ENCODER.json beside it\n"
    "The format follows the extension unless --format says otherwise.\n"
    "\n"
    "Probe results: every stored probe snapshot of the run DIR (or of one --kind) as one .npz:\n"
    "  z = numpy.load('PROBES.npz'); z['gradcos/000000200/cos'] is the cosine array of the step-200 probe,\n"
    "  json.loads(z['gradcos/000000200/meta'].item()) its labels and notes; z['index'].item() lists them all.\n"
    "`graftlab-cli probe --format npz` writes one checkpoint's probes the same way.\n"
    "\n"
    "Depth profile (--format profile): the gradient cosine between the MIM and CL losses per parameter group, from\n"
    "the input up, one row per group and training phase (one phase per stage of a staged run, else N equal spans of\n"
    "the probed steps, default 4): phase,first_step,last_step,probes,group,depth,mean,q10,q90,batch_cos.\n";

const char* kReportHelp =
    "Usage: graftlab-cli report DIR [--out REPORT.html]\n"
    "\n"
    "Writes one self-contained HTML file (default DIR/report.html) about the run in DIR, to mail or attach to a\n"
    "draft: loss, learning-rate and throughput curves as inline SVG, the recipe, the evaluation table\n"
    "(checkpoints/eval.json, from `graftlab-cli eval` or the GUI), the last reconstructions, and the gradient-cosine\n"
    "depth profile (mean over probe images per block, with the 10-90 % band). No network access is needed to view it.\n";

int exportProbes(const Args& a) {
    std::string run = a.get("run"), out = a.get("out"), kind = a.get("kind");
    if (!RunLayout(run).holdsRun()) throw FileError(run, "holds no run (no recipe.json)");
    std::string dir = RunLayout(run).snapshots();
    std::vector<std::string> warnings;
    auto snaps = SnapshotStore::load(dir, kind, &warnings);
    for (const auto& w : warnings) spdlog::warn("{}", w);
    std::vector<NpyArray> arrays;
    nlohmann::json index = nlohmann::json::array();
    for (const auto& s : snaps) {
        if (!s.unavailable().empty()) continue;
        char step[16];
        std::snprintf(step, sizeof step, "%09lld", (long long)s.step);
        std::string prefix = s.kind + "/" + step + "/";
        auto part = snapshotArrays(s, prefix);
        nlohmann::json names = nlohmann::json::array();
        for (const auto& p : part) names.push_back(p.name);
        index.push_back({{"kind", s.kind}, {"step", s.step}, {"stage", s.stage}, {"arrays", names}});
        arrays.insert(arrays.end(), part.begin(), part.end());
    }
    if (a.get("format") == "profile") {
        int phases = int(parseInt("phases", a.get("phases", "4")));
        if (phases < 1 || phases > 100) throw UsageError("--phases must be in 1..100");
        DepthProfile p = depthProfile(snaps, phases);
        if (p.phases.empty()) throw FileError(dir, "holds no gradient-cosine probes (a run with a MIM and a CL loss and probes.every > 0 has them)");
        writeFileAtomically(out, depthProfileCsv(p));
        spdlog::info("wrote {}: the depth profile of {} groups in {} phases", out, p.groups.size(), p.phases.size());
        return kExitOk;
    }
    if (index.empty())
        throw FileError(dir, kind.empty() ? "holds no probe results (was the run trained with probes.every > 0?)"
                                          : "holds no \"" + kind + "\" probe results");
    arrays.push_back(npyText("index", index.dump()));
    writeNpz(out, arrays);
    spdlog::info("wrote {}: {} probe snapshots, {} arrays (numpy.load reads it)", out, index.size(), arrays.size());
    return kExitOk;
}

}  // namespace

int cmdExport(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"ckpt", "out", "format", "run", "kind", "phases"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kExportHelp;
        return kExitOk;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument \"" + a.positional.front() + "\"");
    setupLogging(a.has("verbose"));
    if (a.has("ckpt") == a.has("run")) throw UsageError("export needs either --ckpt FILE (the encoder) or --run DIR (probe results)");
    if (!a.has("out")) throw UsageError(a.has("ckpt") ? "export needs --out ENCODER.pt or ENCODER.safetensors" : "export needs --out PROBES.npz");
    if (a.has("run")) {
        if (a.has("format") && a.get("format") != "npz" && a.get("format") != "profile")
            throw UsageError("--run exports probe results as npz, or the gradient-cosine depth profile (--format profile)");
        return exportProbes(a);
    }
    if (a.has("kind")) throw UsageError("--kind goes with --run");
    std::string format = a.get("format");
    if (!format.empty() && format != "pt" && format != "safetensors") throw UsageError("--format must be pt or safetensors, got \"" + format + "\"");
    EncoderExport e = exportEncoder(checkpointArg(a), a.get("out"), format);
    spdlog::info("wrote {}", e.summary());
    return kExitOk;
}

int cmdReport(int argc, char** argv) {
    Args a = parseArgs(argc, argv, 2, {"out"}, {"verbose", "help"});
    if (a.has("help")) {
        std::cout << kReportHelp;
        return kExitOk;
    }
    if (a.positional.size() != 1) throw UsageError("report needs exactly one run directory");
    setupLogging(a.has("verbose"));
    std::string run = a.positional[0];
    std::string out = a.get("out", RunLayout(run).report());
    ReportSummary r = writeRunReport(run, out);
    spdlog::info("wrote {} ({} KB: {} metrics rows, {} evaluation entries, {})", out, r.bytes / 1024, r.metricsRows, r.evalEntries,
                 r.sections);
    for (const auto& p : r.problems) std::cerr << "warning: " << p << "\n";
    if (!r.problems.empty()) {
        std::cerr << "error: the report is missing what could not be read (" << r.problems.size() << " problem(s) above, also listed on the page)\n";
        return kExitFailure;
    }
    return kExitOk;
}

}  // namespace graftlab::cli
