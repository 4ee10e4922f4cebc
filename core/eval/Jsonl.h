#pragma once
// JSON-lines reading with errors that name the file and line.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bimamba::eval {

// Every non-blank line must be a JSON value. Errors read "PATH:LINE: problem".
// With `skip_incomplete_tail`, a last line without '\n' (a file still being
// appended to, e.g. metrics.jsonl) is ignored instead of parsed.
std::vector<nlohmann::json> read_jsonl(const std::string& path, bool skip_incomplete_tail = false);

}  // namespace bimamba::eval
