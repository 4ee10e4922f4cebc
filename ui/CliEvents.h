#pragma once
// The machine-readable events of `bimamba chat --json`, `generate --stream
// --json` and `bench cpu --json` (docs/cli-events.md): one JSON object per
// line on stdout, {"event":"NAME", ...}. The panels read these, never the
// human text.
#include <QJsonObject>
#include <QString>
#include <QVector>

namespace bimamba::ui {

// Splits a stdout stream into JSON lines as it arrives: text may end inside
// a line, which is kept until its newline. Lines that are not JSON objects
// (should the CLI print anything else) are skipped and counted.
class JsonLineReader {
public:
    QVector<QJsonObject> feed(const QString& text);
    int skipped() const { return skipped_; }

private:
    QString pending_;
    int skipped_ = 0;
};

// "event" of an event object ("token", "stats", ...).
inline QString eventName(const QJsonObject& o) {
    return o.value("event").toString();
}

}  // namespace bimamba::ui
