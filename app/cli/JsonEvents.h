#pragma once
// Machine-readable events of `bimamba chat --json`, `bimamba generate --stream
// --json` and `bimamba bench cpu --json` (docs/cli-events.md): one JSON object
// per line on stdout, flushed at once, {"event":"NAME", ...fields}; with
// --json stdout carries nothing else (human text goes to stderr or is left
// out). Field names follow the training metrics (metrics.jsonl): snake_case,
// the unit in the name (tok_per_s, rss_mb, joules_per_token).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace bimamba::cli {

using EventFields = nlohmann::ordered_json;

// Writes {"event": name, fields...} as one line on stdout and flushes.
// Invalid UTF-8 (a piece of text cut inside a character) is replaced, so
// every line parses.
inline void emit_event(const std::string& name, const EventFields& fields = EventFields::object()) {
    EventFields j;
    j["event"] = name;
    for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
    const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

}  // namespace bimamba::cli
