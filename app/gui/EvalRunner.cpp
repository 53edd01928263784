// Torch (through the core headers) comes before any Qt header: Qt's `slots` macro breaks ATen's ivalue_inl.h.
#include "eval/EvaluateCheckpoint.h"
#include "train/EncoderExport.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/Trainer.h"
#include "base/util/Errors.h"

#include <spdlog/spdlog.h>

#include "EvalRunner.h"

#include <QDir>
#include <QThread>

#include <atomic>

namespace graftlab {

struct EvalRunner::Impl {
    QThread* thread = nullptr;
    std::atomic<bool> cancel{false};
    std::atomic<bool> ending{false};  // its last act, `finished`, is under way: a new start waits for it
};

EvalRunner::EvalRunner(QObject* parent) : QObject(parent), d(new Impl) {}

EvalRunner::~EvalRunner() {
    cancel();
    wait(-1);
}

void EvalRunner::cancel() { d->cancel = true; }

QString EvalRunner::cancelledPrefix() { return tr("cancelled"); }

bool EvalRunner::isRunning() const { return d->thread && d->thread->isRunning(); }

bool EvalRunner::wait(int ms) {
    if (!d->thread) return true;
    return ms < 0 ? d->thread->wait() : d->thread->wait(QDeadlineTimer(ms));
}

QString EvalRunner::latestCheckpoint(const QString& runDir) {
    return QString::fromStdString(latestGoodCheckpoint(RunLayout(runDir.toStdString()).checkpoints()));
}

QString EvalRunner::exportEncoder(const QString& checkpoint, const QString& outPath, QString* summary) {
    try {
        EncoderExport e = graftlab::exportEncoder(checkpoint.toStdString(), outPath.toStdString());
        if (summary) *summary = QString::fromStdString(e.summary());
        return {};
    } catch (const c10::Error& e) {
        return QString::fromStdString(e.what_without_backtrace());
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
}

bool EvalRunner::start(const QStringList& runDirs, const QStringList& protocols, int finetuneSteps, QString* error) {
    if (isRunning() && !d->ending) {
        if (error) *error = tr("an evaluation is already running");
        return false;
    }
    if (runDirs.isEmpty() || protocols.isEmpty()) {
        if (error) *error = tr("nothing to evaluate: no run or no protocol chosen");
        return false;
    }
    if (d->thread) {
        d->thread->wait();
        delete d->thread;
        d->thread = nullptr;
    }
    d->cancel = false;
    d->ending = false;
    d->thread = QThread::create([this, runDirs, protocols, finetuneSteps] {
        QStringList failures, warnings;
        QString stopped;  // where a cancel stopped an evaluation, and what the next one does
        int total = int(runDirs.size() * protocols.size()), done = 0;
        for (const auto& dir : runDirs) {
            QString ckpt = latestCheckpoint(dir);
            if (ckpt.isEmpty()) {
                failures << tr("%1: no readable checkpoint in %1/checkpoints").arg(dir);
                done += int(protocols.size());
                continue;
            }
            for (const auto& p : protocols) {
                if (d->cancel) break;
                const QString doing = tr("Evaluating %1: %2 (%3 of %4)…").arg(QDir(dir).dirName(), p).arg(done + 1).arg(total);
                emit progress(doing, done, total);
                try {
                    EvalRequest req;
                    req.checkpoint = ckpt.toStdString();
                    req.protocols = {p.toStdString()};
                    req.finetuneSteps = finetuneSteps;
                    // Cancel and closing the window stop a fine-tuning at its next step, its state kept beside the
                    // checkpoint (where `graftlab-cli eval` keeps it): Evaluate with the same steps continues it.
                    req.finetuneStatePath = fineTuneStatePathBeside(req);
                    req.stopRequested = [this] { return d->cancel.load(); };
                    EvalReport rep = evaluateCheckpoint(req, [&](const std::string& m) {
                        spdlog::info("{}: {}", QDir(dir).dirName().toStdString(), m);
                        // a fine-tuning's steps (a tenth at a time, with its ETA), where the progress is shown
                        if (m.rfind("fine-tuning step ", 0) == 0 || m.rfind("continuing the fine-tuning", 0) == 0)
                            emit progress(doing + QStringLiteral(" ") + QString::fromStdString(m), done, total);
                    });
                    writeEvalJson(rep);
                    for (const auto& w : rep.warnings) {  // an answer that cannot be right, said where the results are shown
                        QString line = QStringLiteral("%1: %2").arg(QDir(dir).dirName(), QString::fromStdString(w));
                        if (!warnings.contains(line)) warnings << line;
                    }
                    if (const auto* r = rep.find(p.toStdString()))
                        spdlog::info("{}: {} top-1 {:.1f}%", QDir(dir).dirName().toStdString(), p.toStdString(), 100.0 * r->top1);
                    emit runEvaluated(dir);
                } catch (const EvaluationStopped& e) {
                    stopped = QStringLiteral("%1 (%2): %3").arg(QDir(dir).dirName(), p, QString::fromStdString(e.what()));
                    break;
                } catch (const c10::Error& e) {
                    failures << QStringLiteral("%1 (%2): %3").arg(dir, p, QString::fromStdString(e.what_without_backtrace()));
                } catch (const std::exception& e) {
                    failures << QStringLiteral("%1 (%2): %3").arg(dir, p, QString::fromStdString(e.what()));
                }
                ++done;
            }
            if (d->cancel) break;
        }
        if (d->cancel) {
            if (!stopped.isEmpty()) failures.prepend(stopped);
            failures.prepend(cancelledPrefix() + tr(" after %1 of %2 evaluations").arg(done).arg(total));
        }
        for (const auto& f : failures) spdlog::warn("evaluation: {}", f.toStdString());
        emit progress(QString(), done, total);
        for (const auto& w : warnings) spdlog::warn("evaluation: {}", w.toStdString());
        d->ending = true;  // (an Evaluate clicked as soon as `finished` arrives must not be told one is running)
        emit finished(failures.isEmpty(), (failures + warnings).join('\n'));
    });
    d->thread->setObjectName("graftlab-eval");
    d->thread->start();
    return true;
}

}  // namespace graftlab
