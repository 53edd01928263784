#include "eval/Sweep.h"
#include "base/export/Report.h"
#include "base/run/RunLayout.h"
#include "base/run/Observer.h"
#include "train/Checkpoint.h"
#include "base/util/AtomicFile.h"
#include "base/util/Csv.h"
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

// "76.6" with one seed, "76.6 ± 0.3" with more.
std::string meanSdCell(const SweepPoint& p, const std::string& protocol) {
    const double m = p.mean(protocol);
    if (!std::isfinite(m) || p.reports.size() < 2) return pct(m);
    const double sd = sampleSd(p.top1s(protocol));
    char b[32];
    std::snprintf(b, sizeof b, "%.1f ± %.1f", 100 * m, 100 * sd);
    return b;
}

// "lower=1, upper=0.1": a point as the text names it.
std::string pointLabel(const std::vector<SweepAxis>& axes, const std::vector<std::string>& values) {
    std::string s;
    for (size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + axes[i].key + "=" + values[i];
    return s;
}

}  // namespace

std::vector<double> SweepPoint::top1s(const std::string& protocol) const {
    std::vector<double> v;
    for (const auto& r : reports) v.push_back(top1(r, protocol));
    return v;
}

double SweepPoint::mean(const std::string& protocol) const {
    std::vector<double> v = top1s(protocol);
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); })) return NAN;
    return meanOf(v);
}

namespace {

// Which points the tests tell apart from the best one, protocol by protocol.
void writeSweepVerdicts(std::ostringstream& md, const SweepRequest& req, const std::vector<SweepPoint>& points) {
    if (points.size() < 2) return;
    if (req.seeds < 2) {
        md << "\nOne seed: no test is possible, so no difference between points is called significant here (run with --seeds 3 or more).\n";
        return;
    }
    const auto comps = sweepComparisons(req, points);
    md << "\nTests: for each protocol, the point with the highest mean against every other point, seed by seed (paired t-test on "
          "the per-seed differences, "
       << req.seeds - 1 << (req.seeds == 2 ? " degree" : " degrees") << " of freedom), two-sided at 5 %; " << comps.size()
       << " comparisons; † marks a difference that also survives Holm's correction over all " << comps.size() << ".\n\n";
    for (const std::string& protocol : req.protocols) {
        std::vector<std::string> below, level;
        size_t best = points.size();
        for (const auto& c : comps) {
            if (c.protocol != protocol) continue;
            best = c.best;
            if (c.significant()) {
                below.push_back(pointLabel(req.axes, points[c.other].values) + describeDifference(c.test, "−", c.holm));
            } else {
                level.push_back(pointLabel(req.axes, points[c.other].values));
            }
        }
        if (best == points.size()) continue;
        auto join = [](const std::vector<std::string>& v) {
            std::string s;
            for (size_t i = 0; i < v.size(); ++i) s += (i ? "; " : "") + v[i];
            return s.empty() ? std::string("none") : s;
        };
        md << "- " << protocol << ": highest mean " << pointLabel(req.axes, points[best].values) << " (" << meanSdCell(points[best], protocol)
           << "); significantly below it: " << join(below) << "; not told apart from it: " << join(level) << "\n";
    }
}

}  // namespace

std::vector<SweepComparison> sweepComparisons(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    std::vector<SweepComparison> out;
    if (req.seeds < 2 || points.size() < 2) return out;
    for (const std::string& protocol : req.protocols) {
        size_t best = points.size();
        for (size_t i = 0; i < points.size(); ++i) {
            const double m = points[i].mean(protocol);
            if (std::isfinite(m) && (best == points.size() || m > points[best].mean(protocol))) best = i;
        }
        if (best == points.size()) continue;
        for (size_t i = 0; i < points.size(); ++i) {
            if (i == best || !std::isfinite(points[i].mean(protocol)) || points[i].seeds != points[best].seeds) continue;
            SweepComparison c;
            c.protocol = protocol;
            c.best = best;
            c.other = i;
            c.test = pairedTTest(points[best].top1s(protocol), points[i].top1s(protocol));
            if (c.test.valid) out.push_back(c);
        }
    }
    std::vector<double> ps;
    for (const auto& c : out) ps.push_back(c.test.p);
    const auto holm = holmRejects(ps, 0.05);
    for (size_t i = 0; i < out.size(); ++i) out[i].holm = holm[i];
    return out;
}

SweepResult runSweep(const SweepRequest& req, const TableTrainFn& train, const std::function<void(const std::string&)>& logFn) {
    if (req.axes.empty() || req.axes.size() > 2) throw std::invalid_argument("a sweep takes one or two --grid keys");
    if (req.seeds < 1 || req.seeds > 100) throw std::invalid_argument("seeds must be in 1..100");
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
    // A point's run of seed index s: DIR/<key=value,...>, or DIR/<key=value,...>-seedS with --seeds.
    auto runDirOf = [&](const std::vector<std::string>& values, int64_t seed) {
        std::string name = runName(req.axes, values);
        if (req.seeds > 1) name += "-seed" + std::to_string(seed);
        return (fs::path(req.outDir) / name).string();
    };
    const size_t evaluations = combos.size() * size_t(req.seeds);  // counted in the log as they start
    size_t evaluationsStarted = 0;
    for (size_t k = 0; k < combos.size(); ++k) {
        const auto& values = combos[k];
        SweepPoint p;
        p.values = values;
        for (int s = 0; s < req.seeds; ++s) {
            // Jobs of --jobs take the runs in turn, a point's seeds one after another: k x seeds + s.
            if (req.trainShards > 0 && (k * size_t(req.seeds) + size_t(s)) % size_t(req.trainShards) != size_t(req.trainShard)) continue;
            if (stopSignalReceived()) return res;  // a stop during the last evaluation: the same command continues
            Recipe r = pointRecipe(values);
            r.seed += s;
            scaleToBudget(r, req.budget.steps);
            const std::string dir = runDirOf(values, r.seed);
            if (req.trainShards == 0) {
                index["runs"].push_back(fs::path(dir).filename().string());
                writeFileAtomically(RunLayout::sweepIndex(req.outDir), index.dump(2) + "\n");
            }
            const std::string label = runName(req.axes, values) + (req.seeds > 1 ? " seed " + std::to_string(r.seed) : "");
            std::string ckpt = trainOrReuse(r, dir, train, [&](const std::string& m) { log(label + ": " + m); });
            if (ckpt.empty()) return res;  // stopped: the same command continues
            if (req.trainShards > 0) continue;  // a job of --jobs: trained; the parent evaluates
            log(label + ": evaluation " + std::to_string(++evaluationsStarted) + " of " + std::to_string(evaluations));
            EvalRequest er;
            er.checkpoint = ckpt;
            er.protocols = req.protocols;
            er.maxTrain = req.budget.maxTrain;
            er.finetuneSteps = req.budget.finetuneSteps;
            er.seed = uint64_t(r.seed);
            er.stopRequested = [] { return stopSignalReceived() != 0; };  // a fine-tuning saves its state and stops at once
            EvalReport rep;
            try {
                rep = evaluateStored(er, RunLayout::evaluationStore(req.outDir), [&](const std::string& m) { log(label + ": " + m); });
            } catch (const EvaluationStopped& e) {
                log(label + ": " + e.what());
                return res;  // stopped: the same command continues
            }
            writeEvalJson(rep);
            p.runDirs.push_back(dir);
            p.reports.push_back(rep);
            p.seeds.push_back(r.seed);
            p.steps = r.totalSteps();
            p.trainSeconds.push_back(trainingSeconds(MetricsRow::readFile(RunLayout(dir).metrics()), double(r.optim.batchSize)));
            p.trainFlops = recipeTrainFlops(r, readCheckpointMeta(ckpt).channels);
        }
        if (req.trainShards == 0) res.points.push_back(p);
    }
    if (req.trainShards > 0) {
        res.complete = true;
        return res;
    }
    res.csv = sweepCsv(req, res.points);
    res.markdown = sweepMarkdown(req, res.points);
    res.svg = sweepSvg(req, res.points);
    writeFileAtomically((fs::path(req.outDir) / "sweep.csv").string(), res.csv);
    writeFileAtomically((fs::path(req.outDir) / "sweep.md").string(), res.markdown);
    writeFileAtomically((fs::path(req.outDir) / "sweep.svg").string(), res.svg);
    writeFileAtomically((fs::path(req.outDir) / "sweep-seeds.csv").string(), sweepSeedsCsv(req, res.points));
    res.complete = true;
    return res;
}

std::string sweepCsv(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    std::ostringstream csv;
    for (const auto& a : req.axes) csv << csvField(a.key) << ',';  // a --grid name may hold a comma
    for (size_t i = 0; i < req.protocols.size(); ++i)
        csv << req.protocols[i] << (req.seeds > 1 ? "," + req.protocols[i] + "_sd" : "") << (i + 1 < req.protocols.size() ? "," : "\n");
    for (const auto& p : points) {
        for (const auto& v : p.values) csv << csvField(v) << ',';
        for (size_t i = 0; i < req.protocols.size(); ++i) {
            const double t = p.mean(req.protocols[i]);
            csv << (std::isfinite(t) ? pct(t) : "");
            if (req.seeds > 1) {
                const double sd = std::isfinite(t) ? sampleSd(p.top1s(req.protocols[i])) : NAN;
                csv << ',' << (std::isfinite(sd) ? pct(sd) : "");
            }
            csv << (i + 1 < req.protocols.size() ? "," : "\n");
        }
    }
    return csv.str();
}

std::string sweepMarkdown(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    if (points.empty()) return "";
    std::ostringstream md;
    md << '|';
    for (const auto& a : req.axes) md << ' ' << a.key << " |";
    for (const auto& p : req.protocols) md << ' ' << p << " |";
    md << " Train time | Train TFLOP |\n|";
    for (size_t i = 0; i < req.axes.size() + req.protocols.size() + 2; ++i) md << (i < req.axes.size() ? "---|" : "---:|");
    md << '\n';
    for (const auto& p : points) {
        md << '|';
        for (const auto& v : p.values) md << ' ' << v << " |";
        for (const auto& protocol : req.protocols) md << ' ' << meanSdCell(p, protocol) << " |";
        char compute[64];
        std::snprintf(compute, sizeof compute, " %.1f min | %.2f |", meanOf(p.trainSeconds) / 60.0, p.trainFlops / 1e12);
        md << compute << '\n';
    }
    const EvalReport& first = points.front().reports.front();
    md << "\nTop-1 accuracy (%) on the " << first.dataset << " test split (" << first.testImages << " images); budget `" << req.budget.name
       << "`: " << req.budget.steps << " optimizer steps per point, ";
    if (req.seeds > 1)
        md << "mean ± sample standard deviation over " << req.seeds << " seeds (" << points.front().seeds.front() << "–"
           << points.front().seeds.back() << "; every seed's result in sweep-seeds.csv). Train time: mean wall time of a seed's "
              "training here (probes included); Train TFLOP: a run's analytic training FLOPs.\n";
    else
        md << "one seed (seed " << points.front().seeds.front()
           << "; per point in sweep-seeds.csv). Train time: wall time of the point's training here (probes included); Train TFLOP: "
              "its analytic training FLOPs.\n";
    writeSweepVerdicts(md, req, points);
    md << "\nCommand: `" << req.command << "`\n";
    return md.str();
}

std::string sweepSvg(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    if (req.axes.size() == 1) {
        std::vector<SvgSeries> series;
        for (size_t k = 0; k < req.protocols.size(); ++k) {
            SvgSeries s;
            s.name = req.protocols[k];
            s.colour = colours[k % 4];
            for (size_t i = 0; i < points.size(); ++i) {
                const double m = 100 * points[i].mean(req.protocols[k]);
                s.points.emplace_back(double(i), m);
                if (req.seeds > 1) {  // mean ± sd over the seeds, shaded
                    const double sd = 100 * sampleSd(points[i].top1s(req.protocols[k]));
                    s.band.emplace_back(m - sd, m + sd);
                }
            }
            series.push_back(s);
        }
        std::string svg = svgLineChart("Sweep over " + req.axes[0].key + (req.seeds > 1 ? " (mean ± sd over " + std::to_string(req.seeds) + " seeds)" : std::string()), req.axes[0].key, "top-1 (%)", series, {}, req.axes[0].values);
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n";
    }
    // Two keys: a heat map of the first protocol, rows = the first key, columns = the second; the value in each cell.
    const auto& rows = req.axes[0].values;
    const auto& cols = req.axes[1].values;
    const std::string& p = req.protocols.front();
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& pt : points) {
        double v = pt.mean(p);
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    // With seeds: the best cell and those the paired test cannot tell apart from it are outlined.
    std::vector<bool> level(points.size(), false);
    bool tested = false;
    for (const auto& c : sweepComparisons(req, points)) {
        if (c.protocol != p) continue;
        tested = true;
        level[c.best] = true;
        if (!c.significant()) level[c.other] = true;
    }
    const int cell = 70, left = 120, top = 50;
    const std::string title = p + " top-1 (%) over " + req.axes[0].key + " (rows) and " + req.axes[1].key + " (columns)";
    const std::string outlineNote = "outlined: the best and the points not significantly below it (paired over seeds, 5 %)";
    const int width = std::max({left + int(cols.size()) * cell + 20, int(8.6 * double(title.size())) + 20,
                                tested ? int(6.4 * double(outlineNote.size())) + 20 : 0});
    const int height = top + int(rows.size()) * cell + (tested ? 66 : 50);
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
            double v = i < points.size() ? points[i].mean(p) : NAN;
            double t = std::isfinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0.5;
            // white (lowest) to blue (highest)
            int red = int(std::lround(255 - 225 * t)), green = int(std::lround(255 - 155 * t)), blue = int(std::lround(255 - 75 * t));
            o << "<rect x=\"" << left + int(c) * cell << "\" y=\"" << top + int(r) * cell << "\" width=\"" << cell - 2 << "\" height=\""
              << cell - 2 << "\" fill=\"rgb(" << red << ',' << green << ',' << blue << ")\" stroke=\""
              << (tested && level[i] ? "#222\" stroke-width=\"3" : "#bbb") << "\"/><text x=\"" << left + int(c) * cell + cell / 2
              << "\" y=\"" << top + int(r) * cell + cell / 2 + 5 << "\" font-size=\"13\" text-anchor=\"middle\" fill=\""
              << (t > 0.6 ? "#fff" : "#222") << "\">" << pct(v) << "</text>";
        }
    }
    o << "<text x=\"8\" y=\"" << height - (tested ? 32 : 16) << "\" font-size=\"11\" fill=\"#555\">white = lowest (" << pct(lo)
      << " %), blue = highest (" << pct(hi) << " %); "
      << (req.seeds > 1 ? "mean over " + std::to_string(req.seeds) + " seeds" : std::string("one seed")) << "</text>";
    if (tested) o << "<text x=\"8\" y=\"" << height - 14 << "\" font-size=\"11\" fill=\"#555\">" << outlineNote << "</text>";
    o << "</svg>\n";
    return o.str();
}

std::string sweepSeedsCsv(const SweepRequest& req, const std::vector<SweepPoint>& points) {
    std::ostringstream csv;
    for (const auto& a : req.axes) csv << csvField(a.key) << ',';  // a --grid name may hold a comma
    csv << "seed,protocol,top1,steps,train_seconds,train_flops,run_dir\n";
    for (const auto& p : points)
        for (size_t s = 0; s < p.reports.size(); ++s)
            for (const auto& r : p.reports[s].results) {
                for (const auto& v : p.values) csv << csvField(v) << ',';
                char buf[160];
                std::snprintf(buf, sizeof buf, "%lld,%s,%.4f,%lld,%.1f,%.0f,", (long long)p.seeds[s], r.protocol.c_str(), 100 * r.top1,
                              (long long)p.steps, s < p.trainSeconds.size() ? p.trainSeconds[s] : NAN, p.trainFlops);
                csv << buf << csvField(p.runDirs[s]) << '\n';
            }
    return csv.str();
}

}  // namespace graftlab
