#pragma once
// The workbench's side of remote runs (core/base/RemoteRun.h, RemoteOps.h):
// runs the steps of a remote operation (launch, stop, resume, fetch) as
// QProcesses, and polls remote runs: per host one poll at a time, through
// ssh's shared connection (ControlMaster), each poll mirroring the run's
// status.json and the new bytes of its metrics.jsonl into the local mirror
// folder. Never blocks the event loop. RunManager turns what it reports into
// the run records the Runs tab shows.
#include <QHash>
#include <QObject>
#include <QStringList>

#include <functional>
#include <memory>

namespace bimamba::base {
class RemoteOperation;
struct Host;
}  // namespace bimamba::base

namespace bimamba::ui {

class RunStore;

class RemoteRunWatcher : public QObject {
    Q_OBJECT
public:
    RemoteRunWatcher(RunStore* store, QString workspace, QObject* parent = nullptr);
    // Runs every step of `op`; `done` gets "" or the error (ssh failures explained).
    void runOperation(std::shared_ptr<base::RemoteOperation> op, std::function<void(const QString& error)> done);
    // Queues a poll of every remote run that is not over (and of those not
    // yet polled since start-up); starts one per host that has none in flight.
    void pollAll();
    void poll(qint64 id);
    // hosts.toml of the workspace; throws naming the file and the problem.
    std::vector<base::Host> hosts() const;
    bool busy() const;  // polls or operations in flight

signals:
    // A poll of run `id` ended. reachable: state/message hold the run state
    // (remote_state()), remoteJson the updated record; else error says why.
    void polled(qint64 id, bool reachable, const QString& state, const QString& message, const QString& remoteJson,
                const QString& error);

private:
    void startNext(const QString& host);
    RunStore* store_;
    QString workspace_;
    QHash<QString, QList<qint64>> queue_;  // host -> runs waiting for a poll
    QHash<QString, qint64> inFlight_;      // host -> run being polled
    int operations_ = 0;
};

}  // namespace bimamba::ui
