#pragma once
#include <QPlainTextEdit>

namespace graftlab {

// Read-only log, fed line by line (the app attaches an spdlog sink that queues lines here).
class LogView : public QPlainTextEdit {
    Q_OBJECT
public:
    explicit LogView(QWidget* parent = nullptr);
public slots:
    void appendLine(const QString& level, const QString& text);
};

}  // namespace graftlab
