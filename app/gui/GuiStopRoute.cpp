#include "GuiStopRoute.h"

#include <QMetaObject>

#include <csignal>

namespace graftlab {

GuiStopRoute::GuiStopRoute(std::function<void(const char*)> onSignal, QObject* parent) : QObject(parent), onSignal_(std::move(onSignal)) {
    // Called on the signal thread: only posts to the GUI thread (the route ends before this object does).
    route_ = std::make_unique<StopSignalRoute>([this](int sig) {
        const char* name = sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : sig == SIGINT ? "SIGINT" : "a signal";
        QMetaObject::invokeMethod(this, [this, name] { if (onSignal_) onSignal_(name); }, Qt::QueuedConnection);
    });
}

GuiStopRoute::~GuiStopRoute() { route_.reset(); }  // waits for a call in progress; later signals take the default action

}  // namespace graftlab
