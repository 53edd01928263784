// MetricsRow (base/run/Observer.h) as JSON: the rows of metrics.jsonl. Torch-free, so the widgets read rows with the
// same code the trainer writes them with.
#include "base/run/Observer.h"

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

std::optional<MetricsRow> MetricsRow::parseLine(std::string_view line, std::string* why) {
    auto fail = [&](const char* reason) -> std::optional<MetricsRow> {
        if (why) *why = reason;
        return std::nullopt;
    };
    auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded()) return fail("not JSON");
    if (!j.is_object()) return fail("not a JSON object");
    auto whole = [&](const char* key) { return !j.contains(key) || j[key].is_number_integer() || j[key].is_number_unsigned(); };
    if (!j.contains("step")) return fail("no \"step\"");
    if (!whole("step")) return fail("\"step\" is not a whole number");
    if (!whole("epoch")) return fail("\"epoch\" is not a whole number");
    if (!whole("stage")) return fail("\"stage\" is not a whole number");
    if (j["step"].get<int64_t>() < 0) return fail("\"step\" is negative");
    try {
        return fromJson(j);
    } catch (const std::exception&) {
        return fail("a field of the wrong type");
    }
}

std::vector<MetricsRow> MetricsRow::readFile(const std::string& path, std::vector<std::string>* problems) {
    std::vector<std::string> lines;
    {
        std::ifstream in(path, std::ios::binary);
        for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    }
    size_t lastFilled = lines.size();
    while (lastFilled > 0 && lines[lastFilled - 1].empty()) --lastFilled;
    std::vector<MetricsRow> rows;
    rows.reserve(lines.size());
    std::string why;
    for (size_t n = 0; n < lines.size(); ++n) {
        if (lines[n].empty()) continue;
        if (auto r = parseLine(lines[n], &why)) {
            rows.push_back(std::move(*r));
        } else if (problems && !(n + 1 == lastFilled && why == "not JSON")) {  // the torn last line of a killed run is no damage
            problems->push_back(path + ":" + std::to_string(n + 1) + ": " + why + ", row skipped");
        }
    }
    return rows;
}

double trainingSeconds(const std::vector<MetricsRow>& rows, double imagesPerStep) {
    double seconds = 0;
    int64_t previous = 0;
    for (const auto& r : rows) {
        const double ips = r.value("images_per_s", 0.0);
        if (ips > 0 && r.step > previous) seconds += double(r.step - previous) * imagesPerStep / ips;
        previous = r.step;
    }
    return seconds;
}

}  // namespace graftlab
