#include "InspectWindow.h"

#include "GradCosView.h"
#include "ProbeImageViews.h"
#include "ReconstructionView.h"
#include "SnapshotImages.h"
#include "base/export/Npz.h"

#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPainter>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QTabWidget>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

namespace graftlab {

namespace {
const QStringList kKinds = {"reconstruction", "attention", "similarity", "gradcos"};
const char* kImageFilter = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.pgm *.ppm)";

bool isImagePath(const QString& p) {
    static const QStringList ext = {"png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "pgm", "ppm"};
    return ext.contains(QFileInfo(p).suffix().toLower());
}
}  // namespace

InspectWindow::InspectWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("GraftLab — Inspect a model"));
    setAcceptDrops(true);
    session_ = new InspectSession(this);

    auto* tb = addToolBar(tr("Inspect"));
    tb->setObjectName("inspectToolbar");
    auto* openModel = tb->addAction(tr("Open model…"));
    openModel->setShortcut(QKeySequence("Ctrl+M"));
    openModel->setToolTip(tr("A checkpoint another project published (MAE, MoCo v3, Layer Grafted, DINO, timm: .pth, .pth.tar, .safetensors;\n"
                             "imported into %1 without running any of its code), an imported model's folder, or a GraftLab run or checkpoint")
                              .arg(session_->modelsRoot()));
    connect(openModel, &QAction::triggered, this, [this] {
        QString path = QFileDialog::getOpenFileName(this, tr("Open model"), QSettings().value("inspect/lastModelDir").toString(),
                                                    tr("Checkpoints (*.pth *.pt *.tar *.safetensors *.bin *.ckpt);;All files (*)"));
        if (path.isEmpty()) return;
        QSettings().setValue("inspect/lastModelDir", QFileInfo(path).absolutePath());
        this->openModel(path);
    });
    auto* addImgs = tb->addAction(tr("Add images…"));
    addImgs->setShortcut(QKeySequence("Ctrl+I"));
    addImgs->setToolTip(tr("Your own images (PNG, JPEG, ... any size, grey or colour): resized (shorter side, centre square) and\n"
                           "normalised as the model expects. You can also drop image files on this window."));
    connect(addImgs, &QAction::triggered, this, [this] {
        QStringList files = QFileDialog::getOpenFileNames(this, tr("Add images"), QSettings().value("inspect/lastImageDir").toString(), tr(kImageFilter));
        if (files.isEmpty()) return;
        QSettings().setValue("inspect/lastImageDir", QFileInfo(files.first()).absolutePath());
        addImages(files);
    });
    auto* clear = tb->addAction(tr("Clear images"));
    connect(clear, &QAction::triggered, this, &InspectWindow::clearImages);
    tb->addSeparator();
    tb->addWidget(new QLabel(tr(" Mask ratio "), this));
    maskRatio_ = new QDoubleSpinBox(this);
    maskRatio_->setRange(0.05, 0.95);
    maskRatio_->setSingleStep(0.05);
    maskRatio_->setValue(0.75);
    maskRatio_->setToolTip(tr("Share of the patches MAE masks in the reconstruction (the model was trained with its own; 0.75 in MAE)"));
    tb->addWidget(maskRatio_);
    tb->addWidget(new QLabel(tr(" Mask seed "), this));
    maskSeed_ = new QSpinBox(this);
    maskSeed_->setRange(0, 1000000);
    maskSeed_->setValue(0);
    maskSeed_->setToolTip(tr("Seed of the random mask: the same seed gives the same mask"));
    tb->addWidget(maskSeed_);
    tb->addSeparator();
    exportButton_ = new QPushButton(tr("Export view…"), this);
    exportButton_->setToolTip(tr("The view shown as PNG or SVG (the picture), or .npz (its numbers: numpy.load)"));
    tb->addWidget(exportButton_);
    connect(exportButton_, &QPushButton::clicked, this, [this] {
        QString kind = currentKind();
        QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(kind), kind + ".png", tr("PNG (*.png);;SVG (*.svg);;NumPy (*.npz)"));
        if (path.isEmpty()) return;
        QString err = exportView(path);
        if (!err.isEmpty()) QMessageBox::warning(this, tr("Export failed"), err);
        else statusBar()->showMessage(tr("Wrote %1").arg(path), 6000);
    });

    modelInfo_ = new QLabel(tr("No model yet: Open model… (Ctrl+M) takes a checkpoint of MAE, MoCo v3, Layer Grafted, DINO or timm,\n"
                               "or one GraftLab trained. Then add images (Ctrl+I) or drop them here."),
                            this);
    modelInfo_->setWordWrap(true);
    modelInfo_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    imageList_ = new QListWidget(this);
    imageList_->setToolTip(tr("The images the probes run on; Delete removes the selected one"));
    imageList_->setMaximumWidth(220);
    auto* del = new QAction(imageList_);
    del->setShortcut(QKeySequence::Delete);
    imageList_->addAction(del);
    connect(del, &QAction::triggered, this, [this] {
        int row = imageList_->currentRow();
        if (row < 0 || row >= images_.size()) return;
        images_.removeAt(row);
        delete imageList_->takeItem(row);
        requestInspect();
    });

    tabs_ = new QTabWidget(this);
    recon_ = new ReconstructionView(this);
    recon_->setEmptyText(tr("Reconstructions appear here for a model with an MAE decoder."));
    attention_ = new AttentionView(this);
    similarity_ = new SimilarityView(this);
    gradcos_ = new GradCosView(this);
    tabs_->addTab(recon_, tr("Reconstruction"));
    tabs_->addTab(attention_, tr("Attention"));
    tabs_->addTab(similarity_, tr("Patch similarity"));
    tabs_->addTab(gradcos_, tr("Gradient cosines"));

    auto* right = new QWidget(this);
    auto* rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    rl->addWidget(modelInfo_);
    rl->addWidget(tabs_, 1);
    auto* split = new QSplitter(this);
    split->addWidget(imageList_);
    split->addWidget(right);
    split->setStretchFactor(1, 1);
    setCentralWidget(split);
    status_ = new QLabel(this);
    statusBar()->addWidget(status_, 1);

    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(250);
    connect(debounce_, &QTimer::timeout, this, [this] {
        if (session_->model().checkpoint.isEmpty() || images_.isEmpty()) return;
        session_->inspect(images_, maskRatio_->value(), quint64(maskSeed_->value()));
    });
    connect(maskRatio_, &QDoubleSpinBox::valueChanged, this, &InspectWindow::requestInspect);
    connect(maskSeed_, &QSpinBox::valueChanged, this, &InspectWindow::requestInspect);

    connect(session_, &InspectSession::working, this, [this](const QString& what) { status_->setText(what); });
    connect(session_, &InspectSession::modelOpened, this, [this](const InspectModelInfo& info) {
        QStringList lines = info.summary;
        modelInfo_->setText(lines.join("\n"));
        setWindowTitle(tr("GraftLab — Inspect %1").arg(QFileInfo(info.modelDir).fileName()));
        status_->setText(tr("Model ready: %1 px, %2 channel(s), %3 blocks, %4 heads%5").arg(info.imageSize).arg(info.channels).arg(info.depth).arg(info.heads)
                             .arg(images_.isEmpty() ? tr(". Add images (Ctrl+I) or drop them here.") : QString()));
        recon_->clear();
        recon_->setEmptyText(info.hasDecoder ? tr("Running…") : tr("This model has no MAE decoder: no reconstructions (%1).")
                                                                     .arg(info.imported ? tr("the file held none") : tr("not an MAE model")));
        if (!images_.isEmpty()) {
            debounce_->stop();
            session_->inspect(images_, maskRatio_->value(), quint64(maskSeed_->value()));
        } else {
            emit inspected(true);
        }
    });
    connect(session_, &InspectSession::snapshotsReady, this, &InspectWindow::onSnapshots);
    connect(session_, &InspectSession::failed, this, [this](const QString& msg) {
        status_->setText(tr("Failed: %1").arg(msg));
        // not modal: the window stays usable (and a script or test driving it is not blocked)
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Inspect"), msg, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->setModal(false);
        box->show();
        emit inspected(false);
    });
    resize(1200, 760);
}

void InspectWindow::openModel(const QString& fileOrDir) {
    status_->setText(tr("Opening %1…").arg(fileOrDir));
    session_->openModel(fileOrDir);
}

void InspectWindow::addImages(const QStringList& files) {
    for (const auto& f : files) {
        QString abs = QFileInfo(f).absoluteFilePath();
        if (images_.contains(abs)) continue;
        images_ << abs;
        auto* item = new QListWidgetItem(QIcon(QPixmap(abs).scaled(48, 48, Qt::KeepAspectRatio)), QFileInfo(abs).fileName(), imageList_);
        item->setToolTip(abs);
    }
    requestInspect();
}

void InspectWindow::clearImages() {
    images_.clear();
    imageList_->clear();
    last_.clear();
    recon_->clear();
    attention_->clear();
    similarity_->clear();
    gradcos_->clear();
}

void InspectWindow::setMask(double ratio, int seed) {
    maskRatio_->setValue(ratio);
    maskSeed_->setValue(seed);
}

void InspectWindow::requestInspect() { debounce_->start(); }

void InspectWindow::onSnapshots(const QVector<Snapshot>& snaps) {
    last_ = snaps;
    recon_->clear();
    attention_->clear();
    similarity_->clear();
    gradcos_->clear();
    for (const auto& s : snaps) {
        if (s.kind == "reconstruction") {
            if (!s.unavailable().empty()) {
                recon_->setEmptyText(QString::fromStdString(s.unavailable()));
                continue;
            }
            recon_->addSnapshot(s, tr("mask seed %1").arg(qulonglong(s.meta.value("mask_seed", uint64_t(0)))));
        } else if (s.kind == "attention") {
            attention_->addSnapshot(s);
        } else if (s.kind == "similarity") {
            similarity_->addSnapshot(s);
        } else if (s.kind == "gradcos") {
            gradcos_->addSnapshot(s);
        }
    }
    status_->setText(tr("%n image(s) inspected.", nullptr, int(images_.size())));
    emit inspected(true);
}

const Snapshot* InspectWindow::lastSnapshot(const QString& kind) const {
    for (const auto& s : last_)
        if (QString::fromStdString(s.kind) == kind) return &s;
    return nullptr;
}

QString InspectWindow::statusText() const { return status_->text(); }

QString InspectWindow::currentKind() const { return kKinds.value(tabs_->currentIndex(), "reconstruction"); }

void InspectWindow::showKind(const QString& kind) {
    int i = int(kKinds.indexOf(kind));
    if (i >= 0) tabs_->setCurrentIndex(i);
}

QWidget* InspectWindow::currentView() const { return tabs_->currentWidget(); }

QString InspectWindow::exportView(const QString& path, const QString& kindIn) const {
    const QString kind = kindIn.isEmpty() ? currentKind() : kindIn;
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == "npz") {
        const Snapshot* s = lastSnapshot(kind);
        if (!s) return tr("no %1 yet: open a model and add an image").arg(kind);
        if (!s->unavailable().empty()) return tr("%1 is unavailable for this model: %2").arg(kind, QString::fromStdString(s->unavailable()));
        try {
            writeNpz(path.toStdString(), snapshotArrays(*s));
        } catch (const std::exception& e) {
            return QString::fromUtf8(e.what());
        }
        return {};
    }
    QWidget* view = tabs_->widget(int(kKinds.indexOf(kind)));
    if (!view) return tr("unknown view %1").arg(kind);
    if (suffix == "svg") {
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(view->size());
        gen.setViewBox(QRect(QPoint(0, 0), view->size()));
        gen.setTitle(tr("GraftLab %1").arg(kind));
        QPainter p;
        if (!p.begin(&gen)) return tr("%1: could not be written").arg(path);
        view->render(&p);
        p.end();
        return QFileInfo(path).size() > 0 ? QString() : tr("%1: could not be written").arg(path);
    }
    if (suffix == "png") {
        if (!view->grab().save(path, "PNG")) return tr("%1: could not be written").arg(path);
        return {};
    }
    return tr("%1: export as .png, .svg or .npz").arg(path);
}

void InspectWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!e->mimeData()->hasUrls()) return;
    for (const auto& u : e->mimeData()->urls())
        if (u.isLocalFile()) {
            e->acceptProposedAction();
            return;
        }
}

void InspectWindow::dropEvent(QDropEvent* e) {
    QStringList imgs;
    for (const auto& u : e->mimeData()->urls()) {
        if (!u.isLocalFile()) continue;
        QString f = u.toLocalFile();
        if (isImagePath(f)) imgs << f;
        else openModel(f);  // a checkpoint dropped on the window opens it
    }
    if (!imgs.isEmpty()) addImages(imgs);
    e->acceptProposedAction();
}

}  // namespace graftlab
