#include "CliCommon.h"

namespace graftlab::cli {

Args parseArgs(int argc, char** argv, int first, const std::set<std::string>& valued, const std::set<std::string>& flags) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            std::string key = s.substr(2), value;
            auto eq = key.find('=');
            bool inlineValue = eq != std::string::npos;
            if (inlineValue) {
                value = key.substr(eq + 1);
                key = key.substr(0, eq);
            }
            if (flags.count(key)) {
                a.options[key].push_back("1");
            } else if (valued.count(key)) {
                if (!inlineValue) {
                    if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
                    value = argv[++i];
                }
                a.options[key].push_back(value);
            } else {
                throw UsageError("unknown option --" + key);
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

int64_t parseInt(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos != v.size()) throw std::invalid_argument("trailing");
        return x;
    } catch (const std::exception&) {
        throw UsageError("--" + opt + " expects an integer, got \"" + v + "\"");
    }
}

}  // namespace graftlab::cli
