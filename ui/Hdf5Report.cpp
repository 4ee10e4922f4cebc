#include "ui/Hdf5Report.h"

#include "ui/MetricsReader.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSet>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace bimamba::ui {

namespace {

struct Silence {  // HDF5 prints error stacks to stderr by default
    H5E_auto2_t fn = nullptr;
    void* data = nullptr;
    Silence() {
        H5Eget_auto2(H5E_DEFAULT, &fn, &data);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~Silence() { H5Eset_auto2(H5E_DEFAULT, fn, data); }
};

bool exists(hid_t loc, const char* path) { return H5Lexists(loc, path, H5P_DEFAULT) > 0; }

QStringList children(hid_t loc, const char* path) {
    QStringList out;
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) return out;
    H5G_info_t info;
    if (H5Gget_info(g, &info) >= 0) {
        for (hsize_t i = 0; i < info.nlinks; ++i) {
            const ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
            if (n <= 0) continue;
            std::vector<char> buf(size_t(n) + 1);
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf.data(), buf.size(), H5P_DEFAULT);
            out << QString::fromUtf8(buf.data());
        }
    }
    H5Gclose(g);
    return out;
}

template <typename T>
QVector<T> readNumeric(hid_t loc, const QString& path, hid_t memType, QVector<hsize_t>* dimsOut = nullptr) {
    QVector<T> out;
    hid_t d = H5Dopen2(loc, path.toUtf8().constData(), H5P_DEFAULT);
    if (d < 0) return out;
    hid_t s = H5Dget_space(d);
    const int nd = H5Sget_simple_extent_ndims(s);
    std::vector<hsize_t> dims(std::max(nd, 1), 1);
    if (nd > 0) H5Sget_simple_extent_dims(s, dims.data(), nullptr);
    hsize_t n = 1;
    for (int i = 0; i < nd; ++i) n *= dims[i];
    out.resize(int(n));
    if (n > 0 && H5Dread(d, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) out.clear();
    if (dimsOut) {
        dimsOut->clear();
        for (int i = 0; i < nd; ++i) dimsOut->append(dims[i]);
    }
    H5Sclose(s);
    H5Dclose(d);
    return out;
}

QStringList readStrings(hid_t loc, const QString& path) {
    QStringList out;
    hid_t d = H5Dopen2(loc, path.toUtf8().constData(), H5P_DEFAULT);
    if (d < 0) return out;
    hid_t ft = H5Dget_type(d);
    hid_t s = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(s);
    if (H5Tget_class(ft) == H5T_STRING && n > 0) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft));  // HDF5 converts no character sets
            std::vector<char*> buf(size_t(n), nullptr);
            if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0) {
                for (char* p : buf) out << QString::fromUtf8(p ? p : "");
                H5Dvlen_reclaim(mt, s, H5P_DEFAULT, buf.data());
            }
            H5Tclose(mt);
        } else {
            const size_t sz = H5Tget_size(ft);
            std::vector<char> buf(sz * size_t(n) + 1, 0);
            hid_t mt = H5Tcopy(ft);
            if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0)
                for (hssize_t i = 0; i < n; ++i) out << QString::fromUtf8(buf.data() + i * sz, int(strnlen(buf.data() + i * sz, sz)));
            H5Tclose(mt);
        }
    }
    H5Sclose(s);
    H5Tclose(ft);
    H5Dclose(d);
    return out;
}

QString readStringAttr(hid_t obj, const char* name) {
    if (H5Aexists(obj, name) <= 0) return {};
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    QString out;
    if (H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft));
            char* p = nullptr;
            if (H5Aread(a, mt, &p) >= 0 && p) {
                out = QString::fromUtf8(p);
                H5free_memory(p);
            }
            H5Tclose(mt);
        } else {
            const size_t sz = H5Tget_size(ft);
            std::vector<char> buf(sz + 1, 0);
            if (H5Aread(a, ft, buf.data()) >= 0) out = QString::fromUtf8(buf.data());
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

double readDoubleAttr(hid_t obj, const char* name, double def = 0) {
    if (H5Aexists(obj, name) <= 0) return def;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    double v = def;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = def;
    H5Aclose(a);
    return v;
}

void writeStringAttr(hid_t obj, const char* name, const QString& value) {
    const QByteArray v = value.toUtf8();
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = v.constData();
    H5Awrite(a, t, &p);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

void writeScalarAttr(hid_t obj, const char* name, hid_t fileType, hid_t memType, const void* v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, fileType, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, memType, v);
    H5Aclose(a);
    H5Sclose(s);
}

bool writeVector(hid_t loc, const char* name, hid_t fileType, hid_t memType, const void* data, hsize_t n) {
    hid_t s = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(loc, name, fileType, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = d >= 0 && (n == 0 || H5Dwrite(d, memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return ok;
}

void writeRootAttrs(hid_t f) {
    writeStringAttr(f, "format", "bimamba-report");
    const qint64 ver = 1;
    writeScalarAttr(f, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &ver);
    writeStringAttr(f, "created", QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
}

bool finish(hid_t f, const QString& tmp, const QString& path, QString* error) {
    if (H5Fclose(f) < 0) {
        if (error) *error = "HDF5: could not close " + tmp;
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
    Silence quiet;
    if (!QFileInfo::exists(p)) {
        if (error) *error = p + " does not exist";
        return false;
    }
    if (H5Fis_hdf5(p.toUtf8().constData()) <= 0) {
        if (error) *error = p + " is not an HDF5 file";
        return false;
    }
    hid_t f = H5Fopen(p.toUtf8().constData(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        if (error) *error = "cannot open " + p;
        return false;
    }
    format = readStringAttr(f, "format");
    formatVersion = qint64(readDoubleAttr(f, "format_version", 0));
    if (exists(f, "/histograms")) {
        for (const QString& set : children(f, "/histograms")) {
            HistogramSet hs;
            hs.name = set;
            const QString sp = "/histograms/" + set;
            hid_t g = H5Gopen2(f, sp.toUtf8().constData(), H5P_DEFAULT);
            if (g < 0) continue;
            hs.kind = readStringAttr(g, "kind");
            hs.checkpoint = readStringAttr(g, "checkpoint");
            H5Gclose(g);
            for (const QString& layer : children(f, sp.toUtf8().constData())) {
                bool ok = false;
                const int li = QString(layer).remove("layer_").toInt(&ok);
                if (!ok) continue;
                const QString lp = sp + "/" + layer;
                for (const QString& module : children(f, lp.toUtf8().constData())) {
                    const QString mp = lp + "/" + module;
                    Histogram h;
                    h.counts = readNumeric<qint64>(f, mp + "/counts", H5T_NATIVE_INT64);
                    h.edges = readNumeric<double>(f, mp + "/edges", H5T_NATIVE_DOUBLE);
                    hid_t mg = H5Gopen2(f, mp.toUtf8().constData(), H5P_DEFAULT);
                    if (mg >= 0) {
                        h.mean = readDoubleAttr(mg, "mean");
                        h.std = readDoubleAttr(mg, "std");
                        h.min = readDoubleAttr(mg, "min");
                        h.max = readDoubleAttr(mg, "max");
                        h.numel = qint64(readDoubleAttr(mg, "numel"));
                        H5Gclose(mg);
                    }
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
    if (exists(f, "/eval") && exists(f, "/eval/table") && exists(f, "/eval/table/values")) {
        eval.models = readStrings(f, "/eval/table/models");
        eval.columns = readStrings(f, "/eval/table/columns");
        QVector<hsize_t> dims;
        const QVector<double> v = readNumeric<double>(f, "/eval/table/values", H5T_NATIVE_DOUBLE, &dims);
        const int M = eval.models.size(), C = eval.columns.size();
        if (v.size() == M * C) {
            for (int i = 0; i < M; ++i) eval.values.push_back(v.mid(i * C, C));
        } else {
            eval = {};
        }
    }
    if (exists(f, "/generations") && exists(f, "/generations/text")) {
        generationsPrompt = readStrings(f, "/generations/prompt");
        generationsLabel = readStrings(f, "/generations/label");
        generationsText = readStrings(f, "/generations/text");
    }
    H5Fclose(f);
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
    Silence quiet;
    const QString tmp = path + ".tmp";
    hid_t f = H5Fcreate(tmp.toUtf8().constData(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        if (error) *error = "cannot create " + tmp;
        return false;
    }
    writeRootAttrs(f);
    hid_t cfg = H5Gcreate2(f, "/config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    writeStringAttr(cfg, "run_dir", QFileInfo(runDir).absoluteFilePath());
    H5Gclose(cfg);
    hid_t mg = H5Gcreate2(f, "/metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    writeStringAttr(mg, "source", m.path());
    bool ok = true;
    for (const char* type : {"train", "val"}) {
        const MetricsTable& t = m.table(type);
        if (t.rows == 0) continue;
        hid_t tg = H5Gcreate2(mg, type, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (auto it = t.columns.begin(); it != t.columns.end(); ++it)
            ok = writeVector(tg, it.key().toUtf8().constData(), H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, it->constData(), hsize_t(it->size())) && ok;
        H5Gclose(tg);
    }
    H5Gclose(mg);
    if (!ok) {
        H5Fclose(f);
        QFile::remove(tmp);
        if (error) *error = "HDF5 write failed for " + path;
        return false;
    }
    return finish(f, tmp, path, error);
}

bool writeHistogramsHdf5(const QVector<HistogramSet>& sets, const QString& path, QString* error) {
    Silence quiet;
    const QString tmp = path + ".tmp";
    hid_t f = H5Fcreate(tmp.toUtf8().constData(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        if (error) *error = "cannot create " + tmp;
        return false;
    }
    writeRootAttrs(f);
    hid_t root = H5Gcreate2(f, "/histograms", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (const auto& s : sets) {
        hid_t sg = H5Gcreate2(root, s.name.toUtf8().constData(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        writeStringAttr(sg, "kind", s.kind);
        writeStringAttr(sg, "checkpoint", s.checkpoint);
        for (auto l = s.layers.begin(); l != s.layers.end(); ++l) {
            hid_t lg = H5Gcreate2(sg, QStringLiteral("layer_%1").arg(l.key()).toUtf8().constData(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            for (auto m = l->begin(); m != l->end(); ++m) {
                hid_t g = H5Gcreate2(lg, m.key().toUtf8().constData(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                writeVector(g, "counts", H5T_STD_I64LE, H5T_NATIVE_INT64, m->counts.constData(), hsize_t(m->counts.size()));
                writeVector(g, "edges", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->edges.constData(), hsize_t(m->edges.size()));
                writeScalarAttr(g, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->mean);
                writeScalarAttr(g, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->std);
                writeScalarAttr(g, "min", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->min);
                writeScalarAttr(g, "max", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->max);
                writeScalarAttr(g, "numel", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->numel);
                H5Gclose(g);
            }
            H5Gclose(lg);
        }
        H5Gclose(sg);
    }
    H5Gclose(root);
    return finish(f, tmp, path, error);
}

}  // namespace bimamba::ui
