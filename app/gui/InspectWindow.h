#pragma once
// Inspect: a model — one GraftLab trained, or one another project published (File > Open model… imports it) — on
// the user's own images: MAE's reconstruction at a mask ratio and seed the user sets, class-token attention per block
// and head overlaid on the image with rollout, patch similarity by clicking a patch, and the gradient cosines between
// the MIM and CL losses where the model has both heads. Images are added with a button or dropped on the window;
// each view exports as PNG, SVG and .npz.
#include "InspectSession.h"

#include <QMainWindow>

class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTimer;

namespace graftlab {

class AttentionView;
class GradCosView;
class ReconstructionView;
class SimilarityView;

class InspectWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit InspectWindow(QWidget* parent = nullptr);

    void openModel(const QString& fileOrDir);
    void addImages(const QStringList& files);
    void clearImages();
    void setMask(double ratio, int seed);
    // Writes the view shown (or `kind`: reconstruction, attention, similarity, gradcos) as PNG, SVG or .npz by the
    // suffix of `path`; returns an error message, empty on success.
    QString exportView(const QString& path, const QString& kind = {}) const;
    void showKind(const QString& kind);

    InspectSession* session() const { return session_; }
    ReconstructionView* reconstructionView() const { return recon_; }
    AttentionView* attentionView() const { return attention_; }
    SimilarityView* similarityView() const { return similarity_; }
    GradCosView* gradCosView() const { return gradcos_; }
    QStringList images() const { return images_; }
    QString statusText() const;
    // The snapshot of a kind from the last run of the probes (null before any).
    const Snapshot* lastSnapshot(const QString& kind) const;

signals:
    // Emitted after every run of the probes (ok = they ran) and after a failure.
    void inspected(bool ok);

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void requestInspect();
    void onSnapshots(const QVector<Snapshot>& snaps);
    QWidget* currentView() const;
    QString currentKind() const;

    InspectSession* session_;
    QLabel* modelInfo_;
    QLabel* status_;
    QListWidget* imageList_;
    QDoubleSpinBox* maskRatio_;
    QSpinBox* maskSeed_;
    QPushButton* exportButton_;
    QTabWidget* tabs_;
    ReconstructionView* recon_;
    AttentionView* attention_;
    SimilarityView* similarity_;
    GradCosView* gradcos_;
    QTimer* debounce_;
    QStringList images_;
    QVector<Snapshot> last_;
};

}  // namespace graftlab
