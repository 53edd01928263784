// Torch (through the core headers) comes before any Qt header: Qt's `slots` macro breaks ATen's ivalue_inl.h.
#include "data/Dataset.h"
#include "import/ImportModel.h"
#include "probes/Probes.h"
#include "base/run/RunLayout.h"
#include "train/Checkpoint.h"
#include "train/LoadedModel.h"
#include "base/util/Errors.h"
#include "base/util/Sha256.h"
#include "base/import/TorchFile.h"

#include <spdlog/spdlog.h>

#include "InspectSession.h"

#include <QDir>
#include <QFileInfo>
#include <QMetaObject>
#include <QPointer>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

std::string describe(const std::exception& e) {
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
    return e.what();
}

// An earlier import of the same bytes under `root`, or a new folder name for this file.
std::string importTarget(const std::string& root, const std::string& file, bool& reuse) {
    auto bytes = FileBytes::map(file);
    Sha256 h;
    constexpr size_t chunk = size_t(8) << 20;
    for (size_t at = 0; at < bytes->size(); at += chunk) {
        size_t n = std::min(chunk, bytes->size() - at);
        h.update(bytes->data() + at, n);
        bytes->release(bytes->data() + at, n);
    }
    const std::string sha = h.hex();
    std::string stem = fs::path(file).filename().string();
    for (char& c : stem)
        if (c == '.') c = '_';
    std::error_code ec;
    for (int i = 1;; ++i) {
        fs::path dir = fs::path(root) / (i == 1 ? stem : stem + "-" + std::to_string(i));
        if (!fs::exists(dir, ec)) {
            reuse = false;
            return dir.string();
        }
        std::ifstream in(dir / "import.json");
        auto j = nlohmann::json::parse(in, nullptr, false);
        if (!j.is_discarded() && j.value("sha256", std::string()) == sha && !latestGoodCheckpoint((dir / "checkpoints").string()).empty()) {
            reuse = true;
            return dir.string();
        }
    }
}

}  // namespace

struct InspectSession::Impl {
    std::thread thread;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;
    std::optional<std::function<void()>> pendingInspect;  // the newest request; an older waiting one is dropped
    bool stop = false;
    int running = 0;
    QString modelsRoot = QDir::homePath() + "/GraftLab/models";
    InspectModelInfo info;  // GUI thread's copy
    // worker thread's state
    std::optional<LoadedModel> model;
};

InspectSession::InspectSession(QObject* parent) : QObject(parent), d(new Impl) {
    qRegisterMetaType<graftlab::InspectModelInfo>("graftlab::InspectModelInfo");
    qRegisterMetaType<graftlab::Snapshot>("graftlab::Snapshot");
    qRegisterMetaType<QVector<graftlab::Snapshot>>("QVector<graftlab::Snapshot>");
    d->thread = std::thread([this] {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(d->mutex);
                d->wake.wait(lock, [this] { return d->stop || !d->jobs.empty() || d->pendingInspect; });
                if (d->stop) return;
                if (!d->jobs.empty()) {
                    job = std::move(d->jobs.front());
                    d->jobs.pop_front();
                } else {
                    job = std::move(*d->pendingInspect);
                    d->pendingInspect.reset();
                }
                ++d->running;
            }
            job();
            std::lock_guard<std::mutex> lock(d->mutex);
            --d->running;
            d->wake.notify_all();
        }
    });
}

InspectSession::~InspectSession() {
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        d->stop = true;
        d->jobs.clear();
        d->pendingInspect.reset();
    }
    d->wake.notify_all();
    if (d->thread.joinable()) d->thread.join();
}

void InspectSession::setModelsRoot(const QString& dir) { d->modelsRoot = dir; }
QString InspectSession::modelsRoot() const { return d->modelsRoot; }
const InspectModelInfo& InspectSession::model() const { return d->info; }

bool InspectSession::busy() const {
    std::lock_guard<std::mutex> lock(d->mutex);
    return d->running > 0 || !d->jobs.empty() || d->pendingInspect.has_value();
}

bool InspectSession::wait(int ms) {
    std::unique_lock<std::mutex> lock(d->mutex);
    auto idle = [this] { return d->running == 0 && d->jobs.empty() && !d->pendingInspect; };
    if (ms < 0) {
        d->wake.wait(lock, idle);
        return true;
    }
    return d->wake.wait_for(lock, std::chrono::milliseconds(ms), idle);
}

void InspectSession::openModel(const QString& fileOrDir) {
    const std::string path = fileOrDir.toStdString();
    const std::string root = d->modelsRoot.toStdString();
    QPointer<InspectSession> self(this);
    auto post = [self](std::function<void(InspectSession*)> f) {
        QMetaObject::invokeMethod(
            self.data(), [self, f] { if (self) f(self.data()); }, Qt::QueuedConnection);
    };
    std::lock_guard<std::mutex> lock(d->mutex);
    d->jobs.push_back([this, path, root, post] {
        try {
            InspectModelInfo info;
            std::string checkpoint;
            std::error_code ec;
            if (fs::is_directory(path, ec)) {
                checkpoint = resolveCheckpoint(path);
            } else {
                bool isGraftLab = false;
                try {
                    (void)readCheckpointMeta(path);
                    isGraftLab = true;
                } catch (const FileError&) {
                }
                if (isGraftLab) {
                    checkpoint = path;
                } else {
                    post([path](InspectSession* s) { emit s->working(tr("Importing %1…").arg(QString::fromStdString(path))); });
                    fs::create_directories(root, ec);
                    bool reuse = false;
                    std::string target = importTarget(root, path, reuse);
                    if (!reuse) importModel(path, target, {});
                    checkpoint = resolveCheckpoint(target);
                }
            }
            post([path](InspectSession* s) { emit s->working(tr("Loading %1…").arg(QString::fromStdString(path))); });
            d->model.reset();
            d->model = loadCheckpointModel(checkpoint);
            const LoadedModel& m = *d->model;
            info.checkpoint = QString::fromStdString(checkpoint);
            fs::path dir = fs::path(checkpoint).parent_path();
            if (dir.filename() == "checkpoints") dir = dir.parent_path();
            info.modelDir = QString::fromStdString(dir.string());
            info.imageSize = m.recipe.data.imageSize;
            info.channels = m.meta.channels;
            info.heads = m.recipe.model.numHeads;
            info.depth = m.recipe.model.depth;
            ObjectiveHeads heads = m.objective->heads();
            info.hasDecoder = bool(heads.mimDecoder);
            info.hasClHeads = bool(heads.clHeads);
            info.imported = m.meta.imported.is_object();
            if (info.imported) {
                for (const auto& l : m.meta.imported.value("report", nlohmann::json::array())) info.summary << QString::fromStdString(l.get<std::string>());
                info.summary.prepend(QString::fromStdString("source: " + m.meta.imported.value("source", std::string()) + "  (sha256 " +
                                                            m.meta.imported.value("sha256", std::string()).substr(0, 12) + "…)"));
            } else {
                info.summary << QString::fromStdString("GraftLab checkpoint: " + m.recipe.name + ", " + m.method + ", step " + std::to_string(m.meta.step));
                char buf[256];
                std::snprintf(buf, sizeof buf, "ViT: width %d, depth %d, patch %d, %d channels, %d px, %d heads", m.recipe.model.embedDim,
                              m.recipe.model.depth, m.recipe.model.patchSize, m.meta.channels, m.recipe.data.imageSize, m.recipe.model.numHeads);
                info.summary << buf;
            }
            post([info](InspectSession* s) {
                s->d->info = info;
                emit s->modelOpened(info);
            });
        } catch (const std::exception& e) {
            std::string msg = describe(e);
            post([msg](InspectSession* s) { emit s->failed(QString::fromStdString(msg)); });
        }
    });
    d->wake.notify_all();
}

void InspectSession::inspect(const QStringList& images, double maskRatio, quint64 maskSeed) {
    std::vector<std::string> files;
    for (const auto& f : images) files.push_back(f.toStdString());
    QPointer<InspectSession> self(this);
    auto post = [self](std::function<void(InspectSession*)> f) {
        QMetaObject::invokeMethod(
            self.data(), [self, f] { if (self) f(self.data()); }, Qt::QueuedConnection);
    };
    std::lock_guard<std::mutex> lock(d->mutex);
    d->pendingInspect = [this, files, maskRatio, maskSeed, post] {
        try {
            if (!d->model) throw std::runtime_error("open a model first (File > Open model…)");
            if (files.empty()) throw std::runtime_error("add an image first (Add images…, or drop image files on the window)");
            post([](InspectSession* s) { emit s->working(tr("Running the probes…")); });
            LoadedModel& m = *d->model;
            Recipe recipe = m.recipe;
            recipe.probes.samples = int(files.size());
            recipe.probes.gradcosSamples = int(files.size());
            Dataset data = loadImageFiles(files, recipe.data.imageSize, m.meta.channels);
            data.mean = m.meta.mean;
            data.std = m.meta.std;
            ProbeRunner runner(recipe, data, torch::kCPU);
            runner.setReconstructionMask(maskRatio, maskSeed);
            QVector<Snapshot> out;
            nlohmann::json names = nlohmann::json::array();
            for (const auto& f : files) names.push_back(fs::path(f).filename().string());
            const int64_t step = m.meta.step;
            for (int k = 0; k < 4; ++k) {
                Snapshot s = k == 0   ? runner.reconstruction(step, 0, *m.objective, nullptr, "")
                             : k == 1 ? runner.attention(step, 0, *m.objective)
                             : k == 2 ? runner.similarity(step, 0, *m.objective)
                                      : runner.gradcos(step, 0, *m.objective, nullptr, "");
                s.meta["image_names"] = names;
                out.push_back(std::move(s));
            }
            post([out](InspectSession* s) { emit s->snapshotsReady(out); });
        } catch (const std::exception& e) {
            std::string msg = describe(e);
            post([msg](InspectSession* s) { emit s->failed(QString::fromStdString(msg)); });
        }
    };
    d->wake.notify_all();
}

}  // namespace graftlab
