#include "ui/Hdf5Report.h"

#include "core/report/Hdf5File.h"
#include "ui/Utf8.h"

#include <QByteArray>
#include <QDataStream>
#include <QFileInfo>
#include <QSet>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace bimamba::ui {

using report::Hdf5Error;
using report::Hdf5File;

namespace {

// Lenient reads: a missing or unreadable object or attribute gives the default.
QString attrString(const Hdf5File& f, const std::string& obj, const char* name) {
    try {
        return f.has_attr(obj, name) ? qstr(f.attr_string(obj, name)) : QString();
    } catch (const Hdf5Error&) {
        return {};
    }
}

double attrDouble(const Hdf5File& f, const std::string& obj, const char* name, double def = 0) {
    try {
        return f.has_attr(obj, name) ? f.attr_double(obj, name) : def;
    } catch (const Hdf5Error&) {
        return def;
    }
}

QStringList children(const Hdf5File& f, const std::string& group) {
    QStringList out;
    try {
        for (const auto& c : f.children(group)) out << qstr(c);
    } catch (const Hdf5Error&) {
    }
    return out;
}

QStringList strings(const Hdf5File& f, const std::string& obj) {
    QStringList out;
    try {
        if (f.exists(obj))
            for (const auto& s : f.read_strings(obj)) out << qstr(s);
    } catch (const Hdf5Error&) {
    }
    return out;
}

// A count read as a double (an attribute of any numeric type, a sum of bin
// counts) as an integer: 0 when it is not finite or outside qint64's range
// (casting those is undefined behaviour).
qint64 countOf(double v) {
    return std::isfinite(v) && std::fabs(v) < 9.2e18 ? qint64(v) : 0;
}

template <class T, class Read>
QVector<T> numbers(const Hdf5File& f, const std::string& obj, Read read) {
    try {
        if (!f.exists(obj)) return {};
        const auto v = read(f, obj);
        return QVector<T>(v.begin(), v.end());
    } catch (const Hdf5Error&) {
        return {};
    }
}

}  // namespace

bool Hdf5Report::loadInProcess(const QString& p, QString* error) {
    path = p;
    histograms.clear();
    eval = {};
    generationsPrompt.clear();
    generationsLabel.clear();
    generationsText.clear();
    if (!QFileInfo::exists(p)) {
        if (error) *error = p + " does not exist";
        return false;
    }
    std::optional<Hdf5File> opened;
    try {
        opened.emplace(Hdf5File::open_read(utf8(p)));
    } catch (const Hdf5Error& e) {
        const std::string m = e.what();
        if (error) *error = m.find("not an HDF5 file") != std::string::npos ? p + " is not an HDF5 file" : qstr(m);
        return false;
    }
    const Hdf5File& f = *opened;
    auto ints = [](const Hdf5File& h, const std::string& o) { return h.read_ints(o); };
    auto doubles = [](const Hdf5File& h, const std::string& o) { return h.read_doubles(o); };
    format = attrString(f, "/", "format");
    formatVersion = countOf(attrDouble(f, "/", "format_version", 0));
    if (f.exists("/histograms")) {
        for (const QString& set : children(f, "/histograms")) {
            HistogramSet hs;
            hs.name = set;
            const std::string sp = "/histograms/" + utf8(set);
            hs.kind = attrString(f, sp, "kind");
            hs.checkpoint = attrString(f, sp, "checkpoint");
            for (const QString& layer : children(f, sp)) {
                bool ok = false;
                const int li = QString(layer).remove("layer_").toInt(&ok);
                if (!ok) continue;
                const std::string lp = sp + "/" + utf8(layer);
                for (const QString& module : children(f, lp)) {
                    const std::string mp = lp + "/" + utf8(module);
                    Histogram h;
                    h.counts = numbers<qint64>(f, mp + "/counts", ints);
                    h.edges = numbers<double>(f, mp + "/edges", doubles);
                    h.mean = attrDouble(f, mp, "mean");
                    h.std = attrDouble(f, mp, "std");
                    h.min = attrDouble(f, mp, "min");
                    h.max = attrDouble(f, mp, "max");
                    h.numel = countOf(attrDouble(f, mp, "numel"));
                    if (h.valid() && h.numel == 0) {  // no attributes: moments from the bins
                        double n = 0, s1 = 0, s2 = 0;
                        for (int b = 0; b < h.counts.size(); ++b) {
                            const double c = 0.5 * (h.edges[b] + h.edges[b + 1]);
                            n += double(h.counts[b]);
                            s1 += double(h.counts[b]) * c;
                            s2 += double(h.counts[b]) * c * c;
                        }
                        h.numel = countOf(n);
                        h.mean = n > 0 ? s1 / n : 0;
                        h.std = n > 0 ? std::sqrt(std::max(0.0, s2 / n - h.mean * h.mean)) : 0;
                        h.min = h.edges.first();
                        h.max = h.edges.last();
                    }
                    if (h.valid()) hs.layers[li][module] = h;
                }
            }
            histograms.push_back(hs);
        }
    }
    if (f.exists("/eval/table/values")) {
        eval.models = strings(f, "/eval/table/models");
        eval.columns = strings(f, "/eval/table/columns");
        const QVector<double> v = numbers<double>(f, "/eval/table/values", doubles);
        const int M = eval.models.size(), C = eval.columns.size();
        if (v.size() == M * C) {
            for (int i = 0; i < M; ++i) eval.values.push_back(v.mid(i * C, C));
        } else {
            eval = {};
        }
    }
    if (f.exists("/generations/text")) {
        generationsPrompt = strings(f, "/generations/prompt");
        generationsLabel = strings(f, "/generations/label");
        generationsText = strings(f, "/generations/text");
    }
    return true;
}

// For load()'s answer from its child (found by ADL from Qt's container operators).
static QDataStream& operator<<(QDataStream& s, const Histogram& h) {
    return s << h.counts << h.edges << h.mean << h.std << h.min << h.max << h.numel;
}
static QDataStream& operator>>(QDataStream& s, Histogram& h) {
    return s >> h.counts >> h.edges >> h.mean >> h.std >> h.min >> h.max >> h.numel;
}
static QDataStream& operator<<(QDataStream& s, const HistogramSet& h) {
    return s << h.name << h.kind << h.checkpoint << h.layers;
}
static QDataStream& operator>>(QDataStream& s, HistogramSet& h) {
    return s >> h.name >> h.kind >> h.checkpoint >> h.layers;
}
static QDataStream& operator<<(QDataStream& s, const Hdf5Report& r) {
    return s << r.histograms << r.eval.models << r.eval.columns << r.eval.values << r.generationsPrompt
             << r.generationsLabel << r.generationsText << r.format << r.formatVersion;
}
static QDataStream& operator>>(QDataStream& s, Hdf5Report& r) {
    return s >> r.histograms >> r.eval.models >> r.eval.columns >> r.eval.values >> r.generationsPrompt >>
           r.generationsLabel >> r.generationsText >> r.format >> r.formatVersion;
}

namespace {
int g_read_timeout_ms = 30000;

bool writeAll(int fd, const QByteArray& b) {
    for (qint64 off = 0; off < b.size();) {
        const ssize_t n = ::write(fd, b.constData() + off, size_t(b.size() - off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += n;
    }
    return true;
}
}  // namespace

void Hdf5Report::setReadTimeoutMs(int ms) {
    g_read_timeout_ms = ms;
}

bool Hdf5Report::load(const QString& p, QString* error) {
    int fd[2];
    if (::pipe(fd) != 0) return loadInProcess(p, error);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fd[0]), ::close(fd[1]);
        return loadInProcess(p, error);
    }
    if (pid == 0) {  // the child: read, send, leave without running the parent's exit handlers
        ::close(fd[0]);
        // A crash here ends the child quietly: not through the parent's crash
        // handlers (a test framework's, a sanitizer's), which would report the
        // parent as crashed.
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
        if (const char* t = std::getenv("BIMAMBA_TEST_HDF5_READER")) {  // tests of the isolation
            if (!std::strcmp(t, "crash")) ::raise(SIGSEGV);
            if (!std::strcmp(t, "hang")) ::pause();
        }
        Hdf5Report r;
        QString err;
        const bool ok = r.loadInProcess(p, &err);
        QByteArray bytes;
        {
            QDataStream s(&bytes, QIODevice::WriteOnly);
            s << ok << err << r;
        }
        ::_exit(writeAll(fd[1], bytes) ? 0 : 3);
    }
    ::close(fd[1]);
    QByteArray bytes;
    bool timedOut = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(g_read_timeout_ms);
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timedOut = true;
            break;
        }
        pollfd pfd{fd[0], POLLIN, 0};
        const int r = ::poll(&pfd, 1, int(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;  // timeout: the deadline check ends the loop
        char buf[65536];
        const ssize_t n = ::read(fd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // end of file: the child finished (or died)
        bytes.append(buf, int(n));
    }
    ::close(fd[0]);
    if (timedOut) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *this = Hdf5Report();
    path = p;
    if (timedOut) {
        if (error)
            *error = QString("the HDF5 library did not finish reading %1 in %2 s (a damaged file?)")
                         .arg(p)
                         .arg(g_read_timeout_ms / 1000.0);
        return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (error)
            *error = WIFSIGNALED(status)
                         ? QString("the HDF5 library crashed reading %1 (signal %2: a damaged file?)")
                               .arg(p)
                               .arg(WTERMSIG(status))
                         : QString("cannot read %1 (the reader exited with status %2)").arg(p).arg(WEXITSTATUS(status));
        return false;
    }
    QDataStream s(bytes);
    bool ok = false;
    QString err;
    s >> ok >> err >> *this;
    if (s.status() != QDataStream::Ok) {
        *this = Hdf5Report();
        path = p;
        if (error) *error = "cannot read " + p + " (incomplete answer from the reader)";
        return false;
    }
    if (!ok && error) *error = err;
    return ok;
}

QList<int> Hdf5Report::layers() const {
    QSet<int> s;
    for (const auto& h : histograms)
        for (auto it = h.layers.begin(); it != h.layers.end(); ++it) s.insert(it.key());
    QList<int> l(s.begin(), s.end());
    std::sort(l.begin(), l.end());
    return l;
}

QStringList Hdf5Report::modules() const {
    QStringList out;
    for (const auto& h : histograms)
        for (const auto& mods : h.layers)
            for (auto it = mods.begin(); it != mods.end(); ++it)
                if (!out.contains(it.key())) out << it.key();
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace bimamba::ui
