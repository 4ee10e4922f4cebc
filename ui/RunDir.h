#pragma once
// Reading a run directory (docs/run-directory.md) and the files the workbench
// adds to it when it launches `bimamba train` (launcher.pid, exit_code,
// stdout.log, stderr.log, workbench.json).
#include <QJsonObject>
#include <QString>

namespace bimamba::ui {

struct RunStatus {
    bool valid = false;        // status.json was read and parsed
    QString state;             // running | finished | stopped | failed
    qint64 pid = 0;
    qint64 step = 0;
    qint64 totalSteps = 0;
    QString started, ended, message;
};

namespace rundir {
inline const char* kStatus = "status.json";
inline const char* kMetrics = "metrics.jsonl";
inline const char* kTrainConfig = "train_config.json";
inline const char* kLaunchConfig = "workbench_config.json";  // config the workbench launched with
inline const char* kLauncherPid = "launcher.pid";
inline const char* kExitCode = "exit_code";
inline const char* kStdout = "stdout.log";
inline const char* kStderr = "stderr.log";
inline const char* kWorkbenchMeta = "workbench.json";  // name, group, preset, axes (survives a lost database)

RunStatus readStatus(const QString& dir);
// train_config.json if present, else the workbench's launch config; empty if neither.
QJsonObject readConfig(const QString& dir);
QString latestCheckpoint(const QString& dir);  // absolute path or empty
qint64 readLauncherPid(const QString& dir);
int readExitCode(const QString& dir);          // -1 when absent
bool pidAlive(qint64 pid);
// Last `maxLines` lines of a text file (empty when missing).
QString tail(const QString& path, int maxLines = 20);
bool looksLikeRunDir(const QString& dir);
QJsonObject readJsonFile(const QString& path, QString* error = nullptr);
bool writeJsonFile(const QString& path, const QJsonObject& o, QString* error = nullptr);
}  // namespace rundir

}  // namespace bimamba::ui
