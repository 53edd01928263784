#include "eval/Sweep.h"
#include "base/export/Report.h"
#include "base/run/RunLayout.h"
#include "base/run/Observer.h"
#include "train/Checkpoint.h"
#include "base/util/AtomicFile.h"
#include "base/util/StopSignals.h"
#include "base/util/Errors.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace graftlab {
namespace fs = std::filesystem;

SweepAxis parseSweepAxis(const std::string& arg) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--grid expects key=v1,v2,..., got \"" + arg + "\"");
    SweepAxis a;
    std::string lhs = arg.substr(0, eq);
    auto colon = lhs.find(':');
    a.key = colon == std::string::npos ? lhs : lhs.substr(0, colon);
    std::stringstream fields(colon == std::string::npos ? lhs : lhs.substr(colon + 1));
    for (std::string f; std::getline(fields, f, '+');)
        if (!f.empty()) a.fields.push_back(f);
    if (a.key.empty() || a.fields.empty()) throw std::invalid_argument("--grid expects [name:]field[+field...]=v1,v2,..., got \"" + arg + "\"");
    std::stringstream ss(arg.substr(eq + 1));
    const std::string list = arg.substr(eq + 1);
    for (std::string v; std::getline(ss, v, ',');) {
        if (v.empty()) throw std::invalid_argument("--grid " + a.key + ": an empty value in \"" + list + "\" (two commas, or one at an end)");
        if (std::find(a.values.begin(), a.values.end(), v) != a.values.end())
            throw std::invalid_argument("--grid " + a.key + ": the value " + v + " is listed twice");
        a.values.push_back(v);
    }
    if (!list.empty() && list.back() == ',') throw std::invalid_argument("--grid " + a.key + ": an empty value in \"" + list + "\" (two commas, or one at an end)");
    if (a.values.empty()) throw std::invalid_argument("--grid " + a.key + " lists no value");
    return a;
}

namespace {

std::string runName(const std::vector<SweepAxis>& axes, const std::vector<std::string>& values) {
    std::string name;
    for (size_t i = 0; i < axes.size(); ++i) {
        name += (i ? "," : "") + axes[i].key + "=" + values[i];
    }
    for (char& c : name)
        if (c == '/' || c == ' ' || c == '[' || c == ']') c = '_';
    return name;
}

std::string pct(double v) {
    if (!std::isfinite(v)) return "–";
    char b[16];
    std::snprintf(b, sizeof b, "%.1f", 100 * v);
    return b;
}

double top1(const EvalReport& r, const std::string& p) {
    const ProtocolResult* x = r.find(p);
    return x ? x->top1 : NAN;
}

}  // namespace

SweepResult runSweep(const SweepRequest& req, const TableTrainFn& train, const std::function<void(const std::string&)>& logFn) {
    if (req.axes.empty() || req.axes.size() > 2) throw std::invalid_argument("a sweep takes one or two --grid keys");
    auto log = [&](const std::string& m) {
        if (logFn) logFn(m);
    };
    fs::create_directories(req.outDir);
    SweepResult res;
    // Every combination, the first key varying slowest.
    std::vector<std::vector<std::string>> combos = {{}};
    for (const auto& axis : req.axes) {
        std::vector<std::vector<std::string>> next;
        for (const auto& c : combos)
            for (const auto& v : axis.values) {
                auto d = c;
                d.push_back(v);
                next.push_back(d);
            }
        combos = next;
    }
    nlohmann::json index = {{"axes", nlohmann::json::array()}, {"runs", nlohmann::json::array()}, {"command", req.command}};
    for (const auto& a : req.axes) index["axes"].push_back({{"key", a.key}, {"fields", a.fields}, {"values", a.values}});
    if (req.trainShards > 0 && (req.trainShard < 0 || req.trainShard >= req.trainShards))
        throw std::invalid_argument("train shard out of range");
    // The recipe of a grid point: the file, --set, then the point's values; RecipeError naming the point.
    auto pointRecipe = [&](const std::vector<std::string>& values) {
        std::vector<std::string> sets = req.sets;
        for (size_t i = 0; i < req.axes.size(); ++i)
            for (const auto& f : req.axes[i].fields) sets.push_back(f + "=" + values[i]);
        std::vector<RecipeIssue> issues;
        Recipe r = loadRecipeFile(req.recipeFile, sets, issues);
        for (auto& v : r.validate()) issues.push_back(v);
        if (!issues.empty()) throw RecipeError(issues.front().field, issues.front().message + " (in the sweep point " + runName(req.axes, values) + ")");
        return r;
    };
    // Every grid point checked before the first one trains: a bad value of the last point is not found hours later.
    {
        std::map<std::string, int64_t> sizes;
        for (const auto& values : combos) {
            Recipe r = pointRecipe(values);
            scaleToBudget(r, req.budget.steps);
            checkPlannedRun(r, runName(req.axes, values), sizes);
        }
    }
    for (size_t k = 0; k < combos.size(); ++k) {
        const auto& values = combos[k];
        if (req.trainShards > 0 && k % size_t(req.trainShards) != size_t(req.trainShard)) continue;
        if (stopSignalReceived()) return res;  // a stop during the last point's evaluation: the same command continues
        Recipe r = pointRecipe(values);
        scaleToBudget(r, req.budget.steps);
        SweepPoint p;
        p.values = values;
        p.runDir = (fs::path(req.outDir) / runName(req.axes, values)).string();
        if (req.trainShards == 0) {
            index["runs"].push_back(fs::path(p.runDir).filename().string());
            writeFileAtomically(RunLayout::sweepIndex(req.outDir), index.dump(2) + "\n");
        }
        std::string ckpt = trainOrReuse(r, p.runDir, train, [&](const std::string& m) { log(runName(req.axes, values) + ": " + m); });
        if (ckpt.empty()) return res;  // stopped: the same command continues
        if (req.trainShards > 0) continue;  // a job of --jobs: trained; the parent evaluates
        EvalRequest er;
        er.checkpoint = ckpt;
        er.protocols = req.protocols;
        er.maxTrain = req.budget.maxTrain;
        er.finetuneSteps = req.budget.finetuneSteps;
        er.seed = uint64_t(r.seed);
        p.report = evaluateStored(er, RunLayout::evaluationStore(req.outDir), [&](const std::string& m) { log(runName(req.axes, values) + ": " + m); });
        writeEvalJson(p.report);
        p.seed = r.seed;
        p.steps = r.totalSteps();
        p.trainSeconds = trainingSeconds(MetricsRow::readFile(RunLayout(p.runDir).metrics()), double(r.optim.batchSize));
        p.trainFlops = recipeTrainFlops(r, readCheckpointMeta(ckpt).channels);
        res.points.push_back(p);
    }
    if (req.trainShards > 0) {
        res.complete = true;
        return res;
    }
    std::ostringstream csv, md;
    for (const auto& a : req.axes) csv << a.key << ',';
    md << '|';
    for (const auto& a : req.axes) md << ' ' << a.key << " |";
    for (size_t i = 0; i < req.protocols.size(); ++i) {
        csv << req.protocols[i] << (i + 1 < req.protocols.size() ? "," : "\n");
        md << ' ' << req.protocols[i] << " |";
    }
    md << "\n|";
    md << " Train time | Train TFLOP |";
    md << "\n|";
    for (size_t i = 0; i < req.axes.size() + req.protocols.size() + 2; ++i) md << (i < req.axes.size() ? "---|" : "---:|");
    md << '\n';
    for (const auto& p : res.points) {
        md << '|';
        for (const auto& v : p.values) {
            csv << v << ',';
            md << ' ' << v << " |";
        }
        for (size_t i = 0; i < req.protocols.size(); ++i) {
            double t = top1(p.report, req.protocols[i]);
            csv << (std::isfinite(t) ? pct(t) : "") << (i + 1 < req.protocols.size() ? "," : "\n");
            md << ' ' << pct(t) << " |";
        }
        char compute[64];
        std::snprintf(compute, sizeof compute, " %.1f min | %.2f |", p.trainSeconds / 60.0, p.trainFlops / 1e12);
        md << compute << '\n';
    }
    const EvalReport& first = res.points.front().report;
    md << "\nTop-1 accuracy (%) on the " << first.dataset << " test split (" << first.testImages << " images); budget `" << req.budget.name
       << "`: " << req.budget.steps << " optimizer steps per point, one seed (seed " << res.points.front().seed
       << "; per point in sweep-seeds.csv). Train time: wall time of the point's training here (probes included); Train TFLOP: "
          "its analytic training FLOPs.\n\nCommand: `" << req.command << "`\n";
    res.csv = csv.str();
    res.markdown = md.str();
    res.svg = sweepSvg(req, res.points);
    writeFileAtomically((fs::path(req.outDir) / "sweep.csv").string(), res.csv);
    writeFileAtomically((fs::path(req.outDir) / "sweep.md").string(), res.markdown);
    writeFileAtomically((fs::path(req.outDir) / "sweep.svg").string(), res.svg);
    writeFileAtomically((fs::path(req.outDir) / "sweep-seeds.csv").string(), sweepSeedsCsv(req, res.points));
    res.complete = true;
    return res;
}

std::string sweepSvg(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    if (req.axes.size() == 1) {
        std::vector<SvgSeries> series;
        for (size_t k = 0; k < req.protocols.size(); ++k) {
            SvgSeries s{req.protocols[k], colours[k % 4], {}};
            for (size_t i = 0; i < points.size(); ++i) s.points.emplace_back(double(i), 100 * top1(points[i].report, req.protocols[k]));
            series.push_back(s);
        }
        std::string svg = svgLineChart("Sweep over " + req.axes[0].key, req.axes[0].key, "top-1 (%)", series, {}, req.axes[0].values);
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n";
    }
    // Two keys: a heat map of the first protocol, rows = the first key, columns = the second; the value in each cell.
    const auto& rows = req.axes[0].values;
    const auto& cols = req.axes[1].values;
    const std::string& p = req.protocols.front();
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& pt : points) {
        double v = top1(pt.report, p);
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    const int cell = 70, left = 120, top = 50;
    const std::string title = p + " top-1 (%) over " + req.axes[0].key + " (rows) and " + req.axes[1].key + " (columns)";
    const int width = std::max(left + int(cols.size()) * cell + 20, int(8.6 * double(title.size())) + 20);
    const int height = top + int(rows.size()) * cell + 50;
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"DejaVu Sans, sans-serif\"><text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"600\">" << htmlEscape(p)
      << " top-1 (%) over " << htmlEscape(req.axes[0].key) << " (rows) and " << htmlEscape(req.axes[1].key) << " (columns)</text>";
    for (size_t c = 0; c < cols.size(); ++c)
        o << "<text x=\"" << left + int(c) * cell + cell / 2 << "\" y=\"" << top - 6 << "\" font-size=\"12\" text-anchor=\"middle\">"
          << htmlEscape(cols[c]) << "</text>";
    for (size_t r = 0; r < rows.size(); ++r) {
        o << "<text x=\"" << left - 6 << "\" y=\"" << top + int(r) * cell + cell / 2 + 4 << "\" font-size=\"12\" text-anchor=\"end\">"
          << htmlEscape(rows[r]) << "</text>";
        for (size_t c = 0; c < cols.size(); ++c) {
            const size_t i = r * cols.size() + c;
            double v = i < points.size() ? top1(points[i].report, p) : NAN;
            double t = std::isfinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0.5;
            // white (lowest) to blue (highest)
            int red = int(std::lround(255 - 225 * t)), green = int(std::lround(255 - 155 * t)), blue = int(std::lround(255 - 75 * t));
            o << "<rect x=\"" << left + int(c) * cell << "\" y=\"" << top + int(r) * cell << "\" width=\"" << cell - 2 << "\" height=\""
              << cell - 2 << "\" fill=\"rgb(" << red << ',' << green << ',' << blue << ")\" stroke=\"#bbb\"/><text x=\"" << left + int(c) * cell + cell / 2
              << "\" y=\"" << top + int(r) * cell + cell / 2 + 5 << "\" font-size=\"13\" text-anchor=\"middle\" fill=\""
              << (t > 0.6 ? "#fff" : "#222") << "\">" << pct(v) << "</text>";
        }
    }
    o << "<text x=\"8\" y=\"" << height - 16 << "\" font-size=\"11\" fill=\"#555\">white = lowest (" << pct(lo) << " %), blue = highest ("
      << pct(hi) << " %); one seed</text></svg>\n";
    return o.str();
}

std::string sweepSeedsCsv(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    std::ostringstream csv;
    for (const auto& a : req.axes) csv << a.key << ',';
    csv << "seed,protocol,top1,steps,train_seconds,train_flops,run_dir\n";
    for (const auto& p : points)
        for (const auto& r : p.report.results) {
            for (const auto& v : p.values) csv << v << ',';
            char buf[160];
            std::snprintf(buf, sizeof buf, "%lld,%s,%.4f,%lld,%.1f,%.0f,", (long long)p.seed, r.protocol.c_str(), 100 * r.top1,
                          (long long)p.steps, p.trainSeconds, p.trainFlops);
            csv << buf << p.runDir << '\n';
        }
    return csv.str();
}

}  // namespace graftlab
