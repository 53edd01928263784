#include "ReconstructionView.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QSlider>
#include <QVBoxLayout>

namespace graftlab {

ReconstructionView::ReconstructionView(QWidget* parent) : QWidget(parent) {
    auto* header = new QHBoxLayout;
    auto* titles = new QLabel(tr("<b>original</b> · <b>masked</b> · <b>reconstruction</b> · <b>reconstruction + visible</b>"), this);
    header->addWidget(titles);
    header->addStretch();
    image_ = new QLabel(this);
    image_->setAlignment(Qt::AlignCenter);
    image_->setMinimumSize(200, 200);
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
        show(v);
    });
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(header);
    layout->addWidget(image_, 1);
    layout->addWidget(slider_);
    layout->addWidget(caption_);
}

void ReconstructionView::addSnapshot(qint64 step, const QImage& grid, double loss, const QString& note) {
    snapshots_.push_back({step, grid, loss, note});
    image_->setStyleSheet("");
    slider_->setEnabled(snapshots_.size() > 1);
    slider_->setMaximum(snapshots_.size() - 1);
    if (followLatest_) {
        slider_->setValue(snapshots_.size() - 1);
        show(snapshots_.size() - 1);
    }
}

void ReconstructionView::clear() {
    snapshots_.clear();
    followLatest_ = true;
    slider_->setMaximum(0);
    slider_->setEnabled(false);
    caption_->clear();
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

void ReconstructionView::show(int index) {
    if (index < 0 || index >= snapshots_.size()) return;
    const auto& s = snapshots_[index];
    QSize area = image_->size();
    // Nearest-neighbour: the pixels of a 28x28 image should stay crisp squares.
    QPixmap pm = QPixmap::fromImage(s.grid.scaled(area, Qt::KeepAspectRatio, Qt::FastTransformation));
    image_->setPixmap(pm);
    caption_->setText(tr("step %1 · masked-patch loss %2 · %3 · snapshot %4 of %5")
                          .arg(s.step)
                          .arg(s.loss, 0, 'f', 4)
                          .arg(s.note)
                          .arg(index + 1)
                          .arg(snapshots_.size()));
}

void ReconstructionView::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    show(slider_->value());
}

QString ReconstructionView::exportCurrent(const QString& path) const {
    int i = slider_->value();
    if (i < 0 || i >= snapshots_.size()) return tr("no reconstruction to export yet");
    if (!snapshots_[i].grid.save(path)) return tr("%1: could not be written").arg(path);
    return {};
}

}  // namespace graftlab
