#include "SnapshotImages.h"

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

std::vector<float> slice(const SnapshotArray& a, int64_t offset, int64_t count) {
    offset = std::clamp<int64_t>(offset, 0, int64_t(a.values.size()));
    count = std::clamp<int64_t>(count, 0, int64_t(a.values.size()) - offset);
    return std::vector<float>(a.values.begin() + offset, a.values.begin() + offset + count);
}

}  // namespace graftlab
