#pragma once
// JSON files and values in the workbench: whole-file reads and atomic writes
// of objects, and the bridge between Qt's JSON and nlohmann::json (what
// core/ speaks).
#include <QJsonObject>
#include <QString>
#include <nlohmann/json.hpp>

namespace bimamba::ui {

QJsonObject readJsonFile(const QString& path, QString* error = nullptr);  // {} when missing or not an object
bool writeJsonFile(const QString& path, const QJsonObject& o, QString* error = nullptr);

nlohmann::json toNlohmann(const QJsonObject& o);
QJsonObject toQJsonObject(const nlohmann::json& j);  // {} unless `j` is an object

}  // namespace bimamba::ui
