#pragma once
// A run report: one self-contained HTML file (inline SVG plots, inline PNG images, no scripts, no network) with
// the run's curves, recipe, evaluation table, last reconstructions and gradient-cosine depth profile. Torch-free:
// it reads the run directory's files (recipe.json, metrics.jsonl, snapshots/, checkpoints/eval.json), so the
// GUI and the CLI make the same page.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

struct ReportSummary {
    size_t bytes = 0;
    int64_t metricsRows = 0;
    int evalEntries = 0;
    std::string sections;  // the sections written, e.g. "curves, recipe, evaluation, reconstructions"
    // What could not be read, "FILE:LINE: why" (also listed at the top of the page); a torn last metrics line of a
    // killed run is not one. Non-empty: the page is missing data (graftlab-cli report exits 1).
    std::vector<std::string> problems;
};

// Throws FileError naming the directory when it holds no run, or the output file when it cannot be written.
ReportSummary writeRunReport(const std::string& runDir, const std::string& outPath);
// The page itself (what writeRunReport writes).
std::string renderRunReport(const std::string& runDir, ReportSummary* summary = nullptr);

// One line chart as an SVG element: series of (x, y) points, a legend, nice ticks; optional log-scale y and
// dashed vertical markers (x, label). Long series are thinned to at most ~1500 points (min and max per bucket
// kept, so spikes stay visible).
struct SvgSeries {
    std::string name, colour;
    std::vector<std::pair<double, double>> points;
    bool dashed = false;
    std::vector<std::pair<double, double>> band;  // optional (lower, upper) per point, drawn shaded behind
};
std::string svgLineChart(const std::string& title, const std::string& xLabel, const std::string& yLabel,
                         const std::vector<SvgSeries>& series, const std::vector<std::pair<double, std::string>>& markers = {},
                         const std::vector<std::string>& xCategories = {}, int width = 760, int height = 280);

std::string base64(const std::string& bytes);
std::string htmlEscape(const std::string& text);

}  // namespace graftlab
