#pragma once
// GuiStopRoute: the GUI's route of the stop signals (base/util/StopSignals.h takes them) to its event loop.
// SIGTERM, SIGHUP and SIGINT for the GUI: a logout, `kill`, a cluster's preemption or Ctrl+C in the terminal
// close the window as the user would, so a running training stops after its current step and writes a checkpoint
// (the CLI does the same). Without this the default action ended the process and lost every step since the last
// checkpoint. The signals are taken by GraftLab's signal thread (base/util/StopSignals.h: main() blocks them before
// any thread exists, so no training or library thread is ever interrupted by one); this object routes them to
// the GUI thread's event loop while it is alive.
#include "base/util/StopSignals.h"

#include <QObject>

#include <functional>
#include <memory>

namespace graftlab {

class GuiStopRoute : public QObject {
    Q_OBJECT
public:
    // `onSignal` runs on the GUI thread with the signal's name ("SIGTERM", ...). Needs startStopSignalThread().
    GuiStopRoute(std::function<void(const char*)> onSignal, QObject* parent = nullptr);
    ~GuiStopRoute() override;

private:
    std::function<void(const char*)> onSignal_;
    std::unique_ptr<StopSignalRoute> route_;
};

}  // namespace graftlab
