#include "ui/Hdf5Report.h"

#include "core/report/Hdf5File.h"
#include "ui/MetricsReader.h"

#include <QDateTime>
#include <QFile>
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

std::string utf8(const QString& s) {
    return s.toUtf8().toStdString();
}
QString qstr(const std::string& s) {
    return QString::fromUtf8(s.data(), int(s.size()));
}

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

void writeRootAttrs(Hdf5File& f) {
    f.set_attr("/", "format", "bimamba-report");
    f.set_attr("/", "format_version", int64_t(1));
    f.set_attr("/", "created", utf8(QDateTime::currentDateTimeUtc().toString(Qt::ISODate)));
}

// Writes `path` through `write` into path.tmp, then renames it over `path`.
template <class Write>
bool writeAtomically(const QString& path, QString* error, Write write) {
    const QString tmp = path + ".tmp";
    try {
        Hdf5File f = Hdf5File::create(utf8(tmp));
        writeRootAttrs(f);
        write(f);
        f.close();
    } catch (const Hdf5Error& e) {
        if (error) *error = "HDF5: " + qstr(e.what());
        QFile::remove(tmp);
        return false;
    }
    QFile::remove(path);
    if (!QFile::rename(tmp, path)) {
        if (error) *error = "could not move " + tmp + " to " + path;
        return false;
    }
    return true;
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
        if (error)
            *error = m.find("not an HDF5 file") != std::string::npos ? p + " is not an HDF5 file" : "cannot open " + p;
        return false;
    }
    const Hdf5File& f = *opened;
    auto ints = [](const Hdf5File& h, const std::string& o) { return h.read_ints(o); };
    auto doubles = [](const Hdf5File& h, const std::string& o) { return h.read_doubles(o); };
    format = attrString(f, "/", "format");
    formatVersion = qint64(attrDouble(f, "/", "format_version", 0));
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
                    h.numel = qint64(attrDouble(f, mp, "numel"));
                    if (h.valid() && h.numel == 0) {  // no attributes: moments from the bins
                        double n = 0, s1 = 0, s2 = 0;
                        for (int b = 0; b < h.counts.size(); ++b) {
                            const double c = 0.5 * (h.edges[b] + h.edges[b + 1]);
                            n += double(h.counts[b]);
                            s1 += double(h.counts[b]) * c;
                            s2 += double(h.counts[b]) * c * c;
                        }
                        h.numel = qint64(n);
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

bool writeMetricsHdf5(const MetricsReader& m, const QString& runDir, const QString& path, QString* error) {
    return writeAtomically(path, error, [&](Hdf5File& f) {
        f.create_group("/config");
        f.set_attr("/config", "run_dir", utf8(QFileInfo(runDir).absoluteFilePath()));
        f.create_group("/metrics");
        f.set_attr("/metrics", "source", utf8(m.path()));
        for (const char* type : {"train", "val"}) {
            const MetricsTable& t = m.table(type);
            if (t.rows == 0) continue;
            f.create_group(std::string("/metrics/") + type);
            for (auto it = t.columns.begin(); it != t.columns.end(); ++it)
                f.write(std::string("/metrics/") + type + "/" + utf8(it.key()),
                        std::vector<double>(it->begin(), it->end()));
        }
    });
}

bool writeHistogramsHdf5(const QVector<HistogramSet>& sets, const QString& path, QString* error) {
    return writeAtomically(path, error, [&](Hdf5File& f) {
        f.create_group("/histograms");
        for (const auto& s : sets) {
            const std::string sp = "/histograms/" + utf8(s.name);
            f.create_group(sp);
            f.set_attr(sp, "kind", utf8(s.kind));
            f.set_attr(sp, "checkpoint", utf8(s.checkpoint));
            for (auto l = s.layers.begin(); l != s.layers.end(); ++l) {
                const std::string lp = sp + "/layer_" + std::to_string(l.key());
                f.create_group(lp);
                for (auto m = l->begin(); m != l->end(); ++m) {
                    const std::string mp = lp + "/" + utf8(m.key());
                    f.create_group(mp);
                    f.write(mp + "/counts", std::vector<int64_t>(m->counts.begin(), m->counts.end()));
                    f.write(mp + "/edges", std::vector<double>(m->edges.begin(), m->edges.end()));
                    f.set_attr(mp, "mean", m->mean);
                    f.set_attr(mp, "std", m->std);
                    f.set_attr(mp, "min", m->min);
                    f.set_attr(mp, "max", m->max);
                    f.set_attr(mp, "numel", int64_t(m->numel));
                }
            }
        }
    });
}

}  // namespace bimamba::ui
