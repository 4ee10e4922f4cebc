#include "ui/Hdf5Report.h"

#include "core/report/Hdf5File.h"
#include "ui/Utf8.h"

#include <QFileInfo>
#include <QSet>

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

bool Hdf5Report::load(const QString& p, QString* error) {
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
