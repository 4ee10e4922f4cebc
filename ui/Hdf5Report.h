#pragma once
// Reading and writing the parts of the HDF5 report (docs/report-format.md)
// the workbench shows: weight histograms, the evaluation table, metrics;
// through core's HDF5 wrapper (core/report/Hdf5File.h).
#include <QMap>
#include <QString>
#include <QStringList>
#include <QVector>

namespace bimamba::ui {

class MetricsReader;

struct Histogram {
    QVector<qint64> counts;
    QVector<double> edges;  // counts.size() + 1
    double mean = 0, std = 0, min = 0, max = 0;
    qint64 numel = 0;
    bool valid() const { return !counts.isEmpty() && edges.size() == counts.size() + 1; }
};

struct HistogramSet {
    QString name;  // group name under /histograms
    QString kind;  // full-precision | bi-mamba | ptq
    QString checkpoint;
    QMap<int, QMap<QString, Histogram>> layers;  // layer index → module → histogram
};

struct EvalTableData {
    QStringList models, columns;
    QVector<QVector<double>> values;  // [model][column]
    bool isEmpty() const { return models.isEmpty(); }
};

class Hdf5Report {
public:
    // Reads everything the workbench shows. Returns false with a message when
    // the file cannot be opened or is not HDF5; missing sections stay empty.
    // libhdf5 trusts sizes and indices inside a file (a damaged or hostile
    // report has crashed it and made it loop for ever: docs/reliability.md),
    // so the file is read in a child process that sends back what it read: a
    // crash or a hang there costs the child, and load() reports it.
    bool load(const QString& path, QString* error);
    // The same read in this process (the child's work; the fuzz target's).
    bool loadInProcess(const QString& path, QString* error);
    // How long load() waits for the child (default 30 s); for tests.
    static void setReadTimeoutMs(int ms);
    QString path;
    QVector<HistogramSet> histograms;
    EvalTableData eval;
    QStringList generationsPrompt, generationsLabel, generationsText;
    QString format;
    qint64 formatVersion = 0;

    QList<int> layers() const;    // union over sets
    QStringList modules() const;  // union over sets
};

// Writes /metrics/<type>/<key> (f8) of a run's metrics (the layout of
// `bimamba report`) plus the root attributes; atomically (temp + rename).
bool writeMetricsHdf5(const MetricsReader& m, const QString& runDir, const QString& path, QString* error);
// Writes a histogram set file in the report layout (used for exports).
bool writeHistogramsHdf5(const QVector<HistogramSet>& sets, const QString& path, QString* error);

}  // namespace bimamba::ui
