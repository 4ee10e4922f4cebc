#pragma once
// Training configs as the workbench holds them (QJsonObject): the new-run
// dialog's presets, parsing the config editor's text, and core's checks
// (bimamba::base::TrainConfig, core/base/TrainConfig.h) on them, so the workbench
// and `bimamba train` agree on what a valid config is.
#include <QJsonObject>
#include <QStringList>

namespace bimamba::ui {

// Every problem found, one readable sentence each naming its field (from
// TrainConfig::problems); empty = valid. When `checkPaths` is set, `data`,
// `teacher`, `teacher_cache` and `init_from` must exist.
QStringList trainConfigProblems(const QJsonObject& config, bool checkPaths = true);
// Parses JSON text into an object; on failure `error` names line and column.
bool parseConfigText(const QString& text, QJsonObject* out, QString* error);

QStringList trainPresetNames();  // quickstart, paper-780m, paper-1.3b, paper-2.7b, custom
QString trainPresetLabel(const QString& name);
QJsonObject trainPreset(const QString& name, const QString& dataDir);
// Parameters of the config's `model` (TrainConfig::model_config); -1 with
// `error` set when it does not resolve.
long long modelParameters(const QJsonObject& config, QString* error = nullptr);

}  // namespace bimamba::ui
