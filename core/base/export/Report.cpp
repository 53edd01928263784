#include "base/export/Report.h"
#include "base/probes/DepthProfile.h"
#include "base/probes/MaskedPatch.h"
#include "base/recipe/Recipe.h"
#include "base/probes/Snapshot.h"
#include "base/run/EvalResults.h"
#include "base/run/Observer.h"
#include "base/run/RunLayout.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/Png.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

std::string fmt(double v, int precision = 4) {
    if (!std::isfinite(v)) return "–";
    std::ostringstream os;
    os.precision(precision);
    os << v;
    return os.str();
}

// Tick positions at 1, 2 or 5 x 10^k spacing covering [lo, hi].
std::vector<double> niceTicks(double lo, double hi, int target = 6) {
    std::vector<double> t;
    if (!(hi > lo)) return {lo};
    double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    return t;
}

// At most ~2 * buckets points: the first and last point and each bucket's minimum and maximum, in x order.
std::vector<std::pair<double, double>> thin(const std::vector<std::pair<double, double>>& p, size_t buckets = 750) {
    if (p.size() <= 2 * buckets) return p;
    std::vector<std::pair<double, double>> out;
    size_t per = (p.size() + buckets - 1) / buckets;
    for (size_t b = 0; b < p.size(); b += per) {
        size_t e = std::min(p.size(), b + per), lo = b, hi = b;
        for (size_t i = b; i < e; ++i) {
            if (p[i].second < p[lo].second) lo = i;
            if (p[i].second > p[hi].second) hi = i;
        }
        out.push_back(p[std::min(lo, hi)]);
        if (lo != hi) out.push_back(p[std::max(lo, hi)]);
    }
    if (out.back() != p.back()) out.push_back(p.back());
    return out;
}

// (n, C, H, W) images in [0, 1] (C = 1 or 3, per column) as rows of RGB panels (one column per array), upscaled, 2 px white gaps.
std::string panelGridPng(const std::vector<const SnapshotArray*>& columns, int64_t rows, int scale) {
    const auto& first = *columns.front();
    const int64_t H = first.shape[2], W = first.shape[3];
    const int gap = 2, cw = int(W) * scale + gap, ch = int(H) * scale + gap;
    const int width = int(columns.size()) * cw + gap, height = int(rows) * ch + gap;
    std::vector<uint8_t> px(size_t(width) * size_t(height) * 3, 255);
    for (int64_t i = 0; i < rows; ++i)
        for (size_t c = 0; c < columns.size(); ++c)
            for (int64_t y = 0; y < H * scale; ++y)
                for (int64_t x = 0; x < W * scale; ++x)
                    for (int64_t k = 0; k < 3; ++k) {
                        float v = columns[c]->at({i, std::min(k, columns[c]->shape[1] - 1), y / scale, x / scale});  // grey or RGB
                        size_t at = (size_t(gap + i * ch + y) * size_t(width) + size_t(gap + int64_t(c) * cw + x)) * 3 + size_t(k);
                        px[at] = uint8_t(std::lround(255.0 * std::clamp(double(v), 0.0, 1.0)));
                    }
    return encodePng(px.data(), width, height, 3);
}

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    double pos = q * double(v.size() - 1);
    size_t lo = size_t(std::floor(pos)), hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

}  // namespace

std::string base64(const std::string& bytes) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
        if (i + 1 < bytes.size()) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size()) n |= uint32_t(uint8_t(bytes[i + 2]));
        out.push_back(t[(n >> 18) & 63]);
        out.push_back(t[(n >> 12) & 63]);
        out.push_back(i + 1 < bytes.size() ? t[(n >> 6) & 63] : '=');
        out.push_back(i + 2 < bytes.size() ? t[n & 63] : '=');
    }
    return out;
}

std::string htmlEscape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

std::string svgLineChart(const std::string& title, const std::string& xLabel, const std::string& yLabel,
                         const std::vector<SvgSeries>& series, const std::vector<std::pair<double, std::string>>& markers,
                         const std::vector<std::string>& xCategories, int width, int height) {
    const double left = 64, right = 16, top = 30, bottom = 42;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : series) {
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
        }
        for (const auto& [lo, hi] : s.band)
            if (std::isfinite(lo) && std::isfinite(hi)) y0 = std::min(y0, lo), y1 = std::max(y1, hi);
    }
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height << "\" viewBox=\"0 0 " << width
      << ' ' << height << "\" role=\"img\" aria-label=\"" << htmlEscape(title) << "\">"
      << "<text x=\"" << left << "\" y=\"18\" font-size=\"14\" font-weight=\"600\">" << htmlEscape(title) << "</text>";
    if (!std::isfinite(x0)) {
        o << "<text x=\"" << left << "\" y=\"" << height / 2 << "\" fill=\"#888\">no data</text></svg>";
        return o.str();
    }
    if (!xCategories.empty()) x0 = -0.5, x1 = double(xCategories.size()) - 0.5;  // categories sit mid-cell
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) y0 -= 0.5, y1 += 0.5;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    const double pw = width - left - right, ph = height - top - bottom;
    auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
    auto Y = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };
    o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph << "\" fill=\"#fff\" stroke=\"#bbb\"/>";
    o.precision(6);
    for (double t : niceTicks(y0, y1)) {
        o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(t) << "\" y2=\"" << Y(t) << "\" stroke=\"#eee\"/>"
          << "<text x=\"" << left - 6 << "\" y=\"" << Y(t) + 4 << "\" font-size=\"11\" text-anchor=\"end\">" << fmt(t, 3) << "</text>";
    }
    if (!xCategories.empty()) {
        for (size_t i = 0; i < xCategories.size(); ++i)
            o << "<text x=\"" << X(double(i)) << "\" y=\"" << top + ph + 16 << "\" font-size=\"11\" text-anchor=\"middle\">"
              << htmlEscape(xCategories[i]) << "</text>";
    } else {
        for (double t : niceTicks(x0, x1))
            o << "<line x1=\"" << X(t) << "\" x2=\"" << X(t) << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph + 4 << "\" stroke=\"#888\"/>"
              << "<text x=\"" << X(t) << "\" y=\"" << top + ph + 16 << "\" font-size=\"11\" text-anchor=\"middle\">" << fmt(t, 6) << "</text>";
    }
    if (y0 < 0 && y1 > 0)
        o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(0) << "\" y2=\"" << Y(0) << "\" stroke=\"#999\"/>";
    o << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 6 << "\" font-size=\"12\" text-anchor=\"middle\">" << htmlEscape(xLabel)
      << "</text><text transform=\"translate(14 " << top + ph / 2 << ") rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">"
      << htmlEscape(yLabel) << "</text>";
    for (const auto& [x, label] : markers)
        o << "<line x1=\"" << X(x) << "\" x2=\"" << X(x) << "\" y1=\"" << top << "\" y2=\"" << top + ph
          << "\" stroke=\"#999\" stroke-dasharray=\"3 3\"/><text x=\"" << X(x) + 3 << "\" y=\"" << top + 12
          << "\" font-size=\"11\" fill=\"#666\">" << htmlEscape(label) << "</text>";
    for (const auto& s : series) {
        if (s.band.size() == s.points.size() && !s.band.empty()) {
            o << "<polygon fill=\"" << s.colour << "\" fill-opacity=\"0.15\" stroke=\"none\" points=\"";
            for (size_t i = 0; i < s.points.size(); ++i) o << X(s.points[i].first) << ',' << Y(s.band[i].second) << ' ';
            for (size_t i = s.points.size(); i-- > 0;) o << X(s.points[i].first) << ',' << Y(s.band[i].first) << ' ';
            o << "\"/>";
        }
        // A polyline per finite stretch: a NaN loss breaks the line instead of drawing to zero.
        auto pts = thin(s.points);
        std::ostringstream line;
        auto flush = [&] {
            if (!line.str().empty())
                o << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"1.6\""
                  << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << " points=\"" << line.str() << "\"/>";
            line.str("");
        };
        for (const auto& [x, y] : pts) {
            if (!std::isfinite(y)) {
                flush();
                continue;
            }
            line << X(x) << ',' << Y(y) << ' ';
        }
        flush();
        if (s.points.size() <= 24)
            for (const auto& [x, y] : s.points)
                if (std::isfinite(y)) o << "<circle cx=\"" << X(x) << "\" cy=\"" << Y(y) << "\" r=\"2.5\" fill=\"" << s.colour << "\"/>";
    }
    // The legend in one row above the plot, right-aligned beside the title: it never covers a curve.
    double legendWidth = 0;
    for (const auto& s : series) legendWidth += 30 + 6.2 * double(s.name.size()) + 10;
    double lx = std::max(left + 6.5 * double(title.size()) + 24, left + pw - legendWidth), ly = 18;
    for (const auto& s : series) {
        o << "<line x1=\"" << lx << "\" x2=\"" << lx + 18 << "\" y1=\"" << ly - 4 << "\" y2=\"" << ly - 4 << "\" stroke=\"" << s.colour
          << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/><text x=\"" << lx + 22 << "\" y=\"" << ly
          << "\" font-size=\"11\">" << htmlEscape(s.name) << "</text>";
        lx += 30 + 6.2 * double(s.name.size()) + 10;
    }
    o << "</svg>";
    return o.str();
}

namespace {

// The evaluation table from checkpoints/eval.json, one row per checkpoint file. Returns whether it had entries.
bool evaluationSection(std::ostringstream& h, const RunLayout& run, ReportSummary& sum) {
    h << "<h2>Evaluation</h2>";
    EvalFile ev = EvalFile::read(run.evalJson());
    sum.problems.insert(sum.problems.end(), ev.problems.begin(), ev.problems.end());
    if (!ev.entries.empty()) {
        h << "<table><tr><th>Checkpoint</th><th>Step</th><th>Linear</th><th>1%</th><th>k-NN</th><th>Fine-tuning</th><th>Pooling</th></tr>";
        for (const auto& [file, e] : ev.entries) {
            h << "<tr><td>" << htmlEscape(file) << (e.warnings.empty() ? "" : " ⚠") << "</td><td class=\"num\">" << e.step << "</td>";
            for (const std::string& p : kProtocols) {
                const ProtocolResult* r = e.find(p);
                const double v = r ? 100.0 * r->top1 : NAN;
                char buf[16];
                std::snprintf(buf, sizeof buf, std::isfinite(v) ? "%.1f" : "–", v);
                h << "<td class=\"num\">" << buf << "</td>";
            }
            h << "<td>" << htmlEscape(e.pooling) << "</td></tr>";
            ++sum.evalEntries;
        }
        const EvalReport& first = ev.entries.front().second;
        h << "</table><p class=\"meta\">Top-1 accuracy (%) on the " << htmlEscape(first.dataset.empty() ? std::string("?") : first.dataset)
          << " test split (" << first.testImages << " images). Linear: BatchNorm without affine + "
          << "linear layer on frozen features; 1%: logistic regression on a class-balanced 1% of the labels; k-NN: cosine, k = 20, "
          << "T = 0.07; fine-tuning: whole encoder.</p>";
        for (const auto& [file, e] : ev.entries)
            for (const auto& w : e.warnings) h << "<p class=\"meta\">⚠ " << htmlEscape(file) << ": " << htmlEscape(w) << "</p>";
        return true;
    } else {
        h << "<p>Not evaluated yet: <code>graftlab-cli eval --ckpt " << htmlEscape(run.checkpoints())
          << "/step-….ckpt</code> (or <i>Evaluate &amp; compare</i> in the GUI) writes checkpoints/eval.json.</p>";
    }
    return false;
}

// The last stored MAE reconstruction probe as one PNG. Returns whether there was one.
bool reconstructionSection(std::ostringstream& h, const std::string& snapDir, ReportSummary& sum) {
    auto recs = fs::exists(snapDir) ? SnapshotStore::load(snapDir, "reconstruction", &sum.problems) : std::vector<Snapshot>{};
    const Snapshot* last = nullptr;
    for (const auto& s : recs)
        if (s.unavailable().empty() && s.find("original") && s.find("masked") && s.find("reconstruction") && s.find("pasted")) last = &s;
    if (last) {
        std::vector<const SnapshotArray*> cols = {last->find("original"), last->find("masked"), last->find("reconstruction"), last->find("pasted")};
        // the masked patches in magenta, as the GUI and the CLI draw them (the stored grey panel when the mask is damaged)
        const SnapshotArray* mask = last->find("mask");
        const std::optional<SnapshotArray> magenta = mask ? maskedInMagenta(*cols[0], *mask) : std::nullopt;
        if (magenta) cols[1] = &*magenta;
        int64_t rows = std::min<int64_t>(cols[0]->shape[0], 8);
        int scale = std::max(1, 96 / int(cols[0]->shape[2]));
        std::string png = panelGridPng(cols, rows, scale);
        h << "<h2>Reconstructions</h2><figure><img alt=\"MAE reconstructions\" src=\"data:image/png;base64," << base64(png)
          << "\"><figcaption>Step " << last->step << ": original · masked" << (magenta ? " (magenta)" : "") << " · reconstruction · reconstruction with the visible patches pasted"
          << " back; loss " << fmt(last->meta.value("loss", NAN)) << ". " << htmlEscape(last->meta.value("pixel_note", std::string()))
          << "</figcaption></figure>";
        return true;
    }
    return false;
}

// The gradient cosine between the MIM and CL losses per parameter group (Layer Grafted Pretraining's C_MIM,CL) as
// a depth profile, one line per phase of the run. Returns whether the run has gradient-cosine probes.
bool depthProfileSection(std::ostringstream& h, const std::string& snapDir, ReportSummary& sum) {
    auto gcs = fs::exists(snapDir) ? SnapshotStore::load(snapDir, "gradcos", &sum.problems) : std::vector<Snapshot>{};
    DepthProfile prof = depthProfile(gcs);
    if (!prof.phases.empty()) {
        std::vector<SvgSeries> series;
        int c = 0;
        for (const auto& ph : prof.phases) {
            SvgSeries line{ph.label, kPalette[c++ % 8], {}};
            for (size_t g = 0; g < prof.groups.size(); ++g) {
                line.points.emplace_back(double(g), ph.mean[g]);
                line.band.emplace_back(ph.q10[g], ph.q90[g]);
            }
            series.push_back(line);
        }
        const Snapshot* last = nullptr;
        for (const auto& sn : gcs)
            if (sn.unavailable().empty() && sn.find("cos")) last = &sn;
        h << "<h2>Gradient cosine between the MIM and CL losses, by depth</h2>"
          << svgLineChart("cos(∇L_MIM, ∇L_CL) per parameter group", "parameter group (input → output)", "mean cosine", series, {}, prof.groups)
          << "<p class=\"meta\">One line per training phase (the probes of that phase averaged): the mean over "
          << last->find("cos")->shape[1] << " probe images per group; the band spans their 10th to 90th percentile. Negative = the two "
          << "losses pull the weights apart (Layer Grafted Pretraining, Fig. 1). MIM head: "
          << htmlEscape(last->meta.value("mim_head", std::string("?"))) << "; CL head: " << htmlEscape(last->meta.value("cl_head", std::string("?")))
          << ".</p>";
        return true;
    }
    return false;
}

}  // namespace

std::string renderRunReport(const std::string& runDir, ReportSummary* summary) {
    fs::path dir(runDir);
    const RunLayout run(runDir);
    if (!run.holdsRun()) throw FileError(runDir, "holds no run (no recipe.json)");
    ReportSummary sum;
    std::vector<std::string> sections;
    auto recipe = nlohmann::json::parse(readFile(run.recipe()), nullptr, false);
    if (recipe.is_discarded()) throw FileError(run.recipe(), "is not valid JSON");
    std::string name = recipe.value("name", dir.filename().string());

    // metrics.jsonl: one object a line; a torn last line (a killed run) is skipped.
    std::map<std::string, std::vector<std::pair<double, double>>> curves;
    std::vector<std::pair<double, std::string>> stageMarks;
    int lastStage = 0;
    int64_t lastStep = 0;
    for (const auto& row : MetricsRow::readFile(run.metrics(), &sum.problems)) {
        ++sum.metricsRows;
        const double step = double(row.step);
        lastStep = row.step;
        if (row.stage != lastStage) stageMarks.emplace_back(step, "stage " + std::to_string(row.stage + 1));
        lastStage = row.stage;
        for (const auto& [key, value] : row.values) curves[key].emplace_back(step, value);
    }
    auto seriesOf = [&](auto pick) {
        std::vector<SvgSeries> out;
        int c = 0;
        for (const auto& [k, pts] : curves)
            if (pick(k)) out.push_back({k, kPalette[c++ % 8], pts});
        return out;
    };
    int parts = 0;
    for (const auto& [k, p] : curves) parts += k.rfind("loss/", 0) == 0;
    auto losses = seriesOf([&](const std::string& k) { return k.rfind("loss/", 0) == 0 || (k == "loss" && parts != 1); });
    int lrGroups = 0;
    for (const auto& [k, p] : curves) lrGroups += k.rfind("lr/", 0) == 0;
    auto lrs = seriesOf([&](const std::string& k) { return k.rfind("lr/", 0) == 0 || (k == "lr" && lrGroups == 0); });
    auto ips = seriesOf([](const std::string& k) { return k == "images_per_s"; });
    auto momentum = seriesOf([](const std::string& k) { return k == "momentum"; });

    // Last value of the total loss and the median throughput, for the summary line.
    double lastLoss = NAN, medianIps = NAN;
    if (curves.count("loss") && !curves["loss"].empty()) lastLoss = curves["loss"].back().second;
    if (curves.count("images_per_s")) {
        std::vector<double> v;
        for (const auto& p : curves["images_per_s"]) v.push_back(p.second);
        medianIps = quantile(v, 0.5);
    }

    std::ostringstream h;
    std::time_t now = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    int64_t totalSteps = recipe.contains("train") ? recipe["train"].value("steps", int64_t(0)) : 0;
    if (recipe.contains("stages") && recipe["stages"].is_array() && !recipe["stages"].empty()) {
        totalSteps = 0;
        for (const auto& s : recipe["stages"]) totalSteps += s.value("steps", int64_t(0));
    }
    h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>GraftLab run " << htmlEscape(name) << "</title><style>"
      << "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:820px;color:#222}"
      << "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}"
      << ".meta{color:#555;font-size:13px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}"
      << "th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f7f7f7;padding:8px;"
      << "font-size:11px;overflow:auto;max-height:420px}figure{margin:10px 0}figcaption{font-size:12px;color:#555}"
      << "img.px{image-rendering:pixelated}</style></head><body>";
    h << "<h1>GraftLab run: " << htmlEscape(name) << "</h1><p class=\"meta\">" << htmlEscape(fs::absolute(dir).lexically_normal().string())
      << "<br>method " << htmlEscape(recipe.value("method", std::string("?"))) << " · dataset "
      << htmlEscape(recipe.contains("data") ? recipe["data"].value("dataset", std::string("?")) : std::string("?")) << " · step "
      << lastStep << " of " << totalSteps << " · last loss " << fmt(lastLoss) << " · median " << fmt(medianIps, 4)
      << " images/s<br>report written " << date << " by GraftLab " << GRAFTLAB_VERSION_STRING << "</p>";

    h << "<h2>Training curves</h2>";
    if (sum.metricsRows == 0) {
        h << "<p>No metrics rows yet (metrics.jsonl is empty).</p>";
    } else {
        h << svgLineChart("Losses", "step", "loss", losses, stageMarks);
        h << svgLineChart("Learning rate" + std::string(lrGroups ? " per parameter group" : ""), "step", "lr", lrs, stageMarks, {}, 760, 220);
        auto lower = ips;
        h << svgLineChart("Throughput", "step", "images/s", lower, stageMarks, {}, 760, 200);
        if (!momentum.empty()) h << svgLineChart("Momentum of the momentum / slow encoder", "step", "m", momentum, stageMarks, {}, 760, 200);
        sections.push_back("curves");
    }

    if (evaluationSection(h, run, sum)) sections.push_back("evaluation");

    std::string snapDir = run.snapshots();
    if (reconstructionSection(h, snapDir, sum)) sections.push_back("reconstructions");
    if (depthProfileSection(h, snapDir, sum)) sections.push_back("gradient cosines");
    h << "<h2>Recipe</h2><pre>" << htmlEscape(recipe.dump(2)) << "</pre>";
    sections.push_back("recipe");
    h << "<p class=\"meta\">Files of this run: recipe.json, metrics.jsonl, checkpoints/, snapshots/, tensorboard/. "
      << "Reproduce: <code>graftlab-cli train --recipe " << htmlEscape(run.recipe()) << "</code>.</p></body></html>\n";

    std::string out = h.str();
    if (!sum.problems.empty()) {  // said at the top of the page too
        std::ostringstream warn;
        warn << "<div style=\"border:1px solid #c00;padding:6px;margin:8px 0\"><b>Not everything of this run could be read:</b><ul>";
        for (const auto& p : sum.problems) warn << "<li>" << htmlEscape(p) << "</li>";
        warn << "</ul></div>";
        auto at = out.find("<h2>");
        out.insert(at == std::string::npos ? 0 : at, warn.str());
    }
    sum.bytes = out.size();
    for (size_t i = 0; i < sections.size(); ++i) sum.sections += (i ? ", " : "") + sections[i];
    if (summary) *summary = sum;
    return out;
}

ReportSummary writeRunReport(const std::string& runDir, const std::string& outPath) {
    ReportSummary s;
    std::string page = renderRunReport(runDir, &s);
    writeFileAtomically(outPath, page);
    return s;
}

}  // namespace graftlab
