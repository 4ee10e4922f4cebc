#include "core/eval/Jsonl.h"

#include "core/data/DecompressingReader.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bimamba::eval {

using data::read_decompressed;

std::vector<nlohmann::json> read_jsonl(const std::string& path, bool skip_incomplete_tail) {
    const std::string data = read_decompressed(path);  // plain, or .xz/.gz/.zst
    std::vector<nlohmann::json> out;
    size_t pos = 0;
    int line_no = 0;
    while (pos < data.size()) {
        ++line_no;
        const size_t nl = data.find('\n', pos);
        const bool complete = nl != std::string::npos;
        if (!complete && skip_incomplete_tail) break;
        std::string line = data.substr(pos, complete ? nl - pos : std::string::npos);
        pos = complete ? nl + 1 : data.size();
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        try {
            out.push_back(nlohmann::json::parse(line));
        } catch (const nlohmann::json::parse_error& e) {
            throw std::runtime_error(path + ":" + std::to_string(line_no) + ": invalid JSON" +
                                     (complete ? "" : " (truncated last line?)") + ": " + e.what());
        }
    }
    return out;
}

}  // namespace bimamba::eval
