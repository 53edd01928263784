#include "PlotExport.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>

namespace graftlab {

QString exportPlot(QCustomPlot* plot, const QString& path, int width, int height) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    bool ok = false;
    if (suffix == "png") ok = plot->savePng(path, width, height, 2.0);
    else if (suffix == "pdf") ok = plot->savePdf(path, width, height);
    else if (suffix == "jpg" || suffix == "jpeg") ok = plot->saveJpg(path, width, height, 2.0);
    else return QStringLiteral("%1: unknown image type \"%2\" (use .png or .pdf)").arg(path, suffix);
    return ok ? QString() : QStringLiteral("%1: could not be written").arg(path);
}

void installPlotExportMenu(QCustomPlot* plot, const QString& defaultName) {
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, defaultName](const QPoint& pos) {
        QMenu menu(plot);
        auto save = [plot, defaultName](const QString& suffix) {
            QString path = QFileDialog::getSaveFileName(plot, QObject::tr("Export plot"), defaultName + "." + suffix,
                                                        suffix.toUpper() + QStringLiteral(" (*.") + suffix + ")");
            if (path.isEmpty()) return;
            QString err = exportPlot(plot, path);
            if (!err.isEmpty()) QMessageBox::warning(plot, QObject::tr("Export failed"), err);
        };
        menu.addAction(QObject::tr("Export as PNG…"), [save] { save("png"); });
        menu.addAction(QObject::tr("Export as PDF…"), [save] { save("pdf"); });
        menu.addSeparator();
        menu.addAction(QObject::tr("Reset zoom"), [plot] {
            plot->rescaleAxes();
            plot->replot();
        });
        menu.exec(plot->mapToGlobal(pos));
    });
}

}  // namespace graftlab
