// The command table and option parser of app/cli/Command.h (torch-free: the
// `bimamba` CLI and the `bimamba-chat` engine process both link it).
#include "app/cli/Command.h"

#include <algorithm>
#include <stdexcept>

namespace bimamba::cli {

std::vector<CommandInfo>& command_table() {
    static std::vector<CommandInfo> table;
    return table;
}

Options::Options(const Args& args, const std::vector<std::string>& flags) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) == 0 && a.size() > 2) {
            std::string key = a.substr(2), val;
            auto eq = key.find('=');
            if (eq != std::string::npos) {
                val = key.substr(eq + 1);
                key = key.substr(0, eq);
            } else if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
                val = "1";
            } else if (i + 1 < args.size()) {
                val = args[++i];
            } else {
                throw std::invalid_argument("option --" + key + " needs a value");
            }
            kv_.emplace_back(key, val);
        } else {
            positional_.push_back(a);
        }
    }
}

bool Options::has(const std::string& key) const {
    return std::any_of(kv_.begin(), kv_.end(), [&](auto& p) { return p.first == key; });
}

std::string Options::get(const std::string& key, const std::string& def) const {
    for (auto it = kv_.rbegin(); it != kv_.rend(); ++it)
        if (it->first == key) return it->second;
    return def;
}

std::string Options::require(const std::string& key) const {
    if (!has(key)) throw std::invalid_argument("missing required option --" + key);
    return get(key);
}

long long Options::get_int(const std::string& key, long long def) const {
    if (!has(key)) return def;
    try {
        size_t pos = 0;
        long long v = std::stoll(get(key), &pos);
        if (pos != get(key).size()) throw std::invalid_argument("");
        return v;
    } catch (...) {
        throw std::invalid_argument("option --" + key + " expects an integer, got '" + get(key) + "'");
    }
}

double Options::get_double(const std::string& key, double def) const {
    if (!has(key)) return def;
    try {
        size_t pos = 0;
        double v = std::stod(get(key), &pos);
        if (pos != get(key).size()) throw std::invalid_argument("");
        return v;
    } catch (...) {
        throw std::invalid_argument("option --" + key + " expects a number, got '" + get(key) + "'");
    }
}

void Options::check_known(const std::vector<std::string>& known) const {
    for (auto& [k, v] : kv_)
        if (std::find(known.begin(), known.end(), k) == known.end())
            throw std::invalid_argument("unknown option --" + k);
}

}  // namespace bimamba::cli
