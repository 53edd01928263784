#include "ReconstructionView.h"
#include "SnapshotImages.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QSlider>
#include <QVBoxLayout>

#include <cmath>

namespace graftlab {

ReconstructionView::ReconstructionView(QWidget* parent) : QWidget(parent) {
    image_ = new QLabel(this);
    image_->setAlignment(Qt::AlignCenter);
    image_->setMinimumSize(200, 200);
    image_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Ignored);  // the figure follows the view, never the reverse
    image_->setText(tr("Masked reconstructions of fixed probe images appear here during training\n"
                       "(every probes.every steps), so you can watch the decoder learn."));
    image_->setStyleSheet("color: gray;");
    image_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(image_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        if (snapshots_.isEmpty()) return;
        QMenu menu(this);
        menu.addAction(tr("Export grid as PNG…"), [this] {
            QString path = QFileDialog::getSaveFileName(this, tr("Export reconstruction grid"), "reconstruction.png", "PNG (*.png)");
            if (path.isEmpty()) return;
            QString err = exportCurrent(path);
            if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
        });
        menu.exec(image_->mapToGlobal(pos));
    });
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setEnabled(false);
    slider_->setToolTip(tr("Walk through the reconstructions recorded so far; the right end follows the newest."));
    connect(slider_, &QSlider::valueChanged, this, [this](int v) {
        followLatest_ = v == slider_->maximum();
        showIndex(v);
    });
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(image_, 1);
    layout->addWidget(slider_);
    layout->addWidget(caption_);
}

void ReconstructionView::addSnapshot(const Snapshot& s, const QString& note) {
    snapshots_.push_back({s, note});
    image_->setStyleSheet("");
    slider_->setEnabled(snapshots_.size() > 1);
    slider_->setMaximum(snapshots_.size() - 1);
    if (followLatest_) {
        slider_->setValue(snapshots_.size() - 1);
        showIndex(snapshots_.size() - 1);
    }
}

void ReconstructionView::clear() {
    snapshots_.clear();
    followLatest_ = true;
    slider_->setMaximum(0);
    slider_->setEnabled(false);
    caption_->clear();
    shown_ = {};
    tile_ = 0;
    image_->setPixmap({});
    image_->setStyleSheet("color: gray;");
    image_->setText(tr("Masked reconstructions of fixed test images appear here during training."));
}

void ReconstructionView::setEmptyText(const QString& text) {
    if (!snapshots_.isEmpty()) return;
    image_->setPixmap({});
    image_->setStyleSheet("color: gray;");
    image_->setText(text);
}

void ReconstructionView::showIndex(int index) {
    if (index < 0 || index >= snapshots_.size()) return;
    const Entry& e = snapshots_[index];
    const Snapshot& s = e.snapshot;
    // drawn at the size that fills the view (text stays crisp; pixels stay whole squares)
    const ReconstructionLayout layout = reconstructionLayoutFor(s, image_->size() - QSize(4, 4), font());
    tile_ = layout.tile;
    shown_ = reconstructionFigure(s, tile_, font(), layout.blocks);
    image_->setPixmap(QPixmap::fromImage(shown_));
    QString text = tr("step %1 · masked-patch loss %2 (all images)").arg(s.step).arg(s.meta.value("loss", 0.0), 0, 'f', 4);
    if (s.find("mask"))
        text += tr(" · <span style='color:%1'>■</span> masked patches (%2 %)")
                    .arg(maskedPatchColour().name())
                    .arg(std::lround(100 * s.meta.value("mask_ratio", 0.0)));
    const QString pixel = QString::fromStdString(s.meta.value("pixel_note", std::string()));
    if (!pixel.isEmpty()) text += " · " + pixel.toHtmlEscaped();
    if (!e.note.isEmpty()) text += " · " + e.note.toHtmlEscaped();
    text += tr(" · snapshot %1 of %2").arg(index + 1).arg(snapshots_.size());
    caption_->setText(text);
}

QString ReconstructionView::caption() const { return caption_->text(); }

void ReconstructionView::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    showIndex(slider_->value());
}

QString ReconstructionView::exportCurrent(const QString& path) const {
    if (shown_.isNull()) return tr("no reconstruction to export yet");
    if (!shown_.save(path)) return tr("%1: could not be written").arg(path);
    return {};
}

}  // namespace graftlab
