#pragma once
// Csv: a field of the CSV files GraftLab writes (tables, sweeps), as RFC 4180 and Python's csv module read it.
#include <string>

namespace graftlab {

// Unchanged unless it holds a comma, a double quote or a line break; then quoted, its quotes doubled
// ("lower=0.01,upper=1-seed0" -> "\"lower=0.01,upper=1-seed0\"").
inline std::string csvField(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace graftlab
