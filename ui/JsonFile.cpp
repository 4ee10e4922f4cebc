#include "ui/JsonFile.h"

#include <QFile>
#include <QJsonDocument>
#include <QSaveFile>

namespace bimamba::ui {

QJsonObject readJsonFile(const QString& path, QString* error) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        if (error) *error = QStringLiteral("cannot open %1: %2").arg(path, f.errorString());
        return {};
    }
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(f.readAll(), &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) {
        if (error)
            *error = QStringLiteral("%1: invalid JSON at offset %2: %3").arg(path).arg(pe.offset).arg(pe.errorString());
        return {};
    }
    return doc.object();
}

bool writeJsonFile(const QString& path, const QJsonObject& o, QString* error) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) {
        if (error) *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    f.write(QJsonDocument(o).toJson(QJsonDocument::Indented));
    if (!f.commit()) {
        if (error) *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    return true;
}

nlohmann::json toNlohmann(const QJsonObject& o) {
    return nlohmann::json::parse(QJsonDocument(o).toJson(QJsonDocument::Compact).toStdString());
}

QJsonObject toQJsonObject(const nlohmann::json& j) {
    if (!j.is_object()) return {};
    return QJsonDocument::fromJson(QByteArray::fromStdString(j.dump())).object();
}

}  // namespace bimamba::ui
