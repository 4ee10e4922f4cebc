#pragma once
// Incremental reader of a run's metrics.jsonl: keeps its byte offset, parses
// only complete lines, and keeps the last line per step (a resumed run
// re-appends the steps after its checkpoint).
#include <QHash>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include <limits>

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
    void clear() { columns.clear(); rows = 0; }
};

class MetricsReader : public QObject {
    Q_OBJECT
public:
    explicit MetricsReader(QString path, QObject* parent = nullptr);
    const QString& path() const { return path_; }
    // Reads what was appended since the last call. Returns the number of new
    // lines parsed; emits updated() when there were some.
    int poll();
    const MetricsTable& train() const { return train_; }
    const MetricsTable& val() const { return val_; }
    const MetricsTable& table(const QString& type) const { return type == "val" ? val_ : train_; }
    qint64 offset() const { return offset_; }
    int malformedLines() const { return malformed_; }
    double bestValPpl() const;   // NaN when no validation yet
    double lastValue(const QString& type, const QString& key) const;
    qint64 lastStep() const;
    qint64 lastTokens() const;
    void reset();

signals:
    void updated();

private:
    void addLine(const QByteArray& line);
    QString path_;
    qint64 offset_ = 0;
    QByteArray partial_;
    MetricsTable train_, val_;
    int malformed_ = 0;
};

}  // namespace bimamba::ui
