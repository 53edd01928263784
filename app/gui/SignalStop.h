#pragma once
// SIGTERM, SIGHUP and SIGINT for the GUI: a logout, `kill`, a cluster's preemption or Ctrl+C in the terminal
// close the window as the user would, so a running training stops after its current step and writes a checkpoint
// (the CLI does the same). Without this the default action ended the process and lost every step since the last
// checkpoint. The handler only writes to a socket; the Qt event loop does the rest.
#include <QObject>

#include <functional>

class QSocketNotifier;

namespace graftlab {

class SignalStop : public QObject {
    Q_OBJECT
public:
    // `onSignal` runs on the GUI thread with the signal's name ("SIGTERM", ...). One instance per process.
    SignalStop(std::function<void(const char*)> onSignal, QObject* parent = nullptr);
    ~SignalStop() override;

private:
    std::function<void(const char*)> onSignal_;
    QSocketNotifier* notifier_ = nullptr;
};

}  // namespace graftlab
