#pragma once
#include <QString>

class QCustomPlot;
class QWidget;

namespace graftlab {

// Saves a plot as PNG, PDF or SVG by the file's suffix; returns an error message, empty on success.
QString exportPlot(QCustomPlot* plot, const QString& path, int width = 0, int height = 0);
// Asks for a file name (suffix png, pdf or svg) and exports; a failure is shown in a message box.
void exportPlotInteractively(QCustomPlot* plot, const QString& defaultName, const QString& suffix);
// Shows the legend in a row of its own above the axis rect (entries side by side, wrapping after `wrap`), so
// that it covers no data.
void placeLegendAbove(QCustomPlot* plot, int wrap = 0);
// Adds "Export as PNG / PDF / SVG…" and "Reset zoom" to the plot's context menu.
void installPlotExportMenu(QCustomPlot* plot, const QString& defaultName);

}  // namespace graftlab
