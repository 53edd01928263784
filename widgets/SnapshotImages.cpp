#include "SnapshotImages.h"

#include "base/probes/MaskedPatch.h"

#include <QFontMetrics>
#include <QPainter>

#include <algorithm>
#include <cmath>

namespace graftlab {

QImage snapshotImage(const SnapshotArray& a, int64_t i) {
    const int64_t C = a.shape.at(1), H = a.shape.at(2), W = a.shape.at(3);
    QImage img(int(W), int(H), QImage::Format_RGB32);
    auto px = [&](int64_t c, int64_t y, int64_t x) {
        float v = a.values[size_t(((i * C + std::min(c, C - 1)) * H + y) * W + x)];
        return int(std::lround(255.0 * std::clamp(double(v), 0.0, 1.0)));
    };
    for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) img.setPixel(int(x), int(y), qRgb(px(0, y, x), px(1, y, x), px(2, y, x)));
    return img;
}

QColor viridis(double t) {
    static const double stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (!std::isfinite(t)) return QColor(200, 200, 200);
    t = std::clamp(t, 0.0, 1.0) * 4.0;
    int k = std::min(3, int(t));
    double f = t - k;
    return QColor(int(stops[k][0] + (stops[k + 1][0] - stops[k][0]) * f), int(stops[k][1] + (stops[k + 1][1] - stops[k][1]) * f),
                  int(stops[k][2] + (stops[k + 1][2] - stops[k][2]) * f));
}

QImage heatOverlay(const QImage& image, const std::vector<float>& values, int grid, double lo, double hi, double alpha) {
    QImage heat(grid, grid, QImage::Format_RGB32);
    for (int i = 0; i < grid * grid && size_t(i) < values.size(); ++i)
        heat.setPixel(i % grid, i / grid, viridis(hi > lo ? (values[size_t(i)] - lo) / (hi - lo) : 0.5).rgb());
    QImage grey = image.convertToFormat(QImage::Format_Grayscale8).convertToFormat(QImage::Format_RGB32);
    QImage out = grey;
    QPainter p(&out);
    p.setOpacity(alpha);
    p.drawImage(out.rect(), heat.scaled(out.size(), Qt::IgnoreAspectRatio, Qt::FastTransformation));
    return out;
}

QImage reconstructionGrid(const Snapshot& s, int scale) {
    const char* names[4] = {"original", "masked", "reconstruction", "pasted"};
    const SnapshotArray* cols[4];
    for (int c = 0; c < 4; ++c) {
        cols[c] = s.find(names[c]);
        if (!cols[c]) return {};
    }
    const int64_t n = cols[0]->shape[0];
    const int H = int(cols[0]->shape[2]) * scale, W = int(cols[0]->shape[3]) * scale, gap = 2;
    QImage grid(4 * W + 5 * gap, int(n) * H + int(n + 1) * gap, QImage::Format_RGB32);
    grid.fill(Qt::white);
    QPainter p(&grid);
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c)
            p.drawImage(QRect(gap + c * (W + gap), gap + int(i) * (H + gap), W, H),
                        snapshotImage(*cols[c], i).scaled(W, H, Qt::IgnoreAspectRatio, Qt::FastTransformation));
    return grid;
}

std::vector<bool> attentionMassMask(const std::vector<float>& attention, double mass) {
    std::vector<size_t> order(attention.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return attention[a] > attention[b]; });
    double total = 0;
    for (float v : attention) total += std::max(0.0f, v);
    std::vector<bool> keep(attention.size(), false);
    double sum = 0;
    for (size_t i : order) {
        if (total <= 0 || sum >= mass * total) break;
        keep[i] = true;
        sum += std::max(0.0f, attention[i]);
    }
    return keep;
}

QImage maskedImage(const QImage& image, const std::vector<bool>& keep, int grid) {
    QImage out = image.convertToFormat(QImage::Format_RGB32);
    if (grid <= 0) return out;
    for (int y = 0; y < out.height(); ++y)
        for (int x = 0; x < out.width(); ++x) {
            const size_t k = size_t(y * grid / out.height() * grid + x * grid / out.width());
            if (k < keep.size() && keep[k]) continue;
            const QRgb c = out.pixel(x, y);
            out.setPixel(x, y, qRgb(qRed(c) / 5, qGreen(c) / 5, qBlue(c) / 5 + 25));
        }
    return out;
}

QColor maskedPatchColour() { return QColor(kMaskedPatchFill.r, kMaskedPatchFill.g, kMaskedPatchFill.b); }

namespace {
const char* const kPanelArrays[4] = {"original", "masked", "reconstruction", "pasted"};
const char* const kPanelTitles[4] = {"original", "masked", "reconstruction", "+ visible"};
const char* const kShortPanelTitles[4] = {"orig.", "masked", "recon.", "+ visible"};  // where a title is wider than its tile
constexpr int kFigureGap = 4;

struct FigureMetrics {
    int title = 0, label = 0;  // title row height, loss column width
};
FigureMetrics figureMetrics(const Snapshot& s, const QFont& font) {
    QFontMetrics fm(font);
    FigureMetrics m;
    m.title = fm.height() + 4;
    m.label = s.find("loss_per_image") ? fm.horizontalAdvance("loss 0.0000") + 8 : 0;
    return m;
}
}  // namespace

ReconstructionLayout reconstructionLayoutFor(const Snapshot& s, const QSize& area, const QFont& font) {
    const SnapshotArray* orig = s.find("original");
    if (!orig || orig->shape.size() != 4) return {};
    const int n = int(orig->shape[0]), size = int(orig->shape[3]);
    const FigureMetrics m = figureMetrics(s, font);
    // the images in 1, 2, ... blocks side by side (each: its loss column and four panels), whichever gives the
    // largest tiles; a whole multiple of the image size from 3x up (crisp pixels without wasting much room)
    ReconstructionLayout best;
    for (int blocks = 1; blocks <= std::max(1, n); ++blocks) {
        const int rows = (n + blocks - 1) / blocks;
        const int byWidth = (area.width() - blocks * (m.label + 5 * kFigureGap)) / (4 * blocks);
        const int byHeight = (area.height() - m.title - (rows + 1) * kFigureGap) / std::max(1, rows);
        int tile = std::min(byWidth, byHeight);
        if (tile >= 3 * size) tile = tile / size * size;
        if (tile > best.tile) best = {std::max(8, tile), blocks};
    }
    return best;
}

QImage reconstructionFigure(const Snapshot& s, int tile, const QFont& font, int blocks) {
    const SnapshotArray* cols[4];
    for (int c = 0; c < 4; ++c) {
        cols[c] = s.find(kPanelArrays[c]);
        if (!cols[c]) return {};
    }
    const int n = int(cols[0]->shape[0]);
    blocks = std::clamp(blocks, 1, std::max(1, n));
    const int rows = (n + blocks - 1) / blocks;
    const FigureMetrics m = figureMetrics(s, font);
    const int blockWidth = m.label + 4 * tile + 5 * kFigureGap;
    QImage fig(blocks * blockWidth, m.title + rows * tile + (rows + 1) * kFigureGap, QImage::Format_RGB32);
    fig.fill(Qt::white);
    QPainter p(&fig);
    p.setFont(font);
    p.setPen(QColor(40, 40, 40));
    // image i sits in block i / rows, row i % rows
    auto cell = [&](int c, int i) {
        const int b = i / rows, r = i % rows;
        return QRect(b * blockWidth + m.label + kFigureGap + c * (tile + kFigureGap), m.title + kFigureGap + r * (tile + kFigureGap), tile, tile);
    };
    for (int b = 0; b < blocks && b * rows < n; ++b)
        for (int c = 0; c < 4; ++c)
            p.drawText(QRect(cell(c, b * rows).left(), 0, tile, m.title), Qt::AlignHCenter | Qt::AlignBottom,
                       QString::fromLatin1(p.fontMetrics().horizontalAdvance(kPanelTitles[c]) <= tile ? kPanelTitles[c] : kShortPanelTitles[c]));
    const SnapshotArray* mask = s.find("mask");
    const SnapshotArray* losses = s.find("loss_per_image");
    const int grid = mask && mask->shape.size() == 2 ? int(std::lround(std::sqrt(double(mask->shape[1])))) : 0;
    for (int i = 0; i < n; ++i) {
        for (int c = 0; c < 4; ++c) {
            // the masked panel: the original with the masked patches filled (the stored panel's grey looks like cloth)
            const bool hatch = c == 1 && grid > 0 && int64_t(grid) * grid == mask->shape[1] && i < mask->shape[0];  // a damaged file: grey panel
            const QImage img = snapshotImage(*cols[hatch ? 0 : c], i);
            p.drawImage(cell(c, i), img.scaled(tile, tile, Qt::IgnoreAspectRatio, Qt::FastTransformation));
            if (!hatch) continue;
            const QRect r = cell(c, i);
            for (int k = 0; k < grid * grid; ++k) {
                if (mask->values[size_t(i) * size_t(grid * grid) + size_t(k)] < 0.5f) continue;
                const int x0 = r.left() + (k % grid) * tile / grid, x1 = r.left() + (k % grid + 1) * tile / grid;
                const int y0 = r.top() + (k / grid) * tile / grid, y1 = r.top() + (k / grid + 1) * tile / grid;
                const QRect patch(x0, y0, x1 - x0, y1 - y0);
                p.fillRect(patch, maskedPatchColour());
                p.fillRect(patch, QBrush(QColor(255, 255, 255, 150), Qt::BDiagPattern));
            }
        }
        if (losses && i < losses->numel()) {
            const QRect r = cell(0, i);
            p.drawText(QRect(r.left() - kFigureGap - m.label, r.top(), m.label, tile), Qt::AlignRight | Qt::AlignVCenter,
                       QStringLiteral("loss %1").arg(double(losses->values[size_t(i)]), 0, 'f', 4));
        }
    }
    return fig;
}

std::vector<float> slice(const SnapshotArray& a, int64_t offset, int64_t count) {
    offset = std::clamp<int64_t>(offset, 0, int64_t(a.values.size()));
    count = std::clamp<int64_t>(count, 0, int64_t(a.values.size()) - offset);
    return std::vector<float>(a.values.begin() + offset, a.values.begin() + offset + count);
}

}  // namespace graftlab
