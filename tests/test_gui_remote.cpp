// The workbench's remote runs against a real sshd (run through
// tests/remote/ssh_fixture.sh, which starts one on 127.0.0.1 and writes the
// workspace's hosts.toml; ctest: remote_ssh_gui). A tiny CPU training run is
// launched on host "loop" from the new-run dialog's Target, followed live in
// the Runs tab, survives the server going away (unreachable, then
// re-attached), is stopped, re-attached after the window is reopened,
// resumed to the end and fetched back. Without the fixture it skips.
#include "core/base/Hosts.h"
#include "core/base/RemoteRun.h"
#include "core/base/RunDir.h"
#include "ui/HostsDialog.h"
#include "ui/MainWindow.h"
#include "ui/MetricsPlot.h"
#include "ui/NewRunDialog.h"
#include "ui/RunManager.h"
#include "ui/RunStore.h"
#include "ui/RunTableModel.h"
#include "ui/RunsPanel.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QLineEdit>
#include <QListWidget>
#include <QProcess>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>

#include <memory>

using namespace bimamba::ui;

namespace {

QString cell(RunTableModel* m, const QString& name, int col) {
    for (int r = 0; r < m->rowCount(); ++r)
        if (m->index(r, RunTableModel::Name).data().toString() == name) return m->index(r, col).data().toString();
    return {};
}

QJsonObject tinyConfig(const QString& data, int steps) {
    return QJsonObject{{"data", data},
                       {"model", QJsonObject{{"preset", "tiny"}, {"binarize", "in_proj"}, {"vocab_size", 512}}},
                       {"steps", steps},
                       {"seq_len", 32},
                       {"batch_size", 2},
                       {"warmup_steps", 2},
                       {"eval_every", 100},
                       {"eval_batches", 1},
                       {"checkpoint_every", 0},
                       {"device", "cpu"},
                       {"threads", 1},
                       {"lr", 1e-3}};
}

// Stops the fixture's sshd and closes the shared connection: the host is gone.
void takeServerDown() {
    QFile pf(qEnvironmentVariable("BIMAMBA_TEST_SSHD_PIDFILE"));
    QVERIFY(pf.open(QIODevice::ReadOnly));
    QCOMPARE(QProcess::execute("kill", {QString::fromUtf8(pf.readAll()).trimmed()}), 0);
    for (const auto& s : QDir(qEnvironmentVariable("BIMAMBA_SSH_CONTROL_DIR")).entryList(QDir::System))
        QProcess::execute(
            "ssh", {"-o", "ControlPath=" + QDir(qEnvironmentVariable("BIMAMBA_SSH_CONTROL_DIR")).filePath(s), "-O",
                    "exit", "x"});
}

void bringServerUp() {
    QCOMPARE(QProcess::execute("sh", {"-c", qEnvironmentVariable("BIMAMBA_TEST_SSHD_START")}), 0);
}

}  // namespace

class TestGuiRemote : public QObject {
    Q_OBJECT
    QString ws_, cli_, data_;

private slots:
    void initTestCase() {
        ws_ = qEnvironmentVariable("BIMAMBA_TEST_SSH_WS");
        cli_ = qEnvironmentVariable("BIMAMBA_CLI");
        if (ws_.isEmpty()) QSKIP("no sshd fixture: run through tests/remote/ssh_fixture.sh (ctest -R remote_ssh_gui)");
        if (cli_.isEmpty() || !QFileInfo(cli_).isExecutable()) QSKIP("BIMAMBA_CLI is not set to a built bimamba");
        const QString text = QDir(ws_).filePath("corpus.txt");
        QFile f(text);
        QVERIFY(f.open(QIODevice::WriteOnly));
        for (int i = 0; i < 400; ++i)
            f.write(QStringLiteral("The quick brown fox %1 jumps over the lazy dog number %2.\n")
                        .arg(i % 17)
                        .arg(i % 29)
                        .toUtf8());
        f.close();
        data_ = QDir(ws_).filePath("data");
        QProcess prep;
        prep.start(cli_, {"prepare", text, "--out", data_, "--unit", "line", "--vocab-size", "300", "--quiet"});
        QVERIFY(prep.waitForFinished(120000));
        QVERIFY2(prep.exitCode() == 0, prep.readAllStandardError().constData());
    }

    // The Hosts dialog shows hosts.toml, refuses a bad host without touching
    // the file, saves a good one (the old file kept as hosts.toml.bak) and
    // checks a host through `bimamba hosts check`.
    void hostsDialog() {
        const QString path = QDir(ws_).filePath("hosts.toml");
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray before = f.readAll();
        f.close();
        {
            HostsDialog dlg(ws_, cli_);
            QCOMPARE(dlg.loadError(), QString());
            QCOMPARE(int(dlg.hosts().size()), 2);
            bimamba::base::Host bad;
            bad.name = "bad name";
            bad.kind = bimamba::base::HostKind::Ssh;
            dlg.addHost(bad);
            QString err;
            QVERIFY(!dlg.save(&err));
            QVERIFY2(err.contains("host 'bad name'") && err.contains("field 'host' is required"), qPrintable(err));
            QVERIFY(f.open(QIODevice::ReadOnly));
            QCOMPARE(f.readAll(), before);  // nothing written
            f.close();
        }
        HostsDialog dlg(ws_, cli_);
        bimamba::base::Host extra;
        extra.name = "cluster";
        extra.kind = bimamba::base::HostKind::Slurm;
        extra.partition = "gpu";
        extra.gpus_per_node = 4;
        dlg.addHost(extra);
        QString err;
        QVERIFY2(dlg.save(&err), qPrintable(err));
        const auto saved = bimamba::base::load_hosts(path.toStdString());
        QCOMPARE(int(saved.hosts.size()), 4);
        QCOMPARE(saved.get("cluster").gpus_per_node, 4);
        QCOMPARE(saved.get("loop").port, bimamba::base::parse_hosts(before.toStdString(), "before").get("loop").port);
        QVERIFY(QFileInfo::exists(path + ".bak"));
        auto* list = dlg.findChild<QListWidget*>("hostList");
        dlg.selectHost(list->row(list->findItems("loop", Qt::MatchExactly).value(0)));
        dlg.checkSelected();
        QTRY_VERIFY_WITH_TIMEOUT(dlg.checkOutput().endsWith("\nok"), 30000);
        dlg.selectHost(list->row(list->findItems("stranger", Qt::MatchExactly).value(0)));
        dlg.checkSelected();
        QTRY_VERIFY_WITH_TIMEOUT(dlg.checkOutput().contains("host key is not known"), 30000);
    }

    // An unknown host key and a data folder missing on the target: the run
    // fails at once with a message that says which.
    void launchFailuresAreClear() {
        MainWindow w(ws_, cli_);
        QString err;
        const qint64 a =
            w.manager()->launchRemote("stranger-run", "", "custom", tinyConfig(data_, 10), "stranger", true, &err);
        QVERIFY2(a >= 0, qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(a)->status, QString("failed"), 30000);
        QVERIFY2(w.store()->byId(a)->message.contains("host key is not known"),
                 qPrintable(w.store()->byId(a)->message));
        const qint64 b =
            w.manager()->launchRemote("nodata", "", "custom", tinyConfig("/no/such/data", 10), "loop", false, &err);
        QVERIFY2(b >= 0, qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(b)->status, QString("failed"), 30000);
        QVERIFY2(w.store()->byId(b)->message.contains("/no/such/data does not exist there"),
                 qPrintable(w.store()->byId(b)->message));
        QCOMPARE(w.manager()->launchRemote("x", "", "custom", tinyConfig(data_, 10), "nosuchhost", false, &err), -1);
        QVERIFY2(err.contains("no host 'nosuchhost'"), qPrintable(err));
    }

    void launchWatchStopReopenResumeFetch() {
        qint64 id = -1;
        QString runDir;
        {
            auto w = std::make_unique<MainWindow>(ws_, cli_);
            w->manager()->setRemotePollInterval(300);
            // The new-run dialog: Target "loop", data copied there.
            QTimer::singleShot(200, this, [&] {
                auto* dlg = qobject_cast<NewRunDialog*>(QApplication::activeModalWidget());
                QVERIFY(dlg);
                dlg->findChild<QLineEdit*>("name")->setText("remote tiny");
                dlg->setConfigText(QString::fromUtf8(QJsonDocument(tinyConfig(data_, 2000)).toJson()));
                auto* target = dlg->findChild<QComboBox*>("target");
                QVERIFY(target->findData("loop") >= 0);
                target->setCurrentIndex(target->findData("loop"));
                dlg->findChild<QCheckBox*>("syncData")->setChecked(true);
                dlg->accept();
                QVERIFY2(dlg->result() == QDialog::Accepted, qPrintable(dlg->errors().join("; ")));
            });
            w->runsPanel()->newRunAction()->trigger();
            auto* model = w->runsPanel()->model();
            const QString name = "remote_tiny";
            QCOMPARE(cell(model, name, RunTableModel::Host), QString("loop"));
            id = w->store()->all().last().id;
            runDir = w->store()->byId(id)->runDir;
            QTRY_COMPARE_WITH_TIMEOUT(cell(model, name, RunTableModel::Status), QString("running"), 60000);
            QTRY_VERIFY_WITH_TIMEOUT(w->store()->byId(id)->step >= 3, 60000);
            w->runsPanel()->selectRun(id);
            QTRY_VERIFY_WITH_TIMEOUT(w->runsPanel()->lossPlot()->displayedPoints(0) >= 3, 10000);
            bimamba::base::RemoteRun rr;
            QVERIFY(bimamba::base::read_remote_run(runDir.toStdString(), &rr));
            QVERIFY(rr.remote_dir.find("remote dir/it's/runs/remote_tiny") != std::string::npos);

            // The server goes away mid-run: "unreachable since …", then back by itself.
            takeServerDown();
            QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->status, QString("unreachable"), 30000);
            QVERIFY2(w->store()->byId(id)->message.startsWith("unreachable since "),
                     qPrintable(w->store()->byId(id)->message));
            const qint64 stepDown = w->store()->byId(id)->step;
            QTest::qWait(1500);
            bringServerUp();
            QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->status, QString("running"), 30000);
            QTRY_VERIFY_WITH_TIMEOUT(w->store()->byId(id)->step > stepDown, 30000);

            // Stop: SIGTERM over ssh, the trainer checkpoints.
            QVERIFY(w->runsPanel()->stopAction()->isEnabled());
            w->runsPanel()->stopAction()->trigger();
            QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->status, QString("stopped"), 60000);
            QVERIFY(w->store()->byId(id)->step < 2000);
        }
        // Reopened: the record and its target are still there, and it re-attaches.
        auto w = std::make_unique<MainWindow>(ws_, cli_);
        w->manager()->setRemotePollInterval(300);
        auto r = w->store()->byId(id);
        QVERIFY(r);
        QCOMPARE(r->host, QString("loop"));
        QCOMPARE(r->status, QString("stopped"));
        QString err;
        QVERIFY2(w->manager()->resume(id, &err), qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->status, QString("running"), 60000);
        QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->status, QString("finished"), 300000);
        QTRY_COMPARE_WITH_TIMEOUT(w->store()->byId(id)->step, qint64(2000), 10000);
        // the mirror holds the remote metrics.jsonl byte for byte
        bimamba::base::RemoteRun rr;
        QVERIFY(bimamba::base::read_remote_run(runDir.toStdString(), &rr));
        QFile mine(QDir(runDir).filePath("metrics.jsonl")),
            theirs(QString::fromStdString(rr.remote_dir + "/metrics.jsonl"));
        QVERIFY(mine.open(QIODevice::ReadOnly) && theirs.open(QIODevice::ReadOnly));
        QCOMPARE(mine.readAll(), theirs.readAll());

        // Fetch: the checkpoints come back.
        QVERIFY(!QFileInfo::exists(QDir(runDir).filePath("checkpoints/latest")));
        w->runsPanel()->selectRun(id);
        QVERIFY(w->runsPanel()->fetchAction()->isEnabled());
        QSignalSpy fetched(w->manager(), &RunManager::fetched);
        w->runsPanel()->fetchAction()->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(fetched.count(), 1, 60000);
        QVERIFY(QFileInfo::exists(QDir(runDir).filePath("checkpoints/latest")));
        QVERIFY(!QString::fromStdString(bimamba::base::latest_checkpoint(runDir.toStdString())).isEmpty());
    }

    // Under tests/remote/slurm_fixture.sh too (ctest remote_slurm_gui): Slurm's
    // states in the Runs tab, and a run launched by the CLI found on start-up.
    void slurmStatesInTheRunsTab() {
        if (qEnvironmentVariableIsEmpty("SLURM_CONF")) QSKIP("no Slurm fixture (ctest -R remote_slurm_gui)");
        const QString cfgFile = QDir(ws_).filePath("slurm-tiny.json");
        QFile cf(cfgFile);
        QVERIFY(cf.open(QIODevice::WriteOnly));
        cf.write(QJsonDocument(tinyConfig(data_, 20)).toJson());
        cf.close();
        QProcess cli;
        cli.start(cli_, {"remote", "launch", "--host", "later", "--config", cfgFile, "--name", "from-cli",
                         "--workspace", ws_});
        QVERIFY(cli.waitForFinished(60000));
        QVERIFY2(cli.exitCode() == 0, cli.readAllStandardError().constData());

        MainWindow w(ws_, cli_);
        w.manager()->setRemotePollInterval(300);
        auto* model = w.runsPanel()->model();
        QCOMPARE(cell(model, "from-cli", RunTableModel::Host), QString("later"));
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "from-cli", RunTableModel::Status), QString("pending"), 30000);
        const qint64 waiting = w.store()->byDir(QDir(ws_).filePath("runs/from-cli"))->id;
        QVERIFY2(w.store()->byId(waiting)->message.contains("PENDING (BeginTime)"),
                 qPrintable(w.store()->byId(waiting)->message));
        QString err;
        QVERIFY2(w.manager()->stop(waiting, &err), qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(waiting)->status, QString("stopped"), 30000);
        // nothing to resume from: refused, the run stays as it was
        QSignalSpy failed(w.manager(), &RunManager::operationFailed);
        QVERIFY(w.manager()->resume(waiting, &err));
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
        QVERIFY2(failed.first().at(1).toString().contains("no checkpoint"),
                 qPrintable(failed.first().at(1).toString()));
        QCOMPARE(w.store()->byId(waiting)->status, QString("stopped"));

        const qint64 broken =
            w.manager()->launchRemote("broken", "", "custom", tinyConfig(data_, 20), "broken", false, &err);
        QVERIFY2(broken >= 0, qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(broken)->status, QString("failed"), 60000);
        QVERIFY2(w.store()->byId(broken)->message.contains("FAILED (NonZeroExitCode)"),
                 qPrintable(w.store()->byId(broken)->message));

        const qint64 id =
            w.manager()->launchRemote("on-cluster", "", "custom", tinyConfig(data_, 20), "cluster", true, &err);
        QVERIFY2(id >= 0, qPrintable(err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(id)->status, QString("finished"), 120000);
        QCOMPARE(w.store()->byId(id)->step, qint64(20));
        QVERIFY(w.store()->byId(id)->remote.contains("\"job_id\""));

        // The README's screenshot of runs on a Slurm target (scripts/screenshots.sh --slurm).
        if (const QByteArray shot = qgetenv("BIMAMBA_SCREENSHOT"); !shot.isEmpty()) {
            w.resize(1500, 880);
            w.show();
            w.runsPanel()->selectRun(id);
            QTest::qWait(1500);
            QVERIFY(w.grab().save(QString::fromLocal8Bit(shot)));
        }
    }
};

QTEST_MAIN(TestGuiRemote)
#include "test_gui_remote.moc"
