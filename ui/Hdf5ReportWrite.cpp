// The HDF5 files the workbench writes (ui/Hdf5Report.h): a run's metrics and
// histogram sets, in the report layout. Kept apart from the reader
// (Hdf5Report.cpp), which the fuzz target fuzz_hdf5_report compiles without
// the rest of the GUI.
#include <QDateTime>
#include <QFile>
#include <QFileInfo>

#include <string>
#include <vector>

#include "core/report/Hdf5File.h"
#include "ui/Utf8.h"
#include "ui/Hdf5Report.h"
#include "ui/MetricsReader.h"

namespace bimamba::ui {

using report::Hdf5Error;
using report::Hdf5File;

namespace {

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
