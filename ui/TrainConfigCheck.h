#pragma once
// Validation of a training config (docs/train-config.md) before launch, and
// the dialog's presets. The model part is checked with bimamba::Mamba2Config.
#include <QJsonObject>
#include <QStringList>

namespace bimamba::ui {

// Every problem found, one readable sentence each; empty = valid. When
// `checkPaths` is set, `data`, `teacher`, `teacher_cache` and `init_from`
// must exist.
QStringList validateTrainConfig(const QJsonObject& config, bool checkPaths = true);
// Parses JSON text into an object; on failure `error` names line and column.
bool parseConfigText(const QString& text, QJsonObject* out, QString* error);

QStringList trainPresetNames();           // quickstart, paper-780m, paper-1.3b, paper-2.7b, custom
QString trainPresetLabel(const QString& name);
QJsonObject trainPreset(const QString& name, const QString& dataDir);
QStringList knownTrainFields();
long long modelParameters(const QJsonObject& config, QString* error = nullptr);

}  // namespace bimamba::ui
