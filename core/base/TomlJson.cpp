#include "core/base/TomlJson.h"

#include <toml++/toml.h>

#include <sstream>
#include <stdexcept>

namespace bimamba {

namespace {

nlohmann::json to_json(const toml::node& n, const std::string& path, const std::string& source) {
    if (auto t = n.as_table()) {
        nlohmann::json o = nlohmann::json::object();
        for (auto&& [k, v] : *t) {
            std::string key(k.str());
            o[key] = to_json(v, path.empty() ? key : path + "." + key, source);
        }
        return o;
    }
    if (auto a = n.as_array()) {
        nlohmann::json arr = nlohmann::json::array();
        for (auto& v : *a) arr.push_back(to_json(v, path, source));
        return arr;
    }
    if (auto s = n.value_exact<std::string>()) return *s;
    if (auto b = n.value_exact<bool>()) return *b;
    if (auto i = n.value_exact<int64_t>()) return *i;
    if (auto d = n.value_exact<double>()) return *d;
    throw std::invalid_argument(source + ": field '" + path + "' has an unsupported TOML type (dates and times are not used)");
}

}  // namespace

nlohmann::json parse_toml_as_json(const std::string& text, const std::string& source) {
    toml::table tbl;
    try {
        tbl = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        std::ostringstream ss;
        ss << "cannot parse TOML " << source << " (line " << e.source().begin.line << ", column "
           << e.source().begin.column << "): " << e.description();
        throw std::invalid_argument(ss.str());
    }
    return to_json(tbl, "", source);
}

}  // namespace bimamba
