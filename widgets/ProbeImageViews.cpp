#include "ProbeImageViews.h"
#include "PlotExport.h"
#include "SnapshotImages.h"

#include <qcustomplot.h>

#include <QAbstractItemView>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QMenu>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPainter>
#include <QSettings>
#include <QSlider>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace graftlab {

FitImageLabel::FitImageLabel(QWidget* parent) : QLabel(parent) {
    setAlignment(Qt::AlignCenter);
    setMinimumSize(160, 160);
    setWordWrap(true);
    setStyleSheet("color: gray;");
}

void FitImageLabel::setImage(const QImage& image) {
    image_ = image;
    setStyleSheet("");
    refresh();
}

void FitImageLabel::refresh() {
    if (image_.isNull()) return;
    QImage scaled = image_.scaled(size(), Qt::KeepAspectRatio, Qt::FastTransformation);
    shown_ = QRect(QPoint((width() - scaled.width()) / 2, (height() - scaled.height()) / 2), scaled.size());
    setPixmap(QPixmap::fromImage(scaled));
}

void FitImageLabel::resizeEvent(QResizeEvent* e) {
    QLabel::resizeEvent(e);
    refresh();
}

QPointF FitImageLabel::imagePoint(const QPointF& pos) const {
    if (image_.isNull() || !shown_.contains(pos.toPoint())) return {-1, -1};
    return {(pos.x() - shown_.x()) / shown_.width(), (pos.y() - shown_.y()) / shown_.height()};
}

void FitImageLabel::mouseMoveEvent(QMouseEvent* e) {
    const QPointF f = imagePoint(e->position());
    emit hovered(f.x(), f.y());
    QLabel::mouseMoveEvent(e);
}

void FitImageLabel::leaveEvent(QEvent* e) {
    emit hovered(-1, -1);
    QLabel::leaveEvent(e);
}

void FitImageLabel::mousePressEvent(QMouseEvent* e) {
    if (!image_.isNull() && shown_.contains(e->position().toPoint()))
        emit clicked((e->position().x() - shown_.x()) / shown_.width(), (e->position().y() - shown_.y()) / shown_.height());
    QLabel::mousePressEvent(e);
}

SnapshotHistory::SnapshotHistory(const QString& kind, QWidget* parent) : QWidget(parent), kind_(kind) {
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setEnabled(false);
    slider_->setToolTip(tr("Walk through the probe steps recorded so far; the right end follows the newest"));
    caption_ = new QLabel(this);
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(slider_, 1);
    l->addWidget(caption_);
    connect(slider_, &QSlider::valueChanged, this, [this](int v) {
        followLatest_ = v == slider_->maximum();
        if (const Snapshot* s = current())
            caption_->setText(tr("step %1 · stage %2 · %3 of %4").arg(s->step).arg(s->stage + 1).arg(v + 1).arg(snaps_.size()));
        emit currentChanged();
    });
}

bool SnapshotHistory::add(const Snapshot& s) {
    if (QString::fromStdString(s.kind) != kind_) return false;
    if (!s.unavailable().empty()) {
        if (snaps_.isEmpty()) emit unavailable(tr("Stage %1, step %2: %3").arg(s.stage + 1).arg(s.step).arg(QString::fromStdString(s.unavailable())));
        return true;
    }
    int at = snaps_.size();
    while (at > 0 && snaps_[at - 1].step >= s.step) --at;
    if (at < snaps_.size() && snaps_[at].step == s.step) snaps_[at] = s;
    else snaps_.insert(at, s);
    slider_->setEnabled(snaps_.size() > 1);
    slider_->setMaximum(snaps_.size() - 1);
    if (followLatest_) {
        if (slider_->value() == snaps_.size() - 1) emit slider_->valueChanged(slider_->value());
        else slider_->setValue(snaps_.size() - 1);
    }
    return true;
}

void SnapshotHistory::clear() {
    snaps_.clear();
    followLatest_ = true;
    slider_->setMaximum(0);
    slider_->setEnabled(false);
    caption_->clear();
    emit currentChanged();
}

const Snapshot* SnapshotHistory::current() const {
    int i = slider_->value();
    return i >= 0 && i < snaps_.size() ? &snaps_[i] : nullptr;
}

// A row of choice boxes that never widens its view beyond the room beside the recipe dock: each box as wide as about
// 9 characters (longer choices elided in the box, whole in its list).
void fitControls(std::initializer_list<QComboBox*> boxes) {
    for (QComboBox* b : boxes) {
        b->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        b->setMinimumContentsLength(9);
        b->view()->setMinimumWidth(260);
    }
}

// ---------------------------------------------------------------------------------------------------------------

AttentionView::AttentionView(QWidget* parent) : QWidget(parent) {
    history_ = new SnapshotHistory("attention", this);
    block_ = new QComboBox(this);
    block_->setToolTip(tr("Which block's attention to show; rollout combines all blocks (head mean + identity, multiplied)"));
    head_ = new QComboBox(this);
    head_->setToolTip(tr("One attention head, the mean over heads, or every head at once (a grid: images x heads)"));
    scale_ = new QComboBox(this);
    scale_->addItem(tr("one scale per block"), "block");
    scale_->addItem(tr("each panel its own"), "panel");
    scale_->setToolTip(tr("One colour scale for the block across every image and head (a colour means the same attention "
                          "everywhere; the bar on the right says which), or each panel from its own minimum to maximum"));
    show_ = new QComboBox(this);
    show_->addItem(tr("heat map"), 0.0);
    for (int pct : {50, 60, 80, 90}) show_->addItem(tr("top %1 % of the mass").arg(pct), pct / 100.0);
    show_->setToolTip(tr("The heat map, or DINO's mask: the fewest patches that hold this share of the attention shown, the "
                         "rest dimmed (DINO's figures keep 60 %)"));
    opacity_ = new QSlider(Qt::Horizontal, this);
    opacity_->setRange(0, 100);
    opacity_->setValue(int(std::lround(100 * std::clamp(QSettings().value("attention/opacity", 0.75).toDouble(), 0.0, 1.0))));
    opacity_->setMaximumWidth(90);
    opacity_->setMinimumWidth(60);
    opacity_->setToolTip(tr("Opacity of the heat map over the image (left: the image, right: the heat map only)"));
    connect(opacity_, &QSlider::valueChanged, this, [this](int v) {
        QSettings().setValue("attention/opacity", v / 100.0);
        render();
    });
    image_ = new FitImageLabel(this);
    image_->setMouseTracking(true);
    image_->setText(tr("Class-token attention over the probe images appears here during training (probes.every)."));
    hover_ = new QLabel(this);
    hover_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    hover_->setToolTip(tr("The panel under the mouse: image, head, patch (row, column) and its attention"));
    connect(image_, &FitImageLabel::hovered, this, [this](double fx, double fy) { hover_->setText(valueAt(fx, fy)); });
    image_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(image_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        if (image_->image().isNull()) return;
        QMenu menu(this);
        menu.addAction(tr("Export as PNG…"), [this] {
            QString path = QFileDialog::getSaveFileName(this, tr("Export attention"), "attention.png", "PNG (*.png)");
            if (path.isEmpty()) return;
            QString err = exportCurrent(path);
            if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
        });
        menu.exec(image_->mapToGlobal(pos));
    });
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Block:"), this));
    controls->addWidget(block_);
    controls->addWidget(new QLabel(tr("Head:"), this));
    controls->addWidget(head_);
    controls->addWidget(new QLabel(tr("Scale:"), this));
    controls->addWidget(scale_);
    controls->addWidget(new QLabel(tr("Show:"), this));
    controls->addWidget(show_);
    controls->addWidget(new QLabel(tr("Opacity:"), this));
    controls->addWidget(opacity_);
    controls->addStretch();
    auto* l = new QVBoxLayout(this);
    l->addLayout(controls);
    l->addWidget(image_, 1);
    l->addWidget(hover_);
    l->addWidget(history_);
    l->addWidget(note_);
    connect(history_, &SnapshotHistory::currentChanged, this, &AttentionView::render);
    connect(history_, &SnapshotHistory::unavailable, image_, &QLabel::setText);
    connect(block_, &QComboBox::currentIndexChanged, this, &AttentionView::render);
    connect(head_, &QComboBox::currentIndexChanged, this, &AttentionView::render);
    connect(scale_, &QComboBox::currentIndexChanged, this, &AttentionView::render);
    connect(show_, &QComboBox::currentIndexChanged, this, [this] {
        QSettings().setValue("attention/mass", show_->currentData().toDouble());
        render();
    });
    if (const int i = show_->findData(QSettings().value("attention/mass", 0.0).toDouble()); i > 0) {
        QSignalBlocker b(show_);
        show_->setCurrentIndex(i);
    }
    fitControls({block_, head_, scale_, show_});
}

void AttentionView::setMassMask(double mass) {
    int i = show_->findData(mass);
    if (i < 0 && mass > 0) {
        show_->addItem(tr("top %1 % of the mass").arg(std::lround(mass * 100)), mass);
        i = show_->count() - 1;
    }
    show_->setCurrentIndex(std::max(0, i));
}

void AttentionView::setOpacity(double opacity) { opacity_->setValue(int(std::lround(100 * std::clamp(opacity, 0.0, 1.0)))); }

double AttentionView::opacity() const { return opacity_->value() / 100.0; }

QString AttentionView::hoverText() const { return hover_->text(); }

QString AttentionView::valueAt(double fx, double fy) const {
    const QImage& shown = image_->image();
    if (shown.isNull() || fx < 0 || fy < 0) return {};
    const QPoint at(int(fx * shown.width()), int(fy * shown.height()));
    for (const Panel& p : panels_) {
        if (!p.rect.contains(at)) continue;
        const int col = std::min(p.grid - 1, (at.x() - p.rect.left()) * p.grid / p.rect.width());
        const int row = std::min(p.grid - 1, (at.y() - p.rect.top()) * p.grid / p.rect.height());
        const size_t k = size_t(row * p.grid + col);
        if (k >= p.values.size()) return {};
        const QString head = block_->currentIndex() == 0 ? tr("rollout") : p.head < 0 ? tr("mean of heads") : tr("head %1").arg(p.head);
        return tr("image %1 · %2 · patch (row %3, column %4): attention %5")
            .arg(p.image + 1)
            .arg(head)
            .arg(row)
            .arg(col)
            .arg(double(p.values[k]), 0, 'g', 3);
    }
    return {};
}

void AttentionView::setHead(int head) {
    const int i = head_->findData(head);
    if (i >= 0) head_->setCurrentIndex(i);
}

void AttentionView::setBlock(int block) { block_->setCurrentIndex(block + 1); }

void AttentionView::setSharedScale(bool shared) { scale_->setCurrentIndex(shared ? 0 : 1); }

void AttentionView::addSnapshot(const Snapshot& s) {
    if (s.kind != "attention") return;
    if (s.unavailable().empty()) {
        const int depth = s.meta.value("depth", 0), heads = s.meta.value("heads", 0);
        if (block_->count() != depth + 1) {
            QSignalBlocker b(block_);
            block_->clear();
            block_->addItem(tr("rollout"));
            for (int i = 0; i < depth; ++i) block_->addItem(tr("block %1").arg(i));
            block_->setCurrentIndex(depth);  // the last block
        }
        if (head_->count() != heads + 2) {
            QSignalBlocker b(head_);
            head_->clear();
            head_->addItem(tr("mean of heads"), -1);
            for (int i = 0; i < heads; ++i) head_->addItem(tr("head %1").arg(i), i);
            head_->addItem(tr("all heads (grid)"), kAllHeads);
        }
    }
    history_->add(s);
}

void AttentionView::clear() {
    history_->clear();
    image_->setImage({});
    image_->setPixmap({});
    image_->setStyleSheet("color: gray;");
    image_->setText(tr("No attention snapshots yet."));
    note_->clear();
}

void AttentionView::render() {
    const Snapshot* s = history_->current();
    if (!s) return;
    const SnapshotArray* imgs = s->find("images");
    const SnapshotArray* cls = s->find("cls_attention");  // (depth, n, heads, L)
    const SnapshotArray* roll = s->find("rollout");       // (n, L)
    if (!imgs || !cls || !roll) return;
    const int grid = s->meta.value("grid", 7);
    const int64_t n = imgs->shape[0], heads = cls->shape[2], L = cls->shape[3];
    const int block = block_->currentIndex() - 1;                  // -1 = rollout
    const int headChoice = head_->currentData().isValid() ? head_->currentData().toInt() : -1;
    const bool all = headChoice == kAllHeads && block >= 0;        // rollout has no heads
    const bool shared = scale_->currentData().toString() == "block";
    // The panels: for each image, the mean of heads and every head (all), or the one chosen.
    auto values = [&](int64_t i, int head) {  // head -1 = mean
        if (block < 0) return slice(*roll, i * L, L);
        std::vector<float> v(size_t(L), 0.f);
        for (int64_t h = 0; h < heads; ++h) {
            if (head >= 0 && h != head) continue;
            auto hv = slice(*cls, ((int64_t(block) * n + i) * heads + h) * L, L);
            for (int64_t l = 0; l < L; ++l) v[size_t(l)] += hv[size_t(l)] / float(head >= 0 ? 1 : heads);
        }
        return v;
    };
    std::vector<int> columns;  // heads shown per image
    if (all) {
        columns.push_back(-1);
        for (int h = 0; h < heads; ++h) columns.push_back(h);
    } else {
        columns.push_back(block < 0 ? -1 : std::max(-1, headChoice));
    }
    // One scale per block: from 0 (no attention) to the largest value over every image and head of the block.
    double blockHi = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (block < 0) {
            auto v = values(i, -1);
            blockHi = std::max<double>(blockHi, *std::max_element(v.begin(), v.end()));
        } else {
            for (int64_t h = 0; h < heads; ++h) {
                auto v = values(i, int(h));
                blockHi = std::max<double>(blockHi, *std::max_element(v.begin(), v.end()));
            }
        }
    }
    range_ = shared ? qMakePair(0.0, blockHi) : qMakePair(double(NAN), double(NAN));

    const int scale = std::max(2, (all ? 64 : 96) / int(imgs->shape[2]));
    const int W = int(imgs->shape[3]) * scale, H = int(imgs->shape[2]) * scale, gap = 3;
    const double mass = show_->currentData().toDouble();  // > 0: DINO's mask instead of the heat map (no colour bar)
    const int title = all ? 16 : 0, barW = shared && mass <= 0 ? 64 : 0;
    const int panelsPerImage = 1 + int(columns.size());
    const int perRow = all ? 1 : int(std::min<int64_t>(n, 4));
    const int rows = int((n + perRow - 1) / perRow);
    const int imageW = panelsPerImage * (W + gap) + gap * 2;
    QImage canvas(perRow * imageW + gap + barW, title + rows * (H + gap) + gap, QImage::Format_RGB32);
    canvas.fill(Qt::white);
    QPainter p(&canvas);
    QFont small = p.font();
    small.setPixelSize(11);
    p.setFont(small);
    p.setPen(QColor(60, 60, 60));
    if (all) {  // column titles
        p.drawText(QRect(gap * 2, 0, W, title), Qt::AlignCenter, tr("image"));
        for (size_t c = 0; c < columns.size(); ++c)
            p.drawText(QRect(gap * 2 + int(c + 1) * (W + gap), 0, W, title), Qt::AlignCenter,
                       columns[c] < 0 ? tr("mean") : tr("head %1").arg(columns[c]));
    }
    const double alpha = opacity();
    opacity_->setEnabled(mass <= 0);  // the mask has no heat map to blend
    panels_.clear();
    for (int64_t i = 0; i < n; ++i) {
        QImage img = snapshotImage(*imgs, i).scaled(W, H, Qt::IgnoreAspectRatio, Qt::FastTransformation);
        const int x = gap * 2 + int(i % perRow) * imageW, y = title + gap + int(i / perRow) * (H + gap);
        p.drawImage(x, y, img);
        for (size_t c = 0; c < columns.size(); ++c) {
            auto v = values(i, columns[c]);
            auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            const QPoint at(x + int(c + 1) * (W + gap), y);
            if (mass > 0) p.drawImage(at, maskedImage(img, attentionMassMask(v, mass), grid));
            else p.drawImage(at, heatOverlay(img, v, grid, shared ? 0.0 : *lo, shared ? blockHi : *hi, alpha));
            panels_.append({QRect(at, QSize(W, H)), int(i), columns[c], grid, v});
        }
    }
    if (shared && mass <= 0) {  // the colour bar: viridis from 0 (bottom) to the block's largest attention (top)
        const int bx = canvas.width() - barW + 8, by = title + gap, bh = std::max(40, canvas.height() - by - gap - 2);
        for (int k = 0; k < bh; ++k) {
            p.setPen(viridis(1.0 - double(k) / std::max(1, bh - 1)));
            p.drawLine(bx, by + k, bx + 12, by + k);
        }
        p.setPen(QColor(60, 60, 60));
        p.drawRect(bx, by, 12, bh - 1);
        p.drawText(QRect(bx + 15, by - 2, barW - 20, 14), Qt::AlignLeft | Qt::AlignVCenter, QString::number(blockHi, 'g', 2));
        p.drawText(QRect(bx + 15, by + bh / 2 - 7, barW - 20, 14), Qt::AlignLeft | Qt::AlignVCenter, QString::number(blockHi / 2, 'g', 2));
        p.drawText(QRect(bx + 15, by + bh - 12, barW - 20, 14), Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("0"));
    }
    p.end();
    image_->setImage(canvas);
    const QString what = block < 0 ? tr("rollout") : tr("block %1").arg(block);
    const QString who = block < 0 ? QString() : all ? tr(", the mean and every head") : columns[0] < 0 ? tr(", mean of heads") : tr(", head %1").arg(columns[0]);
    if (mass > 0) {
        note_->setText(tr("DINO's mask (%1%2): the fewest patches that hold %3 % of the class token's attention, the rest dimmed.")
                           .arg(what, who)
                           .arg(std::lround(mass * 100)));
        return;
    }
    note_->setText(shared ? tr("The class token's attention to each patch (%1%2), viridis on one scale for the block across every image "
                               "and head: 0 (dark) to %3 (yellow), the bar on the right.")
                                .arg(what, who)
                                .arg(blockHi, 0, 'g', 3)
                          : tr("The class token's attention to each patch (%1%2), viridis, each panel from its own minimum (dark) to "
                               "maximum (yellow): colours are not comparable between panels.")
                                .arg(what, who));
}

QString AttentionView::exportCurrent(const QString& path) const {
    if (image_->image().isNull()) return tr("no attention map to export yet");
    if (!image_->image().save(path)) return tr("%1: could not be written").arg(path);
    return {};
}

// ---------------------------------------------------------------------------------------------------------------

SimilarityView::SimilarityView(QWidget* parent) : QWidget(parent) {
    history_ = new SnapshotHistory("similarity", this);
    mode_ = new QComboBox(this);
    mode_->addItem(tr("cosine similarity"), "cosine");
    mode_->addItem(tr("ConMIM look-up (softmax)"), "lookup");
    mode_->setToolTip(tr("Cosine similarity between patch tokens, or ConMIM's dictionary look-up: the softmax of the masked "
                         "view's patch feature against the full view's keys (ConMIM runs only)"));
    blockBox_ = new QComboBox(this);
    blockBox_->setToolTip(tr("Patch tokens after which block: the probe's block (probes.similarity_block; the last one "
                             "includes the final norm) or any block, where the run stored them all"));
    imageBox_ = new QComboBox(this);
    imageBox_->setToolTip(tr("Which probe image"));
    rangeBox_ = new QComboBox(this);
    rangeBox_->addItem(tr("auto: the run's range"), "auto");
    rangeBox_->addItem(tr("fixed: -1 to 1"), "fixed");
    rangeBox_->setToolTip(tr("Auto: from the least to the largest value of every snapshot of the run (this mode and block), so "
                             "a colour means the same value for every query, image and step; fixed: the whole cosine range "
                             "-1 to 1 (look-up: 0 to 1), where early in training everything may look alike"));
    image_ = new FitImageLabel(this);
    image_->setText(tr("Patch similarity appears here during training (probes.every). Click a patch to use it as the query."));
    image_->setToolTip(tr("Click a patch: it becomes the query (red box)"));
    plot_ = new QCustomPlot(this);
    plot_->axisRect()->setupFullAxesBox(true);
    plot_->xAxis->setLabel(tr("patch column"));
    plot_->yAxis->setLabel(tr("patch row"));
    plot_->yAxis->setRangeReversed(true);
    map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
    auto* scale = new QCPColorScale(plot_);
    plot_->plotLayout()->addElement(0, 1, scale);
    map_->setColorScale(scale);
    QCPColorGradient gradient;  // viridis (this QCustomPlot has no preset for it)
    for (int k = 0; k <= 4; ++k) gradient.setColorStopAt(k / 4.0, viridis(k / 4.0));
    map_->setGradient(gradient);
    map_->setInterpolate(false);
    auto* margins = new QCPMarginGroup(plot_);
    plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    installPlotExportMenu(plot_, "similarity");
    note_ = new QLabel(this);
    note_->setWordWrap(true);

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Mode:"), this));
    controls->addWidget(mode_);
    controls->addWidget(new QLabel(tr("Block:"), this));
    controls->addWidget(blockBox_);
    controls->addWidget(new QLabel(tr("Image:"), this));
    controls->addWidget(imageBox_);
    controls->addWidget(new QLabel(tr("Range:"), this));
    controls->addWidget(rangeBox_);
    controls->addStretch();
    auto* views = new QHBoxLayout;
    views->addWidget(image_, 1);
    views->addWidget(plot_, 1);
    auto* l = new QVBoxLayout(this);
    l->addLayout(controls);
    l->addLayout(views, 1);
    l->addWidget(history_);
    l->addWidget(note_);
    connect(history_, &SnapshotHistory::currentChanged, this, &SimilarityView::render);
    connect(history_, &SnapshotHistory::unavailable, image_, &QLabel::setText);
    connect(mode_, &QComboBox::currentIndexChanged, this, &SimilarityView::render);
    connect(imageBox_, &QComboBox::currentIndexChanged, this, &SimilarityView::render);
    connect(blockBox_, &QComboBox::currentIndexChanged, this, &SimilarityView::render);
    connect(rangeBox_, &QComboBox::currentIndexChanged, this, &SimilarityView::render);
    fitControls({mode_, blockBox_, imageBox_, rangeBox_});
    connect(image_, &FitImageLabel::clicked, this, [this](double fx, double fy) {
        const Snapshot* s = history_->current();
        if (!s) return;
        const int grid = s->meta.value("grid", 7);
        setQuery(std::clamp(int(fy * grid), 0, grid - 1) * grid + std::clamp(int(fx * grid), 0, grid - 1));
    });
}

int SimilarityView::blockChoices() const { return blockBox_->count(); }

void SimilarityView::setAutoRange(bool on) { rangeBox_->setCurrentIndex(on ? 0 : 1); }

void SimilarityView::setBlock(int block) {
    int i = blockBox_->findData(block);
    if (i >= 0) blockBox_->setCurrentIndex(i);
}

void SimilarityView::setQuery(int patch) {
    query_ = patch;
    render();
}

void SimilarityView::addSnapshot(const Snapshot& s) {
    if (s.kind != "similarity") return;
    if (s.unavailable().empty()) {
        if (const SnapshotArray* imgs = s.find("images"); imgs && imageBox_->count() != imgs->shape[0]) {
            QSignalBlocker b(imageBox_);
            imageBox_->clear();
            auto idx = s.meta.value("image_indices", std::vector<int64_t>{});
            for (int64_t i = 0; i < imgs->shape[0]; ++i)
                imageBox_->addItem(tr("probe image %1 (#%2)").arg(i + 1).arg(size_t(i) < idx.size() ? idx[size_t(i)] : i));
        }
        const SnapshotArray* blocks = s.find("cosine_blocks");
        const int depth = blocks ? int(blocks->shape[0]) : 0;
        const QString probeLabel = tr("probe's: %1").arg(QString::fromStdString(s.meta.value("block_label", std::string())));
        if (blockBox_->count() != depth + 1 || blockBox_->itemText(0) != probeLabel) {
            QSignalBlocker b(blockBox_);
            int keep = blockBox_->currentIndex();
            blockBox_->clear();
            blockBox_->addItem(probeLabel, -1);
            for (int i = 0; i < depth; ++i) blockBox_->addItem(tr("block %1").arg(i), i);
            blockBox_->setCurrentIndex(keep >= 0 && keep <= depth ? keep : 0);
        }
        blockBox_->setEnabled(depth > 0);
        blockBox_->setToolTip(depth > 0 ? blockBox_->toolTip()
                                        : QString::fromStdString(s.meta.value("blocks_note", std::string("this run stored one block"))));
        bool hasLookup = s.find("lookup") != nullptr;
        auto* model = qobject_cast<QStandardItemModel*>(mode_->model());
        if (model) model->item(1)->setEnabled(hasLookup);
        mode_->setItemData(1, hasLookup ? QString() : QString::fromStdString(s.meta.value("lookup_unavailable", std::string())), Qt::ToolTipRole);
        if (!hasLookup && mode_->currentIndex() == 1) mode_->setCurrentIndex(0);
    }
    runRanges_.clear();
    history_->add(s);
}

void SimilarityView::clear() {
    runRanges_.clear();
    history_->clear();
    image_->setImage({});
    image_->setPixmap({});
    image_->setStyleSheet("color: gray;");
    image_->setText(tr("No similarity snapshots yet."));
    map_->data()->clear();
    plot_->replot(QCustomPlot::rpQueuedReplot);
    note_->clear();
}

void SimilarityView::render() {
    const Snapshot* s = history_->current();
    if (!s) return;
    const SnapshotArray* imgs = s->find("images");
    const bool lookup = mode_->currentData().toString() == "lookup" && s->find("lookup");
    const SnapshotArray* blocks = s->find("cosine_blocks");
    const int block = lookup || !blocks ? -1 : blockBox_->currentData().toInt();
    const SnapshotArray* m = s->find(lookup ? "lookup" : block >= 0 ? "cosine_blocks" : "cosine");
    if (!imgs || !m) return;
    const int grid = s->meta.value("grid", 7);
    const int64_t L = m->shape.back();
    if (query_ < 0 || query_ >= L) query_ = (grid / 2) * grid + grid / 2;
    const int64_t i = std::clamp<int64_t>(imageBox_->currentIndex(), 0, imgs->shape[0] - 1);
    const int64_t n = imgs->shape[0];
    auto v = slice(*m, ((block >= 0 ? block * n : 0) + i) * L * L + query_ * L, L);
    const int scale = std::max(2, 160 / int(imgs->shape[2]));
    QImage img = snapshotImage(*imgs, i).scaled(int(imgs->shape[3]) * scale, int(imgs->shape[2]) * scale, Qt::IgnoreAspectRatio,
                                                Qt::FastTransformation);
    double lo = lookup ? 0.0 : -1.0, hi = 1.0;
    if (rangeBox_->currentData().toString() == "auto") {
        // every value of the same array in every stored snapshot: the run's range for this mode and block, computed
        // once per mode and block until a snapshot arrives (not again on every click on the GUI thread)
        const QString key = QStringLiteral("%1/%2").arg(lookup ? "lookup" : "cosine").arg(block);
        if (!runRanges_.contains(key)) {
            double runLo = INFINITY, runHi = -INFINITY;
            for (const Snapshot& sn : history_->all()) {
                const SnapshotArray* a = sn.find(lookup ? "lookup" : block >= 0 ? "cosine_blocks" : "cosine");
                if (!a) continue;
                // cosine_blocks (depth, n, L, L): the chosen block's part; cosine (n, L, L) and lookup: all of it
                const int64_t per = block >= 0 && a->shape.size() == 4 ? a->shape[1] * a->shape[2] * a->shape[3] : int64_t(a->values.size());
                const int64_t from = block >= 0 ? block * per : 0, to = std::min<int64_t>(from + per, int64_t(a->values.size()));
                for (int64_t k = from; k < to; ++k)
                    if (std::isfinite(a->values[size_t(k)])) {
                        runLo = std::min<double>(runLo, a->values[size_t(k)]);
                        runHi = std::max<double>(runHi, a->values[size_t(k)]);
                    }
            }
            runRanges_.insert(key, qMakePair(runLo, runHi));
        }
        auto [runLo, runHi] = runRanges_.value(key);
        if (std::isfinite(runLo)) {
            if (runHi - runLo < 1e-6) {  // one value everywhere: a narrow range around it
                runLo -= 0.05;
                runHi += 0.05;
            }
            lo = lookup ? 0.0 : runLo;
            hi = runHi;
        }
    }
    range_ = qMakePair(lo, hi);
    QImage shown = heatOverlay(img, v, grid, lo, hi, 0.55);
    QPainter p(&shown);
    const double cell = double(shown.width()) / grid;
    p.setPen(QPen(QColor(230, 30, 30), 2));
    p.drawRect(QRectF((query_ % grid) * cell, (query_ / grid) * cell, cell, cell));
    p.end();
    image_->setImage(shown);

    map_->data()->setSize(grid, grid);
    map_->data()->setRange(QCPRange(0, grid - 1), QCPRange(0, grid - 1));
    for (int k = 0; k < grid * grid && k < L; ++k) map_->data()->setCell(k % grid, k / grid, v[size_t(k)]);
    map_->setDataRange(QCPRange(lo, hi));
    map_->colorScale()->setLabel(lookup ? tr("look-up probability") : tr("cosine similarity"));
    plot_->xAxis->setRange(-0.5, grid - 0.5);
    plot_->yAxis->setRange(-0.5, grid - 0.5);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    QString text = tr("Query patch %1 (row %2, column %3) · %4")
                       .arg(query_)
                       .arg(query_ / grid)
                       .arg(query_ % grid)
                       .arg(block >= 0 ? tr("output of block %1").arg(block) : QString::fromStdString(s->meta.value("block_label", std::string())));
    if (lookup) text += " · " + QString::fromStdString(s->meta.value("lookup_note", std::string()));
    text += " · " + tr("colours from %1 to %2 (%3)").arg(lo, 0, 'g', 3).arg(hi, 0, 'g', 3)
                        .arg(rangeBox_->currentData().toString() == "auto" ? tr("the run's range") : tr("fixed"));
    note_->setText(text);
}

}  // namespace graftlab
