#include "ui/MetricsReader.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>

#include "core/base/MetricsRows.h"

namespace bimamba::ui {

using base::metrics_rows_kept_before;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Drops the rows a row at `step` replaces (metrics_rows_kept_before: a resumed
// run rewrites the steps after its checkpoint).
void truncateFromStep(MetricsTable& t, double step) {
    auto it = t.columns.find("step");
    if (it == t.columns.end()) return;
    const int keep = int(metrics_rows_kept_before(it->constData(), size_t(t.rows), step));
    if (keep == t.rows) return;
    for (auto& col : t.columns) col.resize(keep);
    t.rows = keep;
}

void appendRow(MetricsTable& t, const QJsonObject& o) {
    if (o.value("step").isDouble()) truncateFromStep(t, o.value("step").toDouble());
    for (auto it = o.begin(); it != o.end(); ++it) {
        if (!it.value().isDouble()) continue;
        auto c = t.columns.find(it.key());
        if (c == t.columns.end()) c = t.columns.insert(it.key(), QVector<double>(t.rows, kNaN));
    }
    for (auto c = t.columns.begin(); c != t.columns.end(); ++c) {
        const auto v = o.value(c.key());
        c->append(v.isDouble() ? v.toDouble() : kNaN);
    }
    ++t.rows;
}
}  // namespace

void MetricsTable::merge(MetricsTable&& b, double bMinStep) {
    if (b.rows == 0) return;
    if (std::isfinite(bMinStep)) truncateFromStep(*this, bMinStep);
    if (rows == 0) {
        *this = std::move(b);
        return;
    }
    for (auto it = b.columns.begin(); it != b.columns.end(); ++it)
        if (!columns.contains(it.key())) columns.insert(it.key(), QVector<double>(rows, kNaN));
    for (auto c = columns.begin(); c != columns.end(); ++c) {
        auto src = b.columns.find(c.key());
        if (src == b.columns.end())
            c->resize(rows + b.rows, kNaN);
        else
            c->append(*src);
    }
    rows += b.rows;
}

// What one read produced: tables of the new lines only, and where to go on.
struct MetricsReader::Chunk {
    MetricsTable train, val;
    double trainMin = std::numeric_limits<double>::infinity(), valMin = std::numeric_limits<double>::infinity();
    int malformed = 0;
    qint64 lines = 0;
    QByteArray partial;  // bytes after the last newline
    qint64 end = 0;      // file offset just after what was read
    int generation = 0;
};

namespace {
// Parses one line into `train` / `val`; false when it is not a JSON object.
bool parseLine(const QByteArray& line, MetricsTable& train, MetricsTable& val, double* trainMin, double* valMin) {
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(line, &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) return false;
    const QJsonObject o = doc.object();
    const QString type = o.value("type").toString("train");
    MetricsTable* t = type == "val" ? &val : type == "train" ? &train : nullptr;
    if (!t) return true;
    if (o.value("step").isDouble()) {
        double& m = type == "val" ? *valMin : *trainMin;
        m = std::min(m, o.value("step").toDouble());
    }
    appendRow(*t, o);
    return true;
}
}  // namespace

void MetricsReader::parseInto(Chunk& c, const QByteArray& data) {
    int start = 0;
    for (;;) {
        const int nl = data.indexOf('\n', start);
        if (nl < 0) break;
        const QByteArray line = data.mid(start, nl - start).trimmed();
        if (!line.isEmpty()) {
            ++c.lines;
            if (!parseLine(line, c.train, c.val, &c.trainMin, &c.valMin)) ++c.malformed;
        }
        start = nl + 1;
    }
    c.partial = data.mid(start);
}

MetricsReader::MetricsReader(QString path, QObject* parent) : QObject(parent), path_(std::move(path)) {}

void MetricsReader::reset() {
    offset_ = 0;
    partial_.clear();
    train_.clear();
    val_.clear();
    malformed_ = 0;
    lines_ = 0;
    ++generation_;  // an unfinished background load is dropped when it arrives
    loading_ = false;
}

int MetricsReader::poll() {
    if (loading_) return 0;
    QFile f(path_);
    if (!f.open(QIODevice::ReadOnly)) return 0;
    if (f.size() < offset_) reset();  // the file was replaced
    if (f.size() == offset_) return 0;
    if (asyncThreshold_ >= 0 && f.size() - offset_ > asyncThreshold_) {
        startAsync(f.size());
        return 0;
    }
    f.seek(offset_);
    Chunk c;
    c.generation = generation_;
    const QByteArray data = f.readAll();
    c.end = offset_ + data.size();
    parseInto(c, partial_ + data);
    const int n = int(c.lines);
    add(c);
    return n;
}

void MetricsReader::startAsync(qint64 fileSize) {
    loading_ = true;
    if (!watcher_) {
        watcher_ = new QFutureWatcher<std::shared_ptr<Chunk>>(this);
        connect(watcher_, &QFutureWatcherBase::finished, this, &MetricsReader::finishAsync);
    }
    // Everything the worker needs is copied: it never touches `this`.
    const QString path = path_;
    const qint64 from = offset_;
    const QByteArray head = partial_;
    const int gen = generation_;
    watcher_->setFuture(QtConcurrent::run([path, from, fileSize, head, gen] {
        auto c = std::make_shared<Chunk>();
        c->generation = gen;
        c->end = from;
        QFile f(path);
        if (!f.open(QIODevice::ReadOnly) || !f.seek(from)) {
            c->partial = head;
            return c;
        }
        QByteArray data = head + f.read(fileSize - from);
        c->end = from + (data.size() - head.size());
        parseInto(*c, data);
        return c;
    }));
}

void MetricsReader::finishAsync() {
    const std::shared_ptr<Chunk> c = watcher_->result();
    if (!c || c->generation != generation_ || !loading_) return;  // reset() meanwhile
    loading_ = false;
    add(*c);
    emit loaded();
}

// The lines of a read, after those read before; emits updated() when there were some.
void MetricsReader::add(Chunk& c) {
    train_.merge(std::move(c.train), c.trainMin);
    val_.merge(std::move(c.val), c.valMin);
    malformed_ += c.malformed;
    lines_ += c.lines;
    offset_ = c.end;
    partial_ = c.partial;
    if (c.lines > 0) emit updated();
}

double MetricsReader::bestValPpl() const {
    const auto it = val_.columns.find("val_ppl");
    if (it == val_.columns.end()) return kNaN;
    double best = kNaN;
    for (double v : *it)
        if (std::isfinite(v) && (!std::isfinite(best) || v < best)) best = v;
    return best;
}

double MetricsReader::lastValue(const QString& type, const QString& key) const {
    const auto& t = table(type);
    const auto it = t.columns.find(key);
    if (it == t.columns.end()) return kNaN;
    for (int i = it->size() - 1; i >= 0; --i)
        if (std::isfinite((*it)[i])) return (*it)[i];
    return kNaN;
}

qint64 MetricsReader::lastStep() const {
    const double a = lastValue("train", "step"), b = lastValue("val", "step");
    double m = std::isfinite(a) ? a : 0;
    if (std::isfinite(b) && b > m) m = b;
    return qint64(m);
}

qint64 MetricsReader::lastTokens() const {
    const double a = lastValue("train", "tokens"), b = lastValue("val", "tokens");
    double m = std::isfinite(a) ? a : 0;
    if (std::isfinite(b) && b > m) m = b;
    return qint64(m);
}

}  // namespace bimamba::ui
