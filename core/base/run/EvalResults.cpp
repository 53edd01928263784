#include "base/run/EvalResults.h"
#include "base/recipe/Recipe.h"
#include "base/run/RunLayout.h"
#include "base/util/AtomicFile.h"

#include <filesystem>
#include <fstream>

namespace graftlab {
namespace fs = std::filesystem;

nlohmann::json EvalReport::toJson() const {
    nlohmann::json j = {{"checkpoint", checkpoint}, {"method", method}, {"step", step}, {"dataset", dataset},
                        {"pooling", pooling}, {"train_images", trainImages}, {"test_images", testImages}};
    for (const auto& r : results) j["protocols"][r.protocol] = {{"top1", r.top1}, {"details", r.details}};
    if (!warnings.empty()) j["warnings"] = warnings;
    return j;
}

EvalReport EvalReport::fromJson(const nlohmann::json& j) {
    EvalReport r;
    r.checkpoint = j.at("checkpoint").get<std::string>();
    r.method = j.at("method").get<std::string>();
    r.step = j.at("step").get<int64_t>();
    r.dataset = j.at("dataset").get<std::string>();
    r.pooling = j.at("pooling").get<std::string>();
    r.trainImages = j.at("train_images").get<int64_t>();
    r.testImages = j.at("test_images").get<int64_t>();
    if (j.contains("warnings") && j["warnings"].is_array())
        for (const auto& w : j["warnings"])
            if (w.is_string()) r.warnings.push_back(w.get<std::string>());
    if (j.contains("protocols"))
        for (const std::string& p : kProtocols)
            if (j["protocols"].contains(p))
                r.results.push_back({p, j["protocols"][p].at("top1").get<double>(), j["protocols"][p].value("details", nlohmann::json())});
    return r;
}

const ProtocolResult* EvalReport::find(const std::string& protocol) const {
    for (const auto& r : results)
        if (r.protocol == protocol) return &r;
    return nullptr;
}

const std::pair<std::string, EvalReport>* EvalFile::newest() const {
    const std::pair<std::string, EvalReport>* best = nullptr;
    for (const auto& e : entries)
        if (!e.second.results.empty() && (!best || e.second.step >= best->second.step)) best = &e;
    return best;
}

namespace {

// A field of an entry: its value when of the expected kind, else the default (and a problem when present).
template <class T>
T field(const nlohmann::json& e, const char* key, T fallback, bool& wrong) {
    if (!e.contains(key)) return fallback;
    const auto& v = e[key];
    if constexpr (std::is_same_v<T, std::string>) {
        if (v.is_string()) return v.get<std::string>();
    } else {
        if (v.is_number_integer() || v.is_number_unsigned()) return v.get<T>();
    }
    wrong = true;
    return fallback;
}

}  // namespace

EvalFile EvalFile::read(const std::string& path) {
    EvalFile f;
    std::ifstream in(path, std::ios::binary);
    if (!in) return f;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        f.problems.push_back(path + ": " + (j.is_discarded() ? "not JSON" : "not a JSON object") + ", evaluations left out");
        return f;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string where = path + ": entry \"" + it.key() + "\": ";
        if (!it->is_object()) {
            f.problems.push_back(where + "not a JSON object, left out");
            continue;
        }
        const auto& e = *it;
        bool wrong = false;
        EvalReport r;
        r.checkpoint = field<std::string>(e, "checkpoint", it.key(), wrong);
        r.method = field<std::string>(e, "method", "", wrong);
        r.dataset = field<std::string>(e, "dataset", "", wrong);
        r.pooling = field<std::string>(e, "pooling", "", wrong);
        r.step = field<int64_t>(e, "step", -1, wrong);
        r.trainImages = field<int64_t>(e, "train_images", 0, wrong);
        r.testImages = field<int64_t>(e, "test_images", 0, wrong);
        if (e.contains("warnings") && e["warnings"].is_array())
            for (const auto& w : e["warnings"])
                if (w.is_string()) r.warnings.push_back(w.get<std::string>());
        if (e.contains("protocols") && e["protocols"].is_object()) {
            for (const std::string& p : kProtocols) {
                if (!e["protocols"].contains(p)) continue;
                const auto& pr = e["protocols"][p];
                if (!pr.is_object() || !pr.contains("top1") || !pr["top1"].is_number()) {
                    f.problems.push_back(where + "protocol " + p + " has no numeric top1, left out");
                    continue;
                }
                r.results.push_back({p, pr["top1"].get<double>(), pr.value("details", nlohmann::json())});
            }
        } else if (e.contains("protocols")) {
            wrong = true;
        }
        if (wrong) f.problems.push_back(where + "fields of the wrong type (read as missing)");
        f.entries.emplace_back(it.key(), std::move(r));
    }
    return f;
}

std::string writeEvalJson(const EvalReport& report) {
    const std::string path = RunLayout::evalJsonBeside(report.checkpoint);
    nlohmann::json all = nlohmann::json::object();
    {
        std::ifstream in(path, std::ios::binary);
        if (in) {
            const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            all = nlohmann::json::parse(text, nullptr, false);
            if (all.is_discarded() || !all.is_object()) all = nlohmann::json::object();  // unreadable: replaced
        }
    }
    auto& entry = all[fs::path(report.checkpoint).filename().string()];
    if (!entry.is_object()) entry = nlohmann::json::object();
    const nlohmann::json j = report.toJson();
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "protocols") {
            if (!entry["protocols"].is_object()) entry["protocols"] = nlohmann::json::object();
            for (auto p = it->begin(); p != it->end(); ++p) entry["protocols"][p.key()] = *p;
        } else {
            entry[it.key()] = *it;
        }
    }
    if (report.warnings.empty()) entry.erase("warnings");  // a later evaluation without them clears them
    writeFileAtomically(path, all.dump(2) + "\n");
    return path;
}

}  // namespace graftlab
