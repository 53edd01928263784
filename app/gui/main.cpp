// graftlab: the GUI. Configure a recipe, train it on a worker thread, watch losses and reconstructions live.
#include "MainWindow.h"
#include "InspectWindow.h"
#include "GuiStopRoute.h"
#include "util/Log.h"
#include "base/util/StopSignals.h"
#include "base/util/ThreadEnv.h"

#include <cstdio>
#include <string>

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
    graftlab::blockStopSignals();  // before any thread (Qt's, LibTorch's), and kept across the re-execution below
    graftlab::ensureThreadEnvironment(argv);
    graftlab::startStopSignalThread();
    QCommandLineParser parser;
    parser.setApplicationDescription("GraftLab: self-supervised ViT pretraining with live views");
    parser.addHelpOption();
    parser.addVersionOption();
    QCommandLineOption recipe("recipe", "Recipe JSON file to load.", "FILE");
    QCommandLineOption out("out", "Run directory for the next run (default ~/GraftLab/runs/<name>-<time>).", "DIR");
    QCommandLineOption autostart("autostart", "Start training at once.");
    QCommandLineOption steps("steps", "With --screenshot: stop after N steps.", "N");
    QCommandLineOption screenshot("screenshot", "Render the window to FILE.png when the run ends, then quit.", "FILE");
    QCommandLineOption run("open-run", "Open a run directory at start-up.", "DIR");
    QCommandLineOption tab("tab", "Tab to show first: losses, reconstructions, gradient, attention, patch, evaluate or runs "
                                  "(with --open-model: reconstruction, attention, similarity or gradcos).", "NAME");
    QCommandLineOption model("open-model", "Open a model in the Inspect window: a checkpoint of MAE, MoCo v3, Layer Grafted, DINO or timm "
                                           "(imported into ~/GraftLab/models), an imported model's folder, or a GraftLab checkpoint.", "FILE");
    QCommandLineOption image("inspect-image", "With --open-model: an image to inspect (repeatable).", "FILE");
    QCommandLineOption maskRatio("mask-ratio", "With --open-model: the reconstruction's mask ratio (default 0.75).", "R");
    QCommandLineOption maskSeed("mask-seed", "With --open-model: the seed of the reconstruction's mask (default 0).", "S");
    QCommandLineOption overlay("overlay", "List a run, or every run of a folder (a sweep's, a table's), in the Runs on one plot tab "
                                          "(repeatable).", "DIR");
    QCommandLineOption compare("compare", "Add a run, or every run of a folder (a table's, a sweep's), to Evaluate & compare "
                                          "(repeatable).", "DIR");
    parser.addOptions({recipe, out, autostart, steps, screenshot, run, tab, model, image, maskRatio, maskSeed, overlay, compare});
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "-v" || arg == "--version") {
            // printed without a display (a QApplication aborts when there is none)
            QCoreApplication core(argc, argv);
            QCoreApplication::setApplicationName("GraftLab");
            QCoreApplication::setApplicationVersion(graftlab::versionString());
            parser.process(core);  // prints and exits
            return 0;
        }
    }
    QApplication app(argc, argv);
    QApplication::setApplicationName("GraftLab");
    QApplication::setOrganizationName("GraftLab");
    QApplication::setApplicationVersion(graftlab::versionString());
    QApplication::setWindowIcon(QIcon::fromTheme("graftlab", QIcon(QCoreApplication::applicationDirPath() +
                                                                       "/../share/icons/hicolor/scalable/apps/graftlab.svg")));
    graftlab::setupLogging(false);

    parser.process(app);

    graftlab::LaunchOptions o;
    o.recipePath = parser.value(recipe);
    o.outDir = parser.value(out);
    o.autostart = parser.isSet(autostart);
    o.steps = parser.isSet(steps) ? parser.value(steps).toLongLong() : -1;
    const bool inspecting = parser.isSet(model);
    o.screenshot = inspecting ? QString() : parser.value(screenshot);
    o.tab = parser.value(tab);
    o.overlayRuns = parser.values(overlay);
    o.compareRuns = parser.values(compare);
    graftlab::logBlasAtStartup();
    graftlab::MainWindow w(o);
    if (parser.isSet(run)) w.openRun(parser.value(run));
    // A signal closes the window as the user would: a running training stops with a checkpoint first.
    graftlab::GuiStopRoute signalStop([&w](const char* name) {
        spdlog::warn("{} received: stopping the run after the current step, writing a checkpoint, then quitting", name);
        QTimer::singleShot(0, &w, [&w] {
            w.close();
            QCoreApplication::quit();
        });
    });
    w.show();
    if (inspecting) {
        auto* inspect = w.openModel(parser.value(model));
        if (parser.isSet(maskRatio) || parser.isSet(maskSeed)) {
            bool okRatio = true, okSeed = true;
            double ratio = parser.isSet(maskRatio) ? parser.value(maskRatio).toDouble(&okRatio) : 0.75;
            int seed = parser.isSet(maskSeed) ? parser.value(maskSeed).toInt(&okSeed) : 0;
            if (!okRatio || !(ratio > 0 && ratio < 1) || !okSeed || seed < 0) {
                std::fprintf(stderr, "error: --mask-ratio must be between 0 and 1 and --mask-seed a whole number >= 0\n");
                return 2;
            }
            inspect->setMask(ratio, seed);
        }
        if (parser.isSet(image)) inspect->addImages(parser.values(image));
        if (parser.isSet(tab)) inspect->showKind(parser.value(tab));
        if (parser.isSet(screenshot)) {
            // the screenshot of the Inspect window once the probes have run (or failed), then quit
            const QString shot = parser.value(screenshot);
            QObject::connect(inspect, &graftlab::InspectWindow::inspected, inspect, [inspect, shot](bool ok) {
                // the model opened: wait for the probes on the images given
                if (ok && !inspect->images().isEmpty() && !inspect->lastSnapshot("attention")) return;
                QTimer::singleShot(300, inspect, [inspect, shot, ok] {
                    bool saved = inspect->grab().save(shot);
                    if (!saved) spdlog::error("cannot write screenshot {}", shot.toStdString());
                    QApplication::exit(saved && ok ? 0 : 1);
                });
            });
        }
    }
    return app.exec();
}
