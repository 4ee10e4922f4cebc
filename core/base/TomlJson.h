#pragma once
// TOML documents as JSON values, so that one validator serves both formats
// (training configs, study files). Dates and times are refused: no file of
// ours uses them.
#include <nlohmann/json.hpp>
#include <string>

namespace bimamba::base {

// Parses TOML text; throws std::invalid_argument naming `source`, the line and
// the column of a syntax error, or the dotted path of an unsupported value.
nlohmann::json parse_toml_as_json(const std::string& text, const std::string& source);

}  // namespace bimamba::base
