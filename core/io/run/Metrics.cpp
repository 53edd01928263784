// MetricsRow (run/Observer.h) as JSON: the rows of metrics.jsonl. Torch-free, so the widgets read rows with the
// same code the trainer writes them with.
#include "run/Observer.h"

#include <cmath>
#include <fstream>

namespace graftlab {

double MetricsRow::value(const std::string& key, double fallback) const {
    for (const auto& [k, v] : values)
        if (k == key) return v;
    return fallback;
}

nlohmann::json MetricsRow::toJson() const {
    nlohmann::json j;
    j["step"] = step;
    j["epoch"] = epoch;
    j["stage"] = stage;
    for (const auto& [k, v] : values) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    return j;
}

MetricsRow MetricsRow::fromJson(const nlohmann::json& j) {
    MetricsRow r;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "step") r.step = it->get<int64_t>();
        else if (it.key() == "epoch") r.epoch = it->get<int64_t>();
        else if (it.key() == "stage") r.stage = it->get<int>();
        else if (it->is_number()) r.values.emplace_back(it.key(), it->get<double>());
        else if (it->is_null()) r.values.emplace_back(it.key(), std::nan(""));
    }
    return r;
}

std::optional<MetricsRow> MetricsRow::parseLine(std::string_view line) {
    auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        return fromJson(j);
    } catch (const std::exception&) {
        return std::nullopt;  // a field of the wrong type
    }
}

std::vector<MetricsRow> MetricsRow::readFile(const std::string& path) {
    std::vector<MetricsRow> rows;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (auto r = parseLine(line)) rows.push_back(std::move(*r));  // a torn last line of a killed run is skipped
    }
    return rows;
}

}  // namespace graftlab
