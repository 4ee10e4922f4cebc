#include "ui/RunManager.h"

#include "ui/MetricsReader.h"
#include "core/base/FileUtil.h"
#include "core/base/Hosts.h"
#include "core/base/Process.h"
#include "core/base/RemoteOps.h"
#include "core/base/RemoteRun.h"
#include "core/base/RunDir.h"
#include "ui/RemoteRunWatcher.h"
#include "ui/JsonFile.h"
#include "core/study/Study.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QJsonDocument>
#include <QProcess>
#include <QRegularExpression>
#include <QTimer>

#include <cmath>
#include <memory>
#include <optional>
#include <signal.h>

namespace bimamba::ui {

using base::AlertKind;
using base::AlertRules;
using base::RunAlert;
using base::RunAlertMonitor;

using base::Host;
using base::HostKind;
using base::RemoteOperation;
using base::RemoteRun;
using base::RunStatus;
using base::latest_checkpoint;
using base::looks_like_run_dir;
using base::pid_alive;
using base::read_exit_code;
using base::read_launcher_pid;
using base::read_remote_run;
using base::read_run_config;
using base::read_run_status;
namespace run_files = base::run_files;
using base::tail_lines;
using base::write_file_atomic;
using base::write_remote_run;

// A resolved config names no preset, only the shape: the paper's sizes by
// (d_model, n_layer), else the shape itself.
static QString sizeOfShape(const QJsonObject& m) {
    const int d = m.value("d_model").toInt(), n = m.value("n_layer").toInt();
    if (d <= 0 || n <= 0) return {};
    static const struct {
        int d, n;
        const char* name;
    } known[] = {{768, 24, "130m"}, {1024, 48, "370m"}, {1536, 48, "780m"}, {2048, 48, "1.3b"}, {2560, 64, "2.7b"}};
    for (const auto& k : known)
        if (k.d == d && k.n == n) return k.name;
    return QStringLiteral("d%1×%2").arg(d).arg(n);
}

void describeConfig(RunRecord& r, const QJsonObject& c) {
    const QJsonValue model = c.value("model");
    QString size = model.isString() ? model.toString() : model.toObject().value("preset").toString();
    if (size.isEmpty() && model.isObject()) size = sizeOfShape(model.toObject());
    QString bin = model.isObject() ? model.toObject().value("binarize").toString() : QString();
    if (bin.isEmpty()) bin = "none";
    if (r.preset.isEmpty()) r.preset = size.isEmpty() ? "small" : size;
    r.binarize = bin;
    r.loss = c.value("loss").toString("ce");
    r.teacher = c.value("teacher").toString();
    if (r.teacher.isEmpty()) r.teacher = c.value("teacher_cache").toString();
    if (c.contains("steps")) r.totalSteps = c.value("steps").toVariant().toLongLong();
}

RunManager::RunManager(RunStore* store, QString workspace, QString cliPath, QObject* parent)
    : QObject(parent),
      store_(store),
      workspace_(std::move(workspace)),
      cli_(std::move(cliPath)),
      watcher_(new QFileSystemWatcher(this)),
      timer_(new QTimer(this)),
      remote_(new RemoteRunWatcher(store, workspace_, this)),
      remoteTimer_(new QTimer(this)) {
    connect(remote_, &RemoteRunWatcher::polled, this, &RunManager::onRemotePolled);
    connect(remoteTimer_, &QTimer::timeout, remote_, &RemoteRunWatcher::pollAll);
    remoteTimer_->start(3000);
    connect(watcher_, &QFileSystemWatcher::fileChanged, this, &RunManager::onPathChanged);
    connect(watcher_, &QFileSystemWatcher::directoryChanged, this, &RunManager::onPathChanged);
    connect(timer_, &QTimer::timeout, this, [this] {
        for (const auto& r : store_->all())
            if (isActive(r.status) || readers_.contains(r.id)) refresh(r.id);
    });
    timer_->start(1000);
}

void RunManager::setPollInterval(int ms) {
    timer_->setInterval(ms);
}

void RunManager::setRemotePollInterval(int ms) {
    remoteTimer_->setInterval(ms);
}

QString RunManager::runsRoot() const {
    return QDir(workspace_).filePath("runs");
}

void RunManager::onPathChanged(const QString& path) {
    QFileInfo fi(path);
    const QString dir = fi.isDir() ? fi.absoluteFilePath() : fi.absolutePath();
    auto it = dirToId_.find(dir);
    if (it != dirToId_.end()) refresh(*it);
    // A replaced file (atomic rename) drops out of the watch list.
    if (!fi.isDir() && fi.exists() && !watcher_->files().contains(path)) watcher_->addPath(path);
}

void RunManager::watch(qint64 id, const QString& runDir) {
    const QString dir = QFileInfo(runDir).absoluteFilePath();
    dirToId_.insert(dir, id);
    if (!watcher_->directories().contains(dir) && QFileInfo(dir).isDir()) watcher_->addPath(dir);
    const QString m = QDir(dir).filePath(run_files::kMetrics);
    if (QFileInfo::exists(m) && !watcher_->files().contains(m)) watcher_->addPath(m);
}

bool RunManager::startProcess(const QString& runDir, const QStringList& args, QString* error) {
    if (cli_.isEmpty() || !QFileInfo(cli_).isExecutable()) {
        if (error)
            *error = QStringLiteral("the bimamba CLI was not found (%1); set it in Settings")
                         .arg(cli_.isEmpty() ? QStringLiteral("no path") : cli_);
        return false;
    }
    QDir d(runDir);
    QFile::remove(d.filePath(run_files::kExitCode));
    // A small sh wrapper records the exit status (a detached process has no
    // parent to report it to) and forwards SIGTERM/SIGINT to the trainer.
    const QString script = QStringLiteral(
        "\"$0\" \"$@\" & c=$!; trap 'kill -TERM $c 2>/dev/null' TERM INT; "
        "while :; do wait $c; r=$?; kill -0 $c 2>/dev/null || break; done; "
        "echo $r > exit_code.tmp && mv exit_code.tmp exit_code");
    QProcess p;
    p.setProgram("/bin/sh");
    p.setArguments(QStringList{"-c", script, cli_} + args);
    p.setWorkingDirectory(runDir);
    p.setStandardInputFile(QProcess::nullDevice());
    p.setStandardOutputFile(d.filePath(run_files::kStdout), QIODevice::Append);
    p.setStandardErrorFile(d.filePath(run_files::kStderr), QIODevice::Append);
    qint64 pid = 0;
    if (!p.startDetached(&pid)) {
        if (error) *error = QStringLiteral("could not start %1: %2").arg(cli_, p.errorString());
        return false;
    }
    QFile f(d.filePath(run_files::kLauncherPid));
    if (f.open(QIODevice::WriteOnly | QIODevice::Truncate)) f.write(QByteArray::number(pid) + "\n");
    return true;
}

// <runsRoot>/<name>, made; a suffix is added when the name is taken. "" on error.
QString RunManager::makeRunDir(const QString& name, QString* error) {
    QString base = name.trimmed();
    base.replace(QRegularExpression("[^A-Za-z0-9._+-]+"), "_");
    if (base.isEmpty() || base == "." || base == "..") base = "run";
    QDir root(runsRoot());
    if (!root.mkpath(".")) {
        if (error) *error = "cannot create " + runsRoot();
        return {};
    }
    QString dirName = base;
    for (int i = 2; root.exists(dirName); ++i) dirName = QStringLiteral("%1-%2").arg(base).arg(i);
    if (!root.mkpath(dirName)) {
        if (error) *error = "cannot create " + root.filePath(dirName);
        return {};
    }
    return root.absoluteFilePath(dirName);
}

qint64 RunManager::launch(const QString& name, const QString& group, const QString& preset, const QJsonObject& config,
                          QString* error, const QJsonObject& axes) {
    const QString runDir = makeRunDir(name, error);
    if (runDir.isEmpty()) return -1;
    const QString dirName = QFileInfo(runDir).fileName();
    const QString cfgPath = QDir(runDir).filePath(run_files::kLaunchConfig);
    if (!writeJsonFile(cfgPath, config, error)) return -1;

    RunRecord r;
    r.name = dirName;
    r.group = group;
    r.preset = preset;
    describeConfig(r, config);
    r.status = "starting";
    r.runDir = runDir;
    r.started = QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
    if (!axes.isEmpty()) r.axes = QString::fromUtf8(QJsonDocument(axes).toJson(QJsonDocument::Compact));
    writeJsonFile(QDir(runDir).filePath(run_files::kWorkbenchMeta),
                  QJsonObject{{"name", r.name}, {"group", group}, {"preset", preset}, {"axes", axes}});
    const qint64 id = store_->add(r, error);
    if (id < 0) return -1;
    r.id = id;
    watch(id, runDir);
    QString err;
    if (!startProcess(runDir, {"train", "--config", cfgPath, "--run-dir", runDir}, &err)) {
        r.status = "failed";
        r.message = err;
        store_->update(r);
        if (error) *error = err;
        emit runUpdated(id);
        return id;
    }
    emit runUpdated(id);
    return id;
}

bool RunManager::stop(qint64 id, QString* error) {
    auto r = store_->byId(id);
    if (!r) {
        if (error) *error = "no such run";
        return false;
    }
    if (r->isRemote()) return stopRemote(id, error);
    const qint64 launcher = read_launcher_pid(r->runDir.toStdString());
    const RunStatus st = read_run_status(r->runDir.toStdString());
    qint64 target = 0;
    if (pid_alive(launcher))
        target = launcher;
    else if (st.valid && pid_alive(st.pid))
        target = st.pid;
    if (target == 0) {
        if (error) *error = QStringLiteral("run %1 is not running").arg(r->name);
        return false;
    }
    if (::kill(pid_t(target), SIGTERM) != 0) {
        if (error) *error = QStringLiteral("could not signal process %1").arg(target);
        return false;
    }
    stopping_[id] = true;
    r->status = "stopping";
    store_->update(*r);
    emit runUpdated(id);
    emit message(QStringLiteral("Stopping %1: the trainer writes a checkpoint, then exits").arg(r->name));
    return true;
}

bool RunManager::resume(qint64 id, QString* error) {
    auto r = store_->byId(id);
    if (!r) {
        if (error) *error = "no such run";
        return false;
    }
    if (r->isRemote()) return resumeRemote(id, error);
    if (isActive(r->status) && pid_alive(read_launcher_pid(r->runDir.toStdString()))) {
        if (error) *error = QStringLiteral("run %1 is still running").arg(r->name);
        return false;
    }
    std::string checkpoint;
    try {
        checkpoint = latest_checkpoint(r->runDir.toStdString());
    } catch (const std::exception&) {
        // `latest` names a folder that is gone: nothing to resume from
    }
    if (checkpoint.empty()) {
        if (error) *error = QStringLiteral("run %1 has no checkpoint to resume from").arg(r->name);
        return false;
    }
    if (!startProcess(r->runDir, {"train", "--resume", r->runDir}, error)) return false;
    stopping_.remove(id);
    r->status = "starting";
    r->message.clear();
    r->ended.clear();
    store_->update(*r);
    watch(id, r->runDir);
    emit runUpdated(id);
    return true;
}

qint64 RunManager::importRunDir(const QString& dirIn, QString* error) {
    const QString dir = QFileInfo(dirIn).absoluteFilePath();
    if (!QFileInfo(dir).isDir() || !looks_like_run_dir(dir.toStdString())) {
        if (error)
            *error = QStringLiteral("%1 is not a run directory (no status.json, metrics.jsonl or train_config.json)")
                         .arg(dir);
        return -1;
    }
    if (auto existing = store_->byDir(dir)) {
        refresh(existing->id);
        return existing->id;
    }
    RunRecord r;
    r.name = QFileInfo(dir).fileName();
    r.runDir = dir;
    const QJsonObject meta = readJsonFile(QDir(dir).filePath(run_files::kWorkbenchMeta));
    r.group = meta.value("group").toString();
    if (r.group.isEmpty())  // a run a study trained: its stage's group
        r.group = QString::fromStdString(study::study_group_of_run(workspace_.toStdString(), dir.toStdString()));
    r.preset = meta.value("preset").toString();
    if (meta.value("axes").isObject() && !meta.value("axes").toObject().isEmpty())
        r.axes = QString::fromUtf8(QJsonDocument(meta.value("axes").toObject()).toJson(QJsonDocument::Compact));
    describeConfig(r, toQJsonObject(read_run_config(dir.toStdString())));
    r.status = "unknown";
    try {  // a mirror of a remote run (`bimamba remote launch`): polled from now on
        RemoteRun rr;
        if (read_remote_run(dir.toStdString(), &rr)) {
            r.host = QString::fromStdString(rr.host);
            r.remote = QString::fromStdString(rr.to_json().dump());
        }
    } catch (const std::exception& e) {
        r.message = QString::fromStdString(e.what());
    }
    const qint64 id = store_->add(r, error);
    if (id < 0) return -1;
    watch(id, dir);
    refresh(id);
    return id;
}

void RunManager::attachAll() {
    QDir root(runsRoot());
    for (const auto& e : root.entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
        if (!looks_like_run_dir(e.absoluteFilePath().toStdString())) continue;
        if (!store_->byDir(e.absoluteFilePath())) importRunDir(e.absoluteFilePath(), nullptr);
    }
    for (auto r : store_->all()) {
        if (r.isRemote() && r.remote.isEmpty() && isActive(r.status)) {
            r.status = "failed";
            r.message = "the launch on " + r.host + " was interrupted (the workbench closed before it finished)";
            store_->update(r);
        }
        watch(r.id, r.runDir);
        refresh(r.id);
    }
    remote_->pollAll();  // re-attach to remote runs at once
}

MetricsReader* RunManager::metrics(qint64 id) {
    auto it = readers_.find(id);
    if (it != readers_.end()) return *it;
    auto r = store_->byId(id);
    if (!r) return nullptr;
    auto* m = new MetricsReader(QDir(r->runDir).filePath(run_files::kMetrics), this);
    // A long run's file (hundreds of thousands of lines) is read and parsed
    // on a worker thread; the plots fill in when it is merged.
    m->setAsyncThreshold(kAsyncMetricsBytes);
    connect(m, &MetricsReader::loaded, this, [this, id] {
        refresh(id);
        emit metricsUpdated(id);
    });
    readers_.insert(id, m);
    m->poll();
    return m;
}

void RunManager::refreshAll() {
    for (const auto& r : store_->all()) refresh(r.id);
}

void RunManager::refresh(qint64 id) {
    auto rec = store_->byId(id);
    if (!rec) return;
    RunRecord r = *rec;
    if (r.isRemote()) return refreshRemote(r);
    const RunRecord before = r;
    auto* m = metrics(id);
    const bool newLines = m && m->poll() > 0;
    const QString mpath = QDir(r.runDir).filePath(run_files::kMetrics);
    if (QFileInfo::exists(mpath) && !watcher_->files().contains(mpath)) watcher_->addPath(mpath);

    const RunStatus st = read_run_status(r.runDir.toStdString());
    const qint64 launcher = read_launcher_pid(r.runDir.toStdString());
    const bool launcherAlive = pid_alive(launcher);
    const bool trainerAlive = st.valid && pid_alive(st.pid);
    const int exitCode = read_exit_code(r.runDir.toStdString());

    QString status = r.status;
    // A status.json older than the current launch belongs to the previous
    // process (a resumed run before its trainer rewrote it).
    const QFileInfo statusFile(QDir(r.runDir).filePath(run_files::kStatus));
    const QFileInfo launchFile(QDir(r.runDir).filePath(run_files::kLauncherPid));
    const bool staleStatus = st.valid && launcherAlive && st.state != "running" && launchFile.exists() &&
                             statusFile.lastModified() < launchFile.lastModified();
    if (staleStatus) {
        status = "starting";
    } else if (st.valid) {
        status = QString::fromStdString(st.state);
        if (status == "running" && !trainerAlive && !launcherAlive) status = "lost";
        if (status == "running" && stopping_.value(id)) status = "stopping";
        if (st.total_steps > 0) r.totalSteps = st.total_steps;
        r.step = std::max<qint64>(st.step, m ? m->lastStep() : 0);
        if (!st.started.empty()) r.started = QString::fromStdString(st.started);
        r.ended = QString::fromStdString(st.ended);
    } else if (launcherAlive) {
        status = "starting";
    } else if (exitCode < 0 && isActive(status)) {
        status = "lost";
    }
    if (!st.valid && m && !m->isLoading()) r.step = std::max(r.step, m->lastStep());
    if (m && !m->isLoading()) {
        r.tokens = m->lastTokens();
        r.bestValPpl = m->bestValPpl();
    }
    if (exitCode > 0 && !launcherAlive) {
        status = "failed";
        QString msg = QStringLiteral("exit code %1").arg(exitCode);
        if (st.valid && !st.message.empty()) msg += ": " + QString::fromStdString(st.message);
        const QString errTail =
            QString::fromStdString(tail_lines(QDir(r.runDir).filePath(run_files::kStderr).toStdString(), 15));
        if (!errTail.isEmpty()) msg += "\n" + errTail;
        r.message = msg;
        if (r.ended.isEmpty())
            r.ended =
                QFileInfo(QDir(r.runDir).filePath(run_files::kExitCode)).lastModified().toUTC().toString(Qt::ISODate);
    } else if (st.valid) {
        r.message = QString::fromStdString(st.message);
    }
    if (!isActive(status)) stopping_.remove(id);
    r.status = status;
    const bool changed =
        r.status != before.status || r.step != before.step || r.tokens != before.tokens ||
        r.message != before.message || r.totalSteps != before.totalSteps || r.ended != before.ended ||
        r.started != before.started ||
        !(r.bestValPpl == before.bestValPpl || (std::isnan(r.bestValPpl) && std::isnan(before.bestValPpl)));
    if (changed) {
        store_->update(r);
        emit runUpdated(id);
    }
    checkAlerts(r, before.status == "failed", launcherAlive || trainerAlive);
    if (newLines) emit metricsUpdated(id);
}

void RunManager::setAlertRules(const AlertRules& rules) {
    alertRules_ = rules;
    for (auto& w : alerts_) w.monitor.set_rules(rules);
}

void RunManager::checkAlerts(const RunRecord& r, bool wasFailed, bool alive) {
    auto* m = readers_.value(r.id);
    if (!m || m->isLoading()) return;
    auto it = alerts_.find(r.id);
    if (it == alerts_.end()) it = alerts_.insert(r.id, Watch{RunAlertMonitor(alertRules_), 0, false});
    Watch& w = *it;
    const QString mpath = QDir(r.runDir).filePath(run_files::kMetrics);
    const QDateTime written = QFileInfo(mpath).lastModified().toUTC();
    // Lines written before the workbench started are history: they mark the
    // run, but raise no notification.
    const bool live = w.primed || !written.isValid() || written >= startedAt_;
    std::vector<RunAlert> raised;
    const MetricsTable& t = m->train();
    if (t.rows < w.fed) w.fed = t.rows;  // a resume truncated the file: go on from there
    if (t.rows > w.fed) {
        const QVector<double> step = t.column("step"), loss = t.column("loss"), time = t.column("time"),
                              lr = t.column("lr");
        for (int i = w.fed; i < t.rows; ++i) {
            // The trainer's step lines carry lr beside the loss (a NaN loss is
            // written as null, read as NaN); other lines have no loss reading.
            if (std::isnan(loss[i]) && !std::isfinite(lr[i])) continue;
            for (auto& a : w.monitor.add_row(std::isfinite(step[i]) ? qint64(step[i]) : 0, loss[i], time[i]))
                raised.push_back(a);
        }
        w.fed = t.rows;
    }
    if (r.status == "failed")
        for (auto& a : w.monitor.add_failure(r.message.toStdString())) raised.push_back(a);
    if (r.status == "running" || r.status == "stopping") {
        const double idle = written.isValid() ? written.msecsTo(QDateTime::currentDateTimeUtc()) / 1000.0 : NAN;
        for (auto& a : w.monitor.check_stall(idle, alive)) raised.push_back(a);
    } else {
        w.monitor.check_stall(0, false);
    }
    const QString active = QString::fromStdString(w.monitor.active());
    if (active != r.alert) store_->setAlert(r.id, active);
    const bool notify = live && !(r.status == "failed" && wasFailed && !w.primed);
    w.primed = true;
    if (!notify) return;
    for (const auto& a : raised) {
        const QString text = QString::fromStdString(a.text);
        emit alertRaised(r.id, text.section(':', 0, 0), r.name + ": " + text.section(':', 1).trimmed());
    }
}

// A remote run's mirror: step, tokens and best ppl from its files; the state
// comes from the polls (onRemotePolled).
void RunManager::refreshRemote(RunRecord& r) {
    const RunRecord before = r;
    auto* m = metrics(r.id);
    const bool newLines = m && m->poll() > 0;
    const RunStatus st = read_run_status(r.runDir.toStdString());
    if (st.valid) {
        if (st.total_steps > 0) r.totalSteps = st.total_steps;
        r.step = std::max<qint64>(st.step, m ? m->lastStep() : 0);
        if (!st.started.empty()) r.started = QString::fromStdString(st.started);
        r.ended = QString::fromStdString(st.ended);
    }
    if (m && !m->isLoading()) {
        r.step = std::max(r.step, m->lastStep());
        r.tokens = m->lastTokens();
        r.bestValPpl = m->bestValPpl();
    }
    const bool changed =
        r.step != before.step || r.tokens != before.tokens || r.totalSteps != before.totalSteps ||
        r.ended != before.ended || r.started != before.started ||
        !(r.bestValPpl == before.bestValPpl || (std::isnan(r.bestValPpl) && std::isnan(before.bestValPpl)));
    if (changed) {
        store_->update(r);
        emit runUpdated(r.id);
    }
    checkAlerts(r, before.status == "failed", r.status == "running");
    if (newLines) emit metricsUpdated(r.id);
}

void RunManager::onRemotePolled(qint64 id, bool reachable, const QString& state, const QString& msg,
                                const QString& remoteJson, const QString& error) {
    auto rec = store_->byId(id);
    if (!rec || operating_.contains(id)) return;
    // A poll that started before a resume answers for the previous process.
    auto launched = [](const QString& json) {
        return QJsonDocument::fromJson(json.toUtf8()).object().value("launched").toString();
    };
    if (launched(remoteJson) != launched(rec->remote)) return;
    RunRecord r = *rec;
    r.remote = remoteJson;
    if (!reachable) {
        // Keep polling: the next ssh re-establishes the connection.
        if (!unreachableSince_.contains(id))
            unreachableSince_.insert(id, QDateTime::currentDateTime().toString("yyyy-MM-dd HH:mm:ss"));
        r.status = "unreachable";
        r.message = QStringLiteral("unreachable since %1: %2").arg(unreachableSince_.value(id), error);
    } else {
        unreachableSince_.remove(id);
        r.status = state;
        r.message = msg;
        if (state == "running" && stopping_.value(id)) r.status = "stopping";
        if (!isActive(r.status)) stopping_.remove(id);
    }
    if (r.status != rec->status || r.message != rec->message || r.remote != rec->remote) {
        store_->update(r);
        emit runUpdated(id);
    }
    refresh(id);
}

// The host of hosts.toml named `name`, or an error naming the file.
static std::optional<Host> findHost(const RemoteRunWatcher* w, const QString& name, QString* error) {
    try {
        for (const auto& h : w->hosts())
            if (h.name == name.toStdString()) return h;
        if (error) *error = QStringLiteral("no host '%1' in hosts.toml").arg(name);
    } catch (const std::exception& e) {
        if (error) *error = QString::fromStdString(e.what());
    }
    return std::nullopt;
}

// A launched run's remote record (remote.json as the store keeps it) and its
// host. `notStarted` is the error when the run has no valid record yet.
static std::optional<Host> remoteTarget(const RemoteRunWatcher* w, const RunRecord& r, const QString& notStarted,
                                        RemoteRun* rr, QString* error) {
    try {
        *rr = RemoteRun::from_json(nlohmann::json::parse(r.remote.toStdString()));
    } catch (const std::exception&) {
        if (error) *error = notStarted;
        return std::nullopt;
    }
    return findHost(w, r.host, error);
}

qint64 RunManager::launchRemote(const QString& name, const QString& group, const QString& preset,
                                const QJsonObject& config, const QString& hostName, bool syncData, QString* error,
                                const QJsonObject& axes) {
    const auto host = findHost(remote_, hostName, error);
    if (!host) return -1;
    if (host->kind == HostKind::Local) return launch(name, group, preset, config, error, axes);
    const QString runDir = makeRunDir(name, error);
    if (runDir.isEmpty()) return -1;
    const QString dirName = QFileInfo(runDir).fileName();
    std::shared_ptr<RemoteOperation> op;
    try {
        op = std::make_shared<RemoteOperation>(
            RemoteOperation::launch(*host, dirName.toStdString(), toNlohmann(config), syncData));
    } catch (const std::exception& e) {
        QDir(runDir).removeRecursively();
        if (error) *error = QString::fromStdString(e.what());
        return -1;
    }
    if (!writeJsonFile(QDir(runDir).filePath(run_files::kLaunchConfig), config, error)) return -1;
    RunRecord r;
    r.name = dirName;
    r.group = group;
    r.preset = preset;
    describeConfig(r, config);
    r.status = "starting";
    r.host = hostName;
    r.message = QStringLiteral("launching on %1").arg(QString::fromStdString(host->describe()));
    r.runDir = runDir;
    r.started = QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
    if (!axes.isEmpty()) r.axes = QString::fromUtf8(QJsonDocument(axes).toJson(QJsonDocument::Compact));
    writeJsonFile(
        QDir(runDir).filePath(run_files::kWorkbenchMeta),
        QJsonObject{{"name", r.name}, {"group", group}, {"preset", preset}, {"axes", axes}, {"host", hostName}});
    const qint64 id = store_->add(r, error);
    if (id < 0) return -1;
    watch(id, runDir);
    emit runUpdated(id);
    remote_->runOperation(op, [this, id, op, runDir](const QString& err) {
        auto rec = store_->byId(id);
        if (!rec) return;
        RunRecord r = *rec;
        if (!err.isEmpty()) {
            r.status = "failed";
            r.message = err;
            store_->update(r);
            emit runUpdated(id);
            emit operationFailed("Launch", err);
            return;
        }
        try {
            write_remote_run(runDir.toStdString(), op->run());
            write_file_atomic(QDir(runDir).filePath(run_files::kLaunchConfig).toStdString(),
                              op->config().dump(2) + "\n");
        } catch (const std::exception& e) {
            emit message(QString::fromStdString(e.what()));
        }
        r.remote = QString::fromStdString(op->run().to_json().dump());
        r.message = op->run().job_id.empty()
                        ? QStringLiteral("started (pid %1 there)").arg(op->run().pid)
                        : QStringLiteral("submitted: Slurm job %1").arg(QString::fromStdString(op->run().job_id));
        store_->update(r);
        emit runUpdated(id);
        remote_->poll(id);
    });
    return id;
}

bool RunManager::stopRemote(qint64 id, QString* error) {
    auto r = store_->byId(id);
    RemoteRun rr;
    const auto host = remoteTarget(
        remote_, *r, QStringLiteral("run %1 has not been started on %2 yet").arg(r->name, r->host), &rr, error);
    if (!host) return false;
    auto op = std::make_shared<RemoteOperation>(RemoteOperation::stop(*host, rr));
    stopping_[id] = true;
    remote_->runOperation(op, [this, id](const QString& err) {
        auto rec = store_->byId(id);
        if (!rec) return;
        if (!err.isEmpty()) {
            stopping_.remove(id);
            emit operationFailed("Stop", err);
            return;
        }
        RunRecord r = *rec;
        if (r.status == "running" || r.status == "pending" || r.status == "starting") r.status = "stopping";
        store_->update(r);
        emit runUpdated(id);
        emit message(QStringLiteral("Stopping %1: the trainer writes a checkpoint, then exits").arg(r.name));
        remote_->poll(id);
    });
    return true;
}

bool RunManager::resumeRemote(qint64 id, QString* error) {
    auto r = store_->byId(id);
    if (isActive(r->status) && r->status != "unreachable") {
        if (error) *error = QStringLiteral("run %1 is still %2").arg(r->name, r->status);
        return false;
    }
    RemoteRun rr;
    const auto host = remoteTarget(
        remote_, *r, QStringLiteral("run %1 was never started on %2: launch it again").arg(r->name, r->host), &rr,
        error);
    if (!host) return false;
    auto op = std::make_shared<RemoteOperation>(RemoteOperation::resume(*host, rr));
    operating_.insert(id);
    const RunRecord before = *r;
    RunRecord rec = *r;
    rec.status = "starting";
    rec.message = "resuming on " + r->host;
    rec.ended.clear();
    store_->update(rec);
    emit runUpdated(id);
    remote_->runOperation(op, [this, id, op, before](const QString& err) {
        operating_.remove(id);
        auto rec = store_->byId(id);
        if (!rec) return;
        RunRecord r = *rec;
        if (!err.isEmpty()) {
            // Refused or not reached: the run is as it was (nothing was started).
            r.status = before.status;
            r.message = before.message;
            r.ended = before.ended;
            store_->update(r);
            emit runUpdated(id);
            emit operationFailed("Resume", err);
            return;
        }
        r.status = "starting";
        try {
            write_remote_run(r.runDir.toStdString(), op->run());
        } catch (const std::exception& e) {
            emit message(QString::fromStdString(e.what()));
        }
        r.remote = QString::fromStdString(op->run().to_json().dump());
        r.message.clear();
        store_->update(r);
        emit runUpdated(id);
        remote_->poll(id);
    });
    return true;
}

bool RunManager::fetch(qint64 id, QString* error) {
    auto r = store_->byId(id);
    if (!r || !r->isRemote()) {
        if (error) *error = "only a remote run can be fetched";
        return false;
    }
    RemoteRun rr;
    const auto host =
        remoteTarget(remote_, *r, QStringLiteral("run %1 was never started on %2").arg(r->name, r->host), &rr, error);
    if (!host) return false;
    auto op = std::make_shared<RemoteOperation>(RemoteOperation::fetch(*host, rr, r->runDir.toStdString()));
    const QString name = r->name;
    emit message(QStringLiteral("Fetching %1 from %2…").arg(name, r->host));
    remote_->runOperation(op, [this, id, name](const QString& err) {
        if (!err.isEmpty()) return emit operationFailed("Fetch", err);
        emit message(QStringLiteral("Fetched %1: its checkpoints are in the run folder").arg(name));
        emit fetched(id);
        refresh(id);
    });
    return true;
}

QString RunManager::failureText(qint64 id) const {
    auto r = store_->byId(id);
    if (!r) return {};
    return r->message;
}

}  // namespace bimamba::ui
