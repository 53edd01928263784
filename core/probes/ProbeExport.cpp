#include "probes/ProbeExport.h"
#include "probes/Reconstruction.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#ifdef GRAFTLAB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <filesystem>
#include <sstream>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

const SnapshotArray& need(const Snapshot& s, const std::string& name) {
    const SnapshotArray* a = s.find(name);
    if (!a) throw std::runtime_error(s.kind + " snapshot of step " + std::to_string(s.step) + " has no array \"" + name + "\"");
    return *a;
}

std::string fixed2(double v) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << v;
    return os.str();
}

std::string num(double v) {
    if (!std::isfinite(v)) return "nan";
    std::ostringstream os;
    os.precision(6);
    os << v;
    return os.str();
}

int64_t imageIndex(const Snapshot& s, int64_t i) {
    auto it = s.meta.find("image_indices");
    if (it != s.meta.end() && it->is_array() && size_t(i) < it->size()) return (*it)[size_t(i)].get<int64_t>();
    return i;
}

std::string groupName(const Snapshot& s, int64_t g) {
    auto it = s.meta.find("groups");
    if (it != s.meta.end() && it->is_array() && size_t(g) < it->size()) return (*it)[size_t(g)].get<std::string>();
    return std::to_string(g);
}

}  // namespace

std::vector<std::string> exportSnapshotCsv(const Snapshot& s, const std::string& path) {
    if (!s.unavailable().empty()) throw std::runtime_error(s.kind + " probe was unavailable: " + s.unavailable());
    std::ostringstream out;
    std::vector<std::string> written;
    if (s.kind == "gradcos") {
        const auto& cos = need(s, "cos");
        const SnapshotArray* mim = s.find("mim_loss");
        const SnapshotArray* cl = s.find("cl_loss");
        out << "step,group,image_index,cos,mim_loss,cl_loss\n";
        for (int64_t g = 0; g < cos.shape[0]; ++g)
            for (int64_t i = 0; i < cos.shape[1]; ++i)
                out << s.step << ',' << groupName(s, g) << ',' << imageIndex(s, i) << ',' << num(cos.at({g, i})) << ','
                    << (mim ? num(mim->values[size_t(i)]) : "") << ',' << (cl ? num(cl->values[size_t(i)]) : "") << '\n';
        writeFileAtomically(path, out.str());
        written.push_back(path);
        const auto& sum = need(s, "summary");
        std::ostringstream so;
        so << "step,group";
        for (const auto& c : s.meta.value("summary_columns", std::vector<std::string>{})) so << ',' << c;
        so << '\n';
        for (int64_t g = 0; g < sum.shape[0]; ++g) {
            so << s.step << ',' << groupName(s, g);
            for (int64_t c = 0; c < sum.shape[1]; ++c) so << ',' << num(sum.at({g, c}));
            so << '\n';
        }
        fs::path p(path);
        std::string summaryPath = (p.parent_path() / (p.stem().string() + "_summary" + p.extension().string())).string();
        writeFileAtomically(summaryPath, so.str());
        written.push_back(summaryPath);
        return written;
    }
    if (s.kind == "attention") {
        const auto& a = need(s, "cls_attention");  // (depth, n, heads, L)
        const auto& r = need(s, "rollout");        // (n, L)
        out << "step,block,head,image_index,patch,attention\n";
        for (int64_t b = 0; b < a.shape[0]; ++b)
            for (int64_t i = 0; i < a.shape[1]; ++i)
                for (int64_t h = 0; h < a.shape[2]; ++h)
                    for (int64_t l = 0; l < a.shape[3]; ++l)
                        out << s.step << ',' << b << ',' << h << ',' << imageIndex(s, i) << ',' << l << ',' << num(a.at({b, i, h, l})) << '\n';
        for (int64_t i = 0; i < r.shape[0]; ++i)
            for (int64_t l = 0; l < r.shape[1]; ++l)
                out << s.step << ",rollout,mean," << imageIndex(s, i) << ',' << l << ',' << num(r.at({i, l})) << '\n';
    } else if (s.kind == "similarity") {
        out << "step,mode,image_index,query,key,value\n";
        for (const char* mode : {"cosine", "lookup"}) {
            const SnapshotArray* m = s.find(mode);
            if (!m) continue;
            for (int64_t i = 0; i < m->shape[0]; ++i)
                for (int64_t q = 0; q < m->shape[1]; ++q)
                    for (int64_t k = 0; k < m->shape[2]; ++k)
                        out << s.step << ',' << mode << ',' << imageIndex(s, i) << ',' << q << ',' << k << ',' << num(m->at({i, q, k})) << '\n';
        }
    } else if (s.kind == "reconstruction") {
        const auto& orig = need(s, "original");
        const auto& rec = need(s, "reconstruction");
        const auto& mask = need(s, "mask");  // (n, L)
        const int p = s.meta.value("patch_size", 4), grid = s.meta.value("grid", 7);
        out << "step,image_index,masked_patches,masked_pixel_mse\n";
        const int64_t n = orig.shape[0], C = orig.shape[1], H = orig.shape[2], W = orig.shape[3];
        for (int64_t i = 0; i < n; ++i) {
            double se = 0;
            int64_t count = 0, masked = 0;
            for (int64_t l = 0; l < mask.shape[1]; ++l) {
                if (mask.at({i, l}) < 0.5f) continue;
                ++masked;
                int64_t py = l / grid, px = l % grid;
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t y = py * p; y < std::min<int64_t>(H, (py + 1) * p); ++y)
                        for (int64_t x = px * p; x < std::min<int64_t>(W, (px + 1) * p); ++x) {
                            double d = double(rec.at({i, c, y, x})) - orig.at({i, c, y, x});
                            se += d * d;
                            ++count;
                        }
            }
            out << s.step << ',' << imageIndex(s, i) << ',' << masked << ',' << num(count ? se / double(count) : NAN) << '\n';
        }
    } else {
        throw std::runtime_error("no CSV export for snapshot kind \"" + s.kind + "\"");
    }
    writeFileAtomically(path, out.str());
    written.push_back(path);
    return written;
}

#ifdef GRAFTLAB_HAVE_OPENCV
namespace {

// (n, C, H, W) values in [0, 1] -> image i as 8-bit BGR, upscaled.
cv::Mat imageOf(const SnapshotArray& imgs, int64_t i, int scale) {
    const int64_t C = imgs.shape[1], H = imgs.shape[2], W = imgs.shape[3];
    cv::Mat m(int(H), int(W), CV_8UC3);
    for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
            auto v = [&](int64_t c) { return cv::saturate_cast<uint8_t>(std::lround(255.0 * imgs.at({i, std::min(c, C - 1), y, x}))); };
            m.at<cv::Vec3b>(int(y), int(x)) = cv::Vec3b(v(2), v(1), v(0));
        }
    // large images (an imported model's 224 px) are not blown up further: a panel stays within 256 px
    if (H * scale > 256) scale = std::max<int>(1, int(256 / std::max<int64_t>(H, W)));
    if (scale == 1) return m;
    cv::Mat big;
    cv::resize(m, big, cv::Size(), scale, scale, cv::INTER_NEAREST);
    return big;
}

// The masked panel of image i: the original with its masked patches magenta (probes/Reconstruction.h
// maskedInMagenta, the one rule the grid of `reconstruct` uses too; the snapshot's own "masked" panel is grey).
cv::Mat maskedPanel(const SnapshotArray& original, const SnapshotArray& mask, int64_t i, int scale) {
    auto orig = torch::from_blob(const_cast<float*>(original.values.data()), original.shape, torch::kFloat32).slice(0, i, i + 1);
    auto m = torch::from_blob(const_cast<float*>(mask.values.data()), mask.shape, torch::kFloat32).slice(0, i, i + 1);
    auto rgb = maskedInMagenta(orig, m).contiguous();
    SnapshotArray panel{"masked", {1, 3, rgb.size(2), rgb.size(3)},
                        std::vector<float>(rgb.data_ptr<float>(), rgb.data_ptr<float>() + rgb.numel())};
    return imageOf(panel, 0, scale);
}

// Values on a grid x grid lattice -> a heatmap the size of `size`, OpenCV's viridis scale over [lo, hi].
cv::Mat heatmap(const std::vector<float>& values, int grid, cv::Size size, double lo, double hi) {
    cv::Mat g(grid, grid, CV_8UC1);
    for (int i = 0; i < grid * grid; ++i) {
        double t = hi > lo ? (values[size_t(i)] - lo) / (hi - lo) : 0.0;
        g.at<uint8_t>(i / grid, i % grid) = cv::saturate_cast<uint8_t>(std::lround(255.0 * std::clamp(t, 0.0, 1.0)));
    }
    cv::Mat big, colour;
    cv::resize(g, big, size, 0, 0, cv::INTER_NEAREST);
    cv::applyColorMap(big, colour, cv::COLORMAP_VIRIDIS);
    return colour;
}

cv::Mat overlay(const cv::Mat& image, const cv::Mat& heat, double alpha = 0.6) {
    cv::Mat grey, grey3, out;
    cv::cvtColor(image, grey, cv::COLOR_BGR2GRAY);
    cv::cvtColor(grey, grey3, cv::COLOR_GRAY2BGR);
    cv::addWeighted(heat, alpha, grey3, 1.0 - alpha, 0.0, out);
    return out;
}

// Blue (-1) - white (0) - red (+1).
cv::Vec3b diverging(double v) {
    if (!std::isfinite(v)) return cv::Vec3b(200, 200, 200);
    v = std::clamp(v, -1.0, 1.0);
    const cv::Vec3d blue(180, 80, 30), white(255, 255, 255), red(40, 40, 200);  // BGR
    cv::Vec3d c = v < 0 ? white + (blue - white) * (-v) : white + (red - white) * v;
    return cv::Vec3b(cv::saturate_cast<uint8_t>(c[0]), cv::saturate_cast<uint8_t>(c[1]), cv::saturate_cast<uint8_t>(c[2]));
}

void put(cv::Mat& m, const std::string& text, int x, int y, double scale = 0.4) {
    cv::putText(m, text, {x, y}, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(20, 20, 20), 1, cv::LINE_AA);
}

cv::Mat withBorder(const cv::Mat& m, int gap = 2) {
    cv::Mat out;
    cv::copyMakeBorder(m, out, gap, gap, gap, gap, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
    return out;
}

// Stacks a table of equally sized panels, with a title band over each column and a wrapped header on top.
cv::Mat compose(const std::vector<std::vector<cv::Mat>>& rows, const std::vector<std::string>& columnTitles,
                const std::vector<std::string>& header) {
    std::vector<cv::Mat> lines;
    for (const auto& r : rows) {
        std::vector<cv::Mat> cells;
        for (const auto& c : r) cells.push_back(withBorder(c));
        cv::Mat line;
        cv::hconcat(cells, line);
        lines.push_back(line);
    }
    cv::Mat body;
    cv::vconcat(lines, body);
    const int cellW = rows.empty() || rows[0].empty() ? body.cols : rows[0][0].cols + 4;
    // Header lines wrapped by words to the width.
    std::vector<std::string> wrapped;
    for (const auto& text : header) {
        std::istringstream words(text);
        std::string word, current;
        while (words >> word) {
            std::string cand = current.empty() ? word : current + " " + word;
            int base = 0;
            if (!current.empty() && cv::getTextSize(cand, cv::FONT_HERSHEY_SIMPLEX, 0.42, 1, &base).width > body.cols - 8) {
                wrapped.push_back(current);
                current = word;
            } else {
                current = cand;
            }
        }
        if (!current.empty()) wrapped.push_back(current);
    }
    const int lineH = 17;
    int band = int(wrapped.size()) * lineH + (columnTitles.empty() ? 0 : lineH) + 6;
    cv::Mat out(body.rows + band, body.cols, CV_8UC3, cv::Scalar(255, 255, 255));
    body.copyTo(out(cv::Rect(0, band, body.cols, body.rows)));
    int y = lineH - 3;
    for (const auto& l : wrapped) {
        put(out, l, 4, y, 0.42);
        y += lineH;
    }
    for (size_t c = 0; c < columnTitles.size(); ++c) {
        double sc = 0.36;
        int base = 0;
        while (sc > 0.2 && cv::getTextSize(columnTitles[c], cv::FONT_HERSHEY_SIMPLEX, sc, 1, &base).width > cellW - 4) sc -= 0.02;
        put(out, columnTitles[c], int(c) * cellW + 3, y, sc);
    }
    return out;
}

std::string encode(const cv::Mat& m) {
    std::vector<uint8_t> buf;
    if (!cv::imencode(".png", m, buf)) throw std::runtime_error("OpenCV could not encode a PNG");
    return std::string(buf.begin(), buf.end());
}

std::vector<float> row(const SnapshotArray& a, std::vector<int64_t> prefix) {
    int64_t inner = a.shape.back(), flat = 0;
    for (size_t d = 0; d < prefix.size(); ++d) flat = flat * a.shape[d] + prefix[d];
    return std::vector<float>(a.values.begin() + flat * inner, a.values.begin() + (flat + 1) * inner);
}

}  // namespace

bool snapshotPngAvailable() { return true; }

void exportSnapshotPng(const Snapshot& s, const std::string& path, const ProbeExportOptions& o) {
    std::string png = renderSnapshotPng(s, o);
    writeFileAtomically(path, png);
}

std::string renderSnapshotPng(const Snapshot& s, const ProbeExportOptions& o) {
    if (!s.unavailable().empty()) throw std::runtime_error(s.kind + " probe was unavailable: " + s.unavailable());
    const int grid = s.meta.value("grid", 7);
    const std::string stepText = "step " + std::to_string(s.step) + ", stage " + std::to_string(s.stage + 1);
    if (s.kind == "gradcos") {
        const auto& cos = need(s, "cos");
        const auto& sum = need(s, "summary");
        const int64_t G = cos.shape[0], n = cos.shape[1];
        // Columns narrow with many probe images (64 by default) so that the figure stays about 1,500 px wide;
        // the values are written into the cells while they fit.
        const int cell = 40, labelW = 80, meanW = 50;
        const int colW = int(std::clamp<int64_t>(1400 / std::max<int64_t>(1, n), 8, 40));
        cv::Mat m(int(G) * cell, labelW + int(n) * colW + meanW + 8, CV_8UC3, cv::Scalar(255, 255, 255));
        for (int64_t g = 0; g < G; ++g) {
            put(m, groupName(s, g), 4, int(g) * cell + cell / 2 + 4);
            for (int64_t i = 0; i <= n; ++i) {
                double v = i < n ? cos.at({g, i}) : sum.at({g, kCosMean});
                int x0 = labelW + int(i) * colW + (i == n ? 8 : 0);
                cv::Rect r(x0, int(g) * cell, i == n ? meanW : colW - 1, cell - 1);
                m(r).setTo(cv::Scalar(diverging(v)[0], diverging(v)[1], diverging(v)[2]));
                if (i == n || colW >= 34) put(m, std::isfinite(v) ? fixed2(v) : "-", x0 + 3, int(g) * cell + cell / 2 + 4, 0.3);
            }
        }
        // Colour scale.
        cv::Mat scale(22, int(n) * colW, CV_8UC3, cv::Scalar(255, 255, 255));
        for (int x = 0; x < scale.cols; ++x) {
            auto c = diverging(-1.0 + 2.0 * x / std::max(1, scale.cols - 1));
            cv::line(scale, {x, 0}, {x, 9}, cv::Scalar(c[0], c[1], c[2]));
        }
        put(scale, "-1", 0, 20, 0.32);
        put(scale, "0", scale.cols / 2 - 3, 20, 0.32);
        put(scale, "+1", scale.cols - 16, 20, 0.32);
        cv::Mat full(m.rows + scale.rows + 4, m.cols, CV_8UC3, cv::Scalar(255, 255, 255));
        m.copyTo(full(cv::Rect(0, 0, m.cols, m.rows)));
        scale.copyTo(full(cv::Rect(labelW, m.rows + 4, scale.cols, scale.rows)));
        std::vector<std::string> header = {
            "Gradient cosine cos(grad L_MIM(x), grad L_CL(x)) per parameter group (rows) and probe image (columns), last column = mean; " + stepText,
            "MIM head: " + s.meta.value("mim_head", std::string("?")) + "; CL head: " + s.meta.value("cl_head", std::string("?"))};
        return encode(compose({{full}}, {}, header));
    }
    if (s.kind == "attention") {
        const auto& imgs = need(s, "images");
        const auto& a = need(s, "cls_attention");  // (depth, n, heads, L)
        const auto& r = need(s, "rollout");
        const int64_t depth = a.shape[0], heads = a.shape[2], L = a.shape[3];
        const int64_t n = std::min<int64_t>(imgs.shape[0], o.maxImages);
        if (o.head >= heads) throw std::runtime_error("--head " + std::to_string(o.head) + ": the model has " + std::to_string(heads) + " heads");
        std::vector<std::vector<cv::Mat>> rows;
        for (int64_t i = 0; i < n; ++i) {
            cv::Mat img = imageOf(imgs, i, o.scale);
            std::vector<cv::Mat> cells = {img};
            for (int64_t b = 0; b < depth; ++b) {
                std::vector<float> v(size_t(L), 0.f);
                for (int64_t h = 0; h < heads; ++h) {
                    if (o.head >= 0 && h != o.head) continue;
                    auto hv = row(a, {b, i, h});
                    for (int64_t l = 0; l < L; ++l) v[size_t(l)] += hv[size_t(l)] / float(o.head >= 0 ? 1 : heads);
                }
                auto [lo, hi] = std::minmax_element(v.begin(), v.end());
                cells.push_back(overlay(img, heatmap(v, grid, img.size(), *lo, *hi)));
            }
            auto rv = row(r, {i});
            auto [rlo, rhi] = std::minmax_element(rv.begin(), rv.end());
            cells.push_back(overlay(img, heatmap(rv, grid, img.size(), *rlo, *rhi)));
            rows.push_back(cells);
        }
        std::vector<std::string> titles = {"image"};
        for (int64_t b = 0; b < depth; ++b) titles.push_back("block " + std::to_string(b));
        titles.push_back("rollout");
        return encode(compose(rows, titles,
                           {"Class-token attention to each patch (" + (o.head >= 0 ? "head " + std::to_string(o.head) : std::string("mean of heads")) +
                                "), viridis, each panel scaled from its own minimum to its maximum; " + stepText}));
    }
    if (s.kind == "similarity") {
        const auto& imgs = need(s, "images");
        const auto& cosine = need(s, "cosine");
        const SnapshotArray* lookup = s.find("lookup");
        const int64_t L = cosine.shape[1];
        const int64_t q = o.query >= 0 ? o.query : (grid / 2) * grid + grid / 2;
        if (q >= L) throw std::runtime_error("--query " + std::to_string(q) + ": the image has " + std::to_string(L) + " patches");
        const int64_t n = std::min<int64_t>(imgs.shape[0], o.maxImages);
        const int p = s.meta.value("patch_size", 4) * o.scale;
        std::vector<std::vector<cv::Mat>> rows;
        for (int64_t i = 0; i < n; ++i) {
            cv::Mat img = imageOf(imgs, i, o.scale);
            cv::Mat marked = img.clone();
            cv::rectangle(marked, cv::Rect(int(q % grid) * p, int(q / grid) * p, p, p), cv::Scalar(0, 0, 255), 1);
            std::vector<cv::Mat> cells = {marked, overlay(img, heatmap(row(cosine, {i, q}), grid, img.size(), -1.0, 1.0))};
            if (lookup) {
                auto v = row(*lookup, {i, q});
                cells.push_back(overlay(img, heatmap(v, grid, img.size(), 0.0, *std::max_element(v.begin(), v.end()))));
            }
            rows.push_back(cells);
        }
        std::vector<std::string> titles = {"query patch " + std::to_string(q), "cosine [-1,1]"};
        if (lookup) titles.push_back("ConMIM look-up");
        std::vector<std::string> header = {"Patch similarity to the query patch (red box), " + s.meta.value("block_label", std::string()) + "; " + stepText};
        if (lookup) header.push_back(s.meta.value("lookup_note", std::string()));
        return encode(compose(rows, titles, header));
    }
    if (s.kind == "reconstruction") {
        const int64_t n = std::min<int64_t>(need(s, "original").shape[0], o.maxImages);
        std::vector<std::vector<cv::Mat>> rows;
        for (int64_t i = 0; i < n; ++i) {
            std::vector<cv::Mat> cells;
            for (const char* name : {"original", "masked", "reconstruction", "pasted"})
                cells.push_back(std::string(name) == "masked" && s.find("mask") && s.find("mask")->shape.size() == 2 &&
                                        i < s.find("mask")->shape[0] ? maskedPanel(need(s, "original"), *s.find("mask"), i, o.scale)
                                                                                 : imageOf(need(s, name), i, o.scale));
            rows.push_back(cells);
        }
        std::ostringstream loss;
        loss << s.meta.value("loss", 0.0);
        std::vector<std::string> header = {"MAE reconstruction, " + stepText + ", loss " + loss.str() +
                                               (s.find("mask") ? " (masked patches magenta)" : ""),
                                           s.meta.value("pixel_note", std::string()), "decoder: " + s.meta.value("decoder", std::string())};
        if (const SnapshotArray* per = s.find("loss_per_image")) {  // each image's masked-patch loss, top to bottom
            std::ostringstream line;
            line << "loss per image:";
            line.precision(3);
            for (int64_t i = 0; i < n && i < per->numel(); ++i) line << (i ? ", " : " ") << per->values[size_t(i)];
            header.push_back(line.str());
        }
        return encode(compose(rows, {"original", "masked", "reconstruction", "+ visible"}, header));
    }
    throw std::runtime_error("no PNG export for snapshot kind \"" + s.kind + "\"");
}
torch::Tensor reconstructionMaskedPanel(const Snapshot& s, int64_t i, int scale) {
    cv::Mat bgr = maskedPanel(need(s, "original"), need(s, "mask"), i, scale), rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
}
#else
bool snapshotPngAvailable() { return false; }

torch::Tensor reconstructionMaskedPanel(const Snapshot&, int64_t, int) {
    throw std::runtime_error("this build has no image-file support (configured with GRAFTLAB_OPENCV=OFF)");
}

void exportSnapshotPng(const Snapshot& s, const std::string& path, const ProbeExportOptions&) {
    throw FileError(path, "this build has no image-file support (configured with GRAFTLAB_OPENCV=OFF)");
}

std::string renderSnapshotPng(const Snapshot&, const ProbeExportOptions&) {
    throw std::runtime_error("this build has no image-file support (configured with GRAFTLAB_OPENCV=OFF)");
}
#endif

}  // namespace graftlab
