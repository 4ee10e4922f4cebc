#pragma once
// Small text helpers shared by the eval / quantize / generate / report commands.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace bimamba::eval {

// "\n", "\t", "\\" and "\," as typed on a shell command line.
inline std::string unescape(const std::string& s) {
    std::string o;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            const char c = s[++i];
            o += c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
            o += s[i];
        }
    }
    return o;
}

// Splits on `sep` except where escaped with a backslash (the escape is kept for unescape()).
inline std::vector<std::string> split_list(const std::string& s, char sep = ',') {
    std::vector<std::string> out;
    std::string cur;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            cur += s[i];
            cur += s[++i];
        } else if (s[i] == sep) {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += s[i];
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

// "label=path" -> {label, path}; a bare path has an empty label.
inline std::pair<std::string, std::string> label_and_path(const std::string& s) {
    const auto eq = s.find('=');
    if (eq == std::string::npos) return {"", s};
    return {s.substr(0, eq), s.substr(eq + 1)};
}

// A one-line progress bar on stderr: "what [#####.....] 12/40  3.1 s".
class ProgressBar {
public:
    ProgressBar(std::string what, bool enabled)
        : what_(std::move(what)), on_(enabled), t0_(std::chrono::steady_clock::now()) {}
    void update(long long done, long long total) {
        if (!on_ || total <= 0) return;
        const int width = 30, fill = int(double(done) / total * width);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        std::fprintf(stderr, "\r%s [%s%s] %lld/%lld  %.1f s", what_.c_str(), std::string(fill, '#').c_str(),
                     std::string(width - fill, '.').c_str(), done, total, s);
        if (done >= total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    }

private:
    std::string what_;
    bool on_;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace bimamba::eval
