#include "LogView.h"

#include <QDateTime>

namespace graftlab {

LogView::LogView(QWidget* parent) : QPlainTextEdit(parent) {
    setReadOnly(true);
    setMaximumBlockCount(5000);
    setFont(QFont("Monospace", 9));
    setPlaceholderText(tr("Log messages of the training core appear here."));
}

void LogView::appendLine(const QString& level, const QString& text) {
    QString color = level == "error" || level == "critical" ? "#c62828" : level == "warning" ? "#b26a00" : "#333333";
    appendHtml(QStringLiteral("<span style='color:gray'>%1</span> <span style='color:%2'>%3</span>")
                   .arg(QTime::currentTime().toString("HH:mm:ss"), color, text.toHtmlEscaped()));
}

}  // namespace graftlab
