#include "SignalStop.h"

#include <QSocketNotifier>

#include <csignal>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace graftlab {

namespace {
int g_fds[2] = {-1, -1};

void handler(int sig) {
    const unsigned char b = static_cast<unsigned char>(sig);
    ssize_t n = ::write(g_fds[0], &b, 1);  // async-signal-safe; a full socket just drops a repeat
    (void)n;
}
}  // namespace

SignalStop::SignalStop(std::function<void(const char*)> onSignal, QObject* parent) : QObject(parent), onSignal_(std::move(onSignal)) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_fds) != 0) return;
    ::fcntl(g_fds[0], F_SETFL, O_NONBLOCK);
    notifier_ = new QSocketNotifier(g_fds[1], QSocketNotifier::Read, this);
    connect(notifier_, &QSocketNotifier::activated, this, [this] {
        unsigned char b = 0;
        if (::read(g_fds[1], &b, 1) != 1) return;
        const char* name = b == SIGTERM ? "SIGTERM" : b == SIGHUP ? "SIGHUP" : b == SIGINT ? "SIGINT" : "a signal";
        if (onSignal_) onSignal_(name);
    });
    struct sigaction sa{};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGTERM, SIGHUP, SIGINT}) ::sigaction(sig, &sa, nullptr);
}

SignalStop::~SignalStop() {
    struct sigaction sa{};
    sa.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGHUP, SIGINT}) ::sigaction(sig, &sa, nullptr);
    if (g_fds[0] >= 0) ::close(g_fds[0]);
    if (g_fds[1] >= 0) ::close(g_fds[1]);
    g_fds[0] = g_fds[1] = -1;
}

}  // namespace graftlab
