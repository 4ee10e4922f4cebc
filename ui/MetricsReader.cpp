#include "ui/MetricsReader.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>

#include <cmath>

namespace bimamba::ui {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Drops trailing rows whose step is >= `step` (a resumed run rewrites them).
void truncateFromStep(MetricsTable& t, double step) {
    auto it = t.columns.find("step");
    if (it == t.columns.end()) return;
    int keep = t.rows;
    while (keep > 0 && (*it)[keep - 1] >= step) --keep;
    if (keep == t.rows) return;
    for (auto& col : t.columns) col.resize(keep);
    t.rows = keep;
}

void appendRow(MetricsTable& t, const QJsonObject& o) {
    if (o.contains("step")) truncateFromStep(t, o.value("step").toDouble());
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

MetricsReader::MetricsReader(QString path, QObject* parent) : QObject(parent), path_(std::move(path)) {}

void MetricsReader::reset() {
    offset_ = 0;
    partial_.clear();
    train_.clear();
    val_.clear();
    malformed_ = 0;
}

int MetricsReader::poll() {
    QFile f(path_);
    if (!f.open(QIODevice::ReadOnly)) return 0;
    if (f.size() < offset_) reset();  // the file was replaced
    if (f.size() == offset_) return 0;
    f.seek(offset_);
    const QByteArray data = f.readAll();
    offset_ += data.size();
    partial_.append(data);
    int n = 0;
    int start = 0;
    for (;;) {
        const int nl = partial_.indexOf('\n', start);
        if (nl < 0) break;
        const QByteArray line = partial_.mid(start, nl - start).trimmed();
        if (!line.isEmpty()) {
            addLine(line);
            ++n;
        }
        start = nl + 1;
    }
    partial_.remove(0, start);
    if (n > 0) emit updated();
    return n;
}

void MetricsReader::addLine(const QByteArray& line) {
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(line, &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) {
        ++malformed_;
        return;
    }
    const QJsonObject o = doc.object();
    const QString type = o.value("type").toString("train");
    if (type == "val")
        appendRow(val_, o);
    else if (type == "train")
        appendRow(train_, o);
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
