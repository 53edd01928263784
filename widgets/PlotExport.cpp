#include "PlotExport.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>
#include <QSvgGenerator>

namespace graftlab {

namespace {
bool saveSvg(QCustomPlot* plot, const QString& path, int width, int height) {
    if (width <= 0) width = plot->width();
    if (height <= 0) height = plot->height();
    QSvgGenerator gen;
    gen.setFileName(path);
    gen.setSize(QSize(width, height));
    gen.setViewBox(QRect(0, 0, width, height));
    gen.setTitle(plot->objectName());
    QCPPainter painter;
    if (!painter.begin(&gen)) return false;
    plot->toPainter(&painter, width, height);
    return painter.end() && QFileInfo(path).size() > 0;
}
}  // namespace

QString exportPlot(QCustomPlot* plot, const QString& path, int width, int height) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    bool ok = false;
    if (suffix == "png") ok = plot->savePng(path, width, height, 2.0);
    else if (suffix == "pdf") ok = plot->savePdf(path, width, height);
    else if (suffix == "svg") ok = saveSvg(plot, path, width, height);
    else if (suffix == "jpg" || suffix == "jpeg") ok = plot->saveJpg(path, width, height, 2.0);
    else return QStringLiteral("%1: unknown image type \"%2\" (use .png, .pdf or .svg)").arg(path, suffix);
    return ok ? QString() : QStringLiteral("%1: could not be written").arg(path);
}

void exportPlotInteractively(QCustomPlot* plot, const QString& defaultName, const QString& suffix) {
    QString path = QFileDialog::getSaveFileName(plot, QObject::tr("Export plot"), defaultName + "." + suffix,
                                                suffix.toUpper() + QStringLiteral(" (*.") + suffix + ")");
    if (path.isEmpty()) return;
    if (QFileInfo(path).suffix().isEmpty()) path += "." + suffix;
    QString err = exportPlot(plot, path);
    if (!err.isEmpty()) QMessageBox::warning(plot, QObject::tr("Export failed"), err);
}

void placeLegendAbove(QCustomPlot* plot, int wrap) {
    plot->legend->setVisible(true);
    plot->legend->setFont(QFont(plot->font().family(), 8));
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    if (wrap > 0) plot->legend->setWrap(wrap);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(0, 0.001);
}

void installPlotExportMenu(QCustomPlot* plot, const QString& defaultName) {
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, defaultName](const QPoint& pos) {
        QMenu menu(plot);
        for (const char* suffix : {"png", "pdf", "svg"}) {
            QString s = QString::fromLatin1(suffix);
            menu.addAction(QObject::tr("Export as %1…").arg(s.toUpper()), [plot, defaultName, s] { exportPlotInteractively(plot, defaultName, s); });
        }
        menu.addSeparator();
        menu.addAction(QObject::tr("Reset zoom"), [plot] {
            plot->rescaleAxes();
            plot->replot();
        });
        menu.exec(plot->mapToGlobal(pos));
    });
}

}  // namespace graftlab
