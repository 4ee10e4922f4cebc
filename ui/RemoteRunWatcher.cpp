#include "ui/RemoteRunWatcher.h"

#include "core/base/Hosts.h"
#include "core/base/RemoteOps.h"
#include "core/base/RemoteRun.h"
#include "ui/RunStore.h"

#include <QProcess>
#include <QTimer>

namespace bimamba::ui {

using base::Host;
using base::PollResult;
using base::ProcessResult;
using base::RemoteOperation;
using base::RemoteRun;
using base::RemoteState;
using base::RemoteStep;
using base::apply_poll;
using base::explain_ssh_failure;
using base::hosts_path;
using base::is_connection_failure;
using base::load_hosts;
using base::mirror_offset;
using base::parse_poll_output;
using base::poll_args;
using base::poll_script;
using base::remote_state;
using base::target_script;
using base::write_remote_run;

namespace {

constexpr int kTimeoutMs = 120000;  // a poll or step with no answer by then is killed

// Runs argv (stdin: input) as a QProcess; `done` gets what run_process would.
void runAsync(QObject* parent, const std::vector<std::string>& argv, const std::string& input,
              std::function<void(const ProcessResult&)> done) {
    auto* p = new QProcess(parent);
    auto* timer = new QTimer(p);
    timer->setSingleShot(true);
    auto timedOut = std::make_shared<bool>(false);
    QObject::connect(timer, &QTimer::timeout, p, [p, timedOut] {
        *timedOut = true;
        p->kill();
    });
    QObject::connect(p, &QProcess::finished, p, [p, done, timedOut](int code, QProcess::ExitStatus st) {
        ProcessResult r;
        r.out = p->readAllStandardOutput().toStdString();
        r.err = p->readAllStandardError().toStdString();
        r.exit_code = *timedOut ? 124 : st == QProcess::CrashExit ? 128 + 9 : code;
        if (*timedOut) r.err += "(no answer within " + std::to_string(kTimeoutMs / 1000) + " s)\n";
        p->deleteLater();
        done(r);
    });
    QObject::connect(p, &QProcess::errorOccurred, p, [p, done, argv](QProcess::ProcessError e) {
        if (e != QProcess::FailedToStart) return;
        ProcessResult r;
        r.exit_code = 127;
        r.err = "cannot run " + argv[0] + ": " + p->errorString().toStdString();
        p->deleteLater();
        done(r);
    });
    QStringList args;
    for (size_t i = 1; i < argv.size(); ++i) args << QString::fromStdString(argv[i]);
    p->setProgram(QString::fromStdString(argv[0]));
    p->setArguments(args);
    timer->start(kTimeoutMs);
    p->start();
    if (!input.empty()) p->write(input.data(), qint64(input.size()));
    p->closeWriteChannel();
}

bool needsPoll(const RunRecord& r) {
    if (!r.isRemote() || r.remote.isEmpty()) return false;
    return r.status == "starting" || r.status == "pending" || r.status == "running" || r.status == "stopping" ||
           r.status == "unreachable" || r.status == "unknown";
}

}  // namespace

RemoteRunWatcher::RemoteRunWatcher(RunStore* store, QString workspace, QObject* parent)
    : QObject(parent), store_(store), workspace_(std::move(workspace)) {}

std::vector<Host> RemoteRunWatcher::hosts() const {
    return load_hosts(hosts_path(workspace_.toStdString())).hosts;
}

bool RemoteRunWatcher::busy() const {
    return operations_ > 0 || !inFlight_.isEmpty();
}

void RemoteRunWatcher::runOperation(std::shared_ptr<RemoteOperation> op, std::function<void(const QString&)> done) {
    if (op->done()) return done({});
    ++operations_;
    const RemoteStep step = op->next();
    runAsync(this, step.argv, step.input, [this, op, done](const ProcessResult& r) {
        --operations_;
        try {
            op->finish(r);
        } catch (const std::exception& e) {
            return done(QString::fromStdString(e.what()));
        }
        runOperation(op, done);
    });
}

void RemoteRunWatcher::pollAll() {
    for (const auto& r : store_->all())
        if (needsPoll(r)) poll(r.id);
}

void RemoteRunWatcher::poll(qint64 id) {
    const auto r = store_->byId(id);
    if (!r || !r->isRemote() || r->remote.isEmpty()) return;
    auto& q = queue_[r->host];
    if (q.contains(id) || inFlight_.value(r->host, -1) == id) return;
    q.append(id);
    if (!inFlight_.contains(r->host)) startNext(r->host);
}

void RemoteRunWatcher::startNext(const QString& hostName) {
    auto& q = queue_[hostName];
    while (!q.isEmpty()) {
        const qint64 id = q.takeFirst();
        const auto rec = store_->byId(id);
        if (!rec || rec->remote.isEmpty()) continue;
        RemoteRun run;
        Host host;
        try {
            run = RemoteRun::from_json(nlohmann::json::parse(rec->remote.toStdString()));
            const auto all = hosts();
            auto it = std::find_if(all.begin(), all.end(), [&](const Host& h) { return h.name == run.host; });
            if (it == all.end())
                throw std::invalid_argument("host '" + run.host + "' is not in " +
                                            hosts_path(workspace_.toStdString()));
            host = *it;
        } catch (const std::exception& e) {
            emit polled(id, false, {}, {}, rec->remote, QString::fromStdString(e.what()));
            continue;
        }
        const std::string mirror = rec->runDir.toStdString();
        inFlight_.insert(hostName, id);
        runAsync(this, target_script(host, poll_script(), poll_args(run, mirror_offset(mirror))), "",
                 [this, id, hostName, host, run, mirror](const ProcessResult& res) mutable {
                     inFlight_.remove(hostName);
                     const QString json = QString::fromStdString(run.to_json().dump());
                     if (is_connection_failure(host, res.exit_code) || res.exit_code == 124 || res.exit_code == 127) {
                         const std::string why = res.exit_code == 255 ? explain_ssh_failure(host, res.err) : res.err;
                         emit polled(id, false, {}, {}, json, QString::fromStdString(why));
                     } else {
                         const PollResult p = parse_poll_output(res.out);
                         if (!p.ok) {
                             emit polled(id, false, {}, {}, json,
                                         QStringLiteral("unexpected answer to the poll (exit status %1): %2")
                                             .arg(res.exit_code)
                                             .arg(QString::fromStdString(res.err).left(500)));
                         } else {
                             bool again = false;
                             try {
                                 again = apply_poll(mirror, run, p);
                                 write_remote_run(mirror, run);
                             } catch (const std::exception& e) {
                                 emit polled(id, false, {}, {}, json, QString::fromStdString(e.what()));
                                 startNext(hostName);
                                 return;
                             }
                             const RemoteState s = remote_state(run, p);
                             emit polled(id, true, QString::fromStdString(s.state), QString::fromStdString(s.message),
                                         QString::fromStdString(run.to_json().dump()), {});
                             // The metrics file was replaced (read it from 0), or more is waiting than one poll
                             // carries.
                             if (again || (!p.metrics.empty() && p.metrics_size > mirror_offset(mirror)))
                                 queue_[hostName].prepend(id);
                         }
                     }
                     startNext(hostName);
                 });
        return;
    }
}

}  // namespace bimamba::ui
