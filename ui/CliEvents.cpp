#include "ui/CliEvents.h"

#include <QJsonDocument>
#include <QJsonParseError>

namespace bimamba::ui {

QVector<QJsonObject> JsonLineReader::feed(const QString& text) {
    pending_ += text;
    QVector<QJsonObject> out;
    qsizetype start = 0;
    for (qsizetype nl; (nl = pending_.indexOf('\n', start)) >= 0; start = nl + 1) {
        const QString line = pending_.mid(start, nl - start).trimmed();
        if (line.isEmpty()) continue;
        QJsonParseError err;
        const QJsonDocument d = QJsonDocument::fromJson(line.toUtf8(), &err);
        if (err.error == QJsonParseError::NoError && d.isObject())
            out.push_back(d.object());
        else
            ++skipped_;
    }
    pending_.remove(0, start);
    return out;
}

}  // namespace bimamba::ui
