#pragma once
#include <QString>

class QCustomPlot;
class QWidget;

namespace graftlab {

// Saves a plot as PNG or PDF by the file's suffix; returns an error message, empty on success.
QString exportPlot(QCustomPlot* plot, const QString& path, int width = 0, int height = 0);
// Adds "Export as PNG / PDF…" to the plot's context menu.
void installPlotExportMenu(QCustomPlot* plot, const QString& defaultName);

}  // namespace graftlab
