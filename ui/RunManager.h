#pragma once
// Launches `bimamba train` runs as detached processes (they outlive the
// window), tracks them through status.json + pid, re-attaches to them on
// start-up, and keeps one incremental MetricsReader per run, fed by a
// QFileSystemWatcher and a timer.
#include "core/base/RunAlerts.h"
#include "ui/RunStore.h"

#include <QDateTime>

#include <QHash>
#include <QSet>
#include <QJsonObject>
#include <QObject>
#include <QPointer>

class QFileSystemWatcher;
class QTimer;

namespace bimamba::ui {

class MetricsReader;
class RemoteRunWatcher;

class RunManager : public QObject {
    Q_OBJECT
public:
    RunManager(RunStore* store, QString workspace, QString cliPath, QObject* parent = nullptr);
    RunStore* store() const { return store_; }
    QString workspace() const { return workspace_; }
    QString cliPath() const { return cli_; }
    void setCliPath(const QString& p) { cli_ = p; }
    // Folder new runs go to: <workspace>/runs.
    QString runsRoot() const;

    // Creates <runsRoot>/<name> (a suffix is added if taken), writes the
    // config there and starts `bimamba train --config ... --run-dir ...`.
    qint64 launch(const QString& name, const QString& group, const QString& preset, const QJsonObject& config,
                  QString* error, const QJsonObject& axes = {});
    // A run on a target of hosts.toml (an SSH host or a Slurm cluster):
    // creates the local mirror folder and the record at once, then launches
    // in the background (operationFailed() and the record's message tell a
    // failure). syncData: copy the config's data folder to the target first.
    qint64 launchRemote(const QString& name, const QString& group, const QString& preset, const QJsonObject& config,
                        const QString& host, bool syncData, QString* error, const QJsonObject& axes = {});
    // Local runs: SIGTERM, the trainer checkpoints and exits; remote runs: the
    // same through ssh (Slurm: scancel --signal=TERM), in the background.
    bool stop(qint64 id, QString* error);
    bool resume(qint64 id, QString* error);  // bimamba train --resume DIR (remote: a new process / job)
    // A remote run's whole folder (checkpoints included) into its mirror (rsync), in the background.
    bool fetch(qint64 id, QString* error);
    RemoteRunWatcher* remoteWatcher() const { return remote_; }
    // How often remote runs are polled (default 3 s).
    void setRemotePollInterval(int ms);
    qint64 importRunDir(const QString& dir, QString* error);
    // Registers every run folder under runsRoot() not yet in the store and
    // refreshes all runs (re-attaching to live ones).
    void attachAll();
    // Re-reads status and metrics of one run / all runs.
    void refresh(qint64 id);
    void refreshAll();
    MetricsReader* metrics(qint64 id);
    QString failureText(qint64 id) const;
    static bool isActive(const QString& status) {
        return status == "running" || status == "starting" || status == "stopping" || status == "pending" ||
               status == "unreachable";
    }
    void setPollInterval(int ms);
    // NaN / divergence / stall alerts (core/base/RunAlerts.h) on every run's
    // metrics: the run's `alert` in the store marks it in the table, and
    // alertRaised() is emitted once per event that happens while the
    // workbench watches (history read on opening marks, but does not notify).
    void setAlertRules(const base::AlertRules& rules);
    base::AlertRules alertRules() const { return alertRules_; }
    // Metrics files with more than this many unread bytes are loaded off the
    // UI thread (MetricsReader::setAsyncThreshold).
    static constexpr qint64 kAsyncMetricsBytes = 1 << 20;

signals:
    void runUpdated(qint64 id);
    void metricsUpdated(qint64 id);
    void message(const QString& text);
    // A background operation on a remote run failed (title: "Launch", "Stop", ...).
    void operationFailed(const QString& title, const QString& text);
    void fetched(qint64 id);  // a fetch finished
    // A new alert on a run (title: "NaN loss", "loss diverging", "stalled").
    void alertRaised(qint64 id, const QString& title, const QString& text);

private:
    QString makeRunDir(const QString& name, QString* error);
    void refreshRemote(RunRecord& r);
    bool stopRemote(qint64 id, QString* error);
    bool resumeRemote(qint64 id, QString* error);
    void onRemotePolled(qint64 id, bool reachable, const QString& state, const QString& message,
                        const QString& remoteJson, const QString& error);
    bool startProcess(const QString& runDir, const QStringList& args, QString* error);
    void watch(qint64 id, const QString& runDir);
    void onPathChanged(const QString& path);
    // Feeds the run's new training lines (and its failure, and its idleness
    // when alive) to its alert monitor; `wasFailed`: already failed before this refresh.
    void checkAlerts(const RunRecord& r, bool wasFailed, bool alive);
    RunStore* store_;
    QString workspace_, cli_;
    QFileSystemWatcher* watcher_;
    QTimer* timer_;
    QHash<qint64, MetricsReader*> readers_;
    QHash<QString, qint64> dirToId_;
    QHash<qint64, bool> stopping_;
    RemoteRunWatcher* remote_;
    QTimer* remoteTimer_;
    QHash<qint64, QString> unreachableSince_;
    base::AlertRules alertRules_;
    struct Watch {
        base::RunAlertMonitor monitor;
        int fed = 0;          // training rows fed so far
        bool primed = false;  // the history present on opening has been fed
    };
    QHash<qint64, Watch> alerts_;
    QDateTime startedAt_ = QDateTime::currentDateTimeUtc();
    QSet<qint64> operating_;  // remote runs with a launch/resume in flight: polls of the old process are dropped
};

// Fills the descriptive fields of a record from a config object.
void describeConfig(RunRecord& r, const QJsonObject& config);

}  // namespace bimamba::ui
