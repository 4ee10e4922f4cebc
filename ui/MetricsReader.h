#pragma once
// Incremental reader of a run's metrics.jsonl: keeps its byte offset, parses
// only complete lines, and keeps the rows core's read_metrics keeps (the last
// line per step: metrics_rows_kept_before in core/base/MetricsRows.h).
//
// Large reads never block the caller's thread when an async threshold is set
// (the workbench sets one; headless exports read synchronously): when more
// than that many bytes are waiting (the first read of a long run's file), the
// file is read and parsed on a worker thread (QtConcurrent) into separate
// tables, merged into these on the owner's thread, and then updated() and
// loaded() are emitted; after that poll() tails the file incrementally again.
#include <QFutureWatcher>
#include <QHash>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include <limits>
#include <memory>

namespace bimamba::ui {

// Column-wise table of one line type ("train" or "val"): every column has the
// same length; a line without a field gets NaN there.
struct MetricsTable {
    QHash<QString, QVector<double>> columns;
    int rows = 0;
    QVector<double> column(const QString& key) const {
        auto it = columns.find(key);
        return it == columns.end() ? QVector<double>(rows, std::numeric_limits<double>::quiet_NaN()) : *it;
    }
    QStringList keys() const { return columns.keys(); }
    void clear() {
        columns.clear();
        rows = 0;
    }
    // Appends `b` as if its lines had been read after this table's: rows of
    // this table at or beyond b's smallest step are dropped first.
    void merge(MetricsTable&& b, double bMinStep);
};

class MetricsReader : public QObject {
    Q_OBJECT
public:
    explicit MetricsReader(QString path, QObject* parent = nullptr);
    const QString& path() const { return path_; }
    // Reads what was appended since the last call. Returns the number of new
    // lines parsed; emits updated() when there were some. When a background
    // load starts (see setAsyncThreshold) or is under way it returns 0.
    int poll();
    // Reads of more than `bytes` new bytes go to a worker thread; < 0 (the
    // default) reads everything synchronously.
    void setAsyncThreshold(qint64 bytes) { asyncThreshold_ = bytes; }
    bool isLoading() const { return loading_; }
    // Total lines parsed so far (train + val + other types + malformed).
    const MetricsTable& train() const { return train_; }
    const MetricsTable& val() const { return val_; }
    const MetricsTable& table(const QString& type) const { return type == "val" ? val_ : train_; }
    qint64 offset() const { return offset_; }
    int malformedLines() const { return malformed_; }
    double bestValPpl() const;  // NaN when no validation yet
    double lastValue(const QString& type, const QString& key) const;
    qint64 lastStep() const;
    qint64 lastTokens() const;
    qint64 linesRead() const { return lines_; }
    void reset();

signals:
    void updated();
    void loaded();  // a background load finished and was merged

private:
    struct Chunk;
    static void parseInto(Chunk& c, const QByteArray& data);
    void add(Chunk& c);
    void startAsync(qint64 fileSize);
    void finishAsync();
    QString path_;
    qint64 asyncThreshold_ = -1;
    bool loading_ = false;
    int generation_ = 0;  // bumped by reset(): results of an older load are dropped
    qint64 lines_ = 0;
    QFutureWatcher<std::shared_ptr<Chunk>>* watcher_ = nullptr;
    qint64 offset_ = 0;
    QByteArray partial_;
    MetricsTable train_, val_;
    int malformed_ = 0;
};

}  // namespace bimamba::ui
