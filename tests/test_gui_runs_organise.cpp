// GUI tests (offscreen) of organising and watching runs (issue #14 items 1,
// 4, 6): tags, notes and archiving in the run store (persisted, editable in
// the table and the side panel, `tag:X` in the filter); the metric picker,
// log x, x by lineage tokens, one y axis per loss kind and export of a plot
// as shown; NaN / divergence / stall alerts, on synthetic metric streams
// (core/base/RunAlerts.h) and in the Runs tab (mark + one notification per
// event).
#include "core/base/Lineage.h"
#include "core/base/RunAlerts.h"
#include "ui/DesktopNotifier.h"
#include "ui/JsonFile.h"
#include "ui/MainWindow.h"
#include "ui/MetricsPlot.h"
#include "ui/MetricsReader.h"
#include "ui/RunManager.h"
#include "ui/RunPicker.h"
#include "ui/RunStore.h"
#include "ui/RunTableModel.h"
#include "ui/RunsPanel.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDBusConnection>
#include <QDBusConnectionInterface>
#include <QDialog>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QImage>
#include <QLineEdit>
#include <QItemSelectionModel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QStandardPaths>
#include <QSettings>
#include <QSpinBox>
#include <QStatusBar>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <qcustomplot.h>

#include <cmath>
#include <unistd.h>

using namespace bimamba;
using namespace bimamba::ui;
using namespace bimamba::base;

namespace {
void appendLine(const QString& path, const QByteArray& line) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::Append));
    f.write(line);
}
QByteArray trainLine(int step, double loss, double time, qint64 tokens = -1) {
    return QStringLiteral("{\"type\":\"train\",\"step\":%1,\"tokens\":%2,\"loss\":%3,\"lr\":0.001,\"time\":%4}\n")
        .arg(step)
        .arg(tokens < 0 ? qint64(step) * 100 : tokens)
        .arg(std::isnan(loss) ? QStringLiteral("null") : QString::number(loss, 'g', 10))
        .arg(time)
        .toUtf8();
}
// A finished run folder under ws/runs/NAME with a config and optional metrics.
QString makeRun(const QString& ws, const QString& name, const QJsonObject& config, const QByteArray& metrics = {},
                const QString& state = "finished") {
    const QString dir = QDir(ws).filePath("runs/" + name);
    QDir().mkpath(dir);
    writeJsonFile(QDir(dir).filePath("train_config.json"), config);
    writeJsonFile(
        QDir(dir).filePath("status.json"),
        QJsonObject{
            {"state", state}, {"pid", state == "running" ? qint64(getpid()) : 1}, {"step", 10}, {"total_steps", 10}});
    if (!metrics.isEmpty()) appendLine(QDir(dir).filePath("metrics.jsonl"), metrics);
    return dir;
}
QStringList shownNames(QTableView* t) {
    QStringList n;
    for (int r = 0; r < t->model()->rowCount(); ++r)
        n << t->model()->index(r, RunTableModel::Name).data(Qt::EditRole).toString();
    return n;
}
QModelIndex shownIndex(QTableView* t, const QString& name, int col) {
    for (int r = 0; r < t->model()->rowCount(); ++r)
        if (t->model()->index(r, RunTableModel::Name).data(Qt::EditRole).toString() == name)
            return t->model()->index(r, col);
    return {};
}
}  // namespace

// A stand-in for the desktop's notification daemon on a private bus: records
// the freedesktop Notify calls it gets.
class FakeNotificationServer : public QObject {
    Q_OBJECT
    Q_CLASSINFO("D-Bus Interface", "org.freedesktop.Notifications")
public:
    QStringList received;  // "app|summary|body"
public slots:
    uint Notify(const QString& app, uint, const QString&, const QString& summary, const QString& body,
                const QStringList&, const QVariantMap&, int) {
        received << app + "|" + summary + "|" + body;
        return uint(received.size());
    }
};

// A private D-Bus daemon for the test's lifetime (empty address when the
// system has no dbus-daemon).
struct PrivateBus {
    QProcess daemon;
    QString address;
    PrivateBus() {
        const QString exe = QStandardPaths::findExecutable("dbus-daemon");
        if (exe.isEmpty()) return;
        daemon.start(exe, {"--session", "--nofork", "--print-address=1"});
        if (!daemon.waitForStarted(5000) || !daemon.waitForReadyRead(5000)) return;
        address = QString::fromUtf8(daemon.readLine()).trimmed();
    }
    ~PrivateBus() {
        daemon.kill();
        daemon.waitForFinished(2000);
    }
};

class TestGuiRunsOrganise : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("BiMambaTest");
        QCoreApplication::setApplicationName("test_gui_runs_organise");
        QSettings().clear();  // default alert rules, whatever an earlier run saved
    }

    // Tags, notes and the archived flag live in the run store, survive a
    // reopen, and are never undone by an update() of a record read before
    // the edit (what RunManager's refreshes do all the time).
    void annotationsPersistInTheStore() {
        QTemporaryDir tmp;
        const QString db = QDir(tmp.path()).filePath("workbench.sqlite");
        qint64 a = -1, b = -1;
        {
            RunStore s;
            QVERIFY(s.open(db));
            RunRecord r;
            r.name = "a";
            r.runDir = "/x/a";
            a = s.add(r);
            r.name = "b";
            r.runDir = "/x/b";
            b = s.add(r);
            const RunRecord stale = *s.byId(a);
            QVERIFY(s.setTags(a, parseTags("baseline, kd  KD,,paper")));
            QVERIFY(s.setNotes(a, "lr too high?\nrerun with 1e-4"));
            QVERIFY(s.setArchived(b, true));
            QVERIFY(s.setAlert(b, "stalled: no new metric"));
            RunRecord upd = stale;
            upd.status = "finished";
            QVERIFY(s.update(upd));             // a refresh from before the edits
            QVERIFY(!s.setTags(12345, {"x"}));  // no such run
        }
        RunStore s;
        QVERIFY(s.open(db));
        const RunRecord ra = *s.byId(a), rb = *s.byId(b);
        QCOMPARE(ra.tags, (QStringList{"baseline", "kd", "paper"}));  // "KD" repeats "kd"
        QCOMPARE(ra.notes, QString("lr too high?\nrerun with 1e-4"));
        QCOMPARE(ra.status, QString("finished"));
        QVERIFY(!ra.archived);
        QVERIFY(rb.archived);
        QCOMPARE(rb.alert, QString("stalled: no new metric"));
        QVERIFY(rb.tags.isEmpty());
    }

    // The user's path: tags typed into the table cell and the side panel,
    // notes typed into the side panel, `tag:X` in the filter, Archive and
    // "Show archived"; all still there in a new window on the same workspace.
    void tagsNotesAndArchiveInTheRunsTab() {
        QTemporaryDir ws;
        const QJsonObject cfg{{"data", "/d"}, {"loss", "ce"}, {"steps", 10}};
        makeRun(ws.path(), "base-s1", cfg);
        makeRun(ws.path(), "base-s2", cfg);
        makeRun(ws.path(), "kd-s1", cfg);
        {
            MainWindow w(ws.path(), "/nonexistent/bimamba");
            w.resize(1400, 900);
            w.show();
            RunsPanel* p = w.runsPanel();
            QTableView* t = p->table();
            QTRY_COMPARE_WITH_TIMEOUT(t->model()->rowCount(), 3, 5000);
            // Type into the Tags cell through its editor.
            const QModelIndex cellIdx = shownIndex(t, "base-s1", RunTableModel::Tags);
            QVERIFY(cellIdx.isValid());
            t->setCurrentIndex(cellIdx);
            t->edit(cellIdx);
            auto* editor = t->viewport()->findChild<QLineEdit*>();
            QVERIFY(editor);
            editor->selectAll();
            QTest::keyClicks(editor, "baseline, seed-study");
            QTest::keyClick(editor, Qt::Key_Return);
            const qint64 s1 = w.store()->byDir(QDir(ws.path()).filePath("runs/base-s1"))->id;
            QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(s1)->tags, (QStringList{"baseline", "seed-study"}), 2000);
            QCOMPARE(shownIndex(t, "base-s1", RunTableModel::Tags).data().toString(), QString("baseline, seed-study"));
            // The side panel: tags and notes of the selected run.
            const qint64 s2 = w.store()->byDir(QDir(ws.path()).filePath("runs/base-s2"))->id;
            p->selectRun(s2);
            QVERIFY(p->tagsEdit()->isVisible());
            QCOMPARE(p->tagsEdit()->text(), QString());
            p->tagsEdit()->setFocus();
            QTest::keyClicks(p->tagsEdit(), "baseline");
            QTest::keyClick(p->tagsEdit(), Qt::Key_Return);
            QCOMPARE(w.store()->byId(s2)->tags, QStringList{"baseline"});
            p->notesEdit()->setFocus();
            QTest::keyClicks(p->notesEdit(), "diverged at 3k steps");
            QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(s2)->notes, QString("diverged at 3k steps"), 3000);
            QCOMPARE(shownIndex(t, "base-s2", RunTableModel::Notes).data().toString(), QString("diverged at 3k steps"));
            // Selecting the other run shows its own tags, not the last typed.
            p->selectRun(s1);
            QCOMPARE(p->tagsEdit()->text(), QString("baseline, seed-study"));
            QCOMPARE(p->notesEdit()->toPlainText(), QString());
            // The filter: tag:X is the whole tag; bare words find notes.
            auto* filter = p->findChild<QLineEdit*>("runFilter");
            filter->setText("tag:baseline");
            QCOMPARE(shownNames(t).size(), 2);
            filter->setText("tag:BASELINE tag:seed-study");
            QCOMPARE(shownNames(t), QStringList{"base-s1"});
            filter->setText("tag:base");
            QCOMPARE(shownNames(t).size(), 0);
            filter->setText("diverged");
            QCOMPARE(shownNames(t), QStringList{"base-s2"});
            filter->clear();
            // Archive hides; Show archived lists it in grey italics; Unarchive restores.
            p->selectRun(s2);
            QCOMPARE(p->archiveAction()->text(), QString("Archive"));
            p->archiveAction()->trigger();
            QVERIFY(w.store()->byId(s2)->archived);
            QCOMPARE(shownNames(t).size(), 2);
            QVERIFY(!shownNames(t).contains("base-s2"));
            p->showArchivedBox()->setChecked(true);
            QCOMPARE(shownNames(t).size(), 3);
            const QModelIndex arch = shownIndex(t, "base-s2", RunTableModel::Name);
            QCOMPARE(arch.data().toString(), QString("base-s2 (archived)"));
            QVERIFY(arch.data(Qt::FontRole).value<QFont>().italic());
            p->showArchivedBox()->setChecked(false);
            // The run pickers of the other tabs leave archived runs out.
            {
                RunPicker picker(w.manager(), "Test.");
                QStringList listed;
                for (int i = 0; i < picker.list()->count(); ++i) listed << picker.list()->item(i)->text();
                QCOMPARE(listed.size(), 2);
                QVERIFY2(!listed.join("|").contains("base-s2"), qPrintable(listed.join("|")));
            }
            // Several runs selected: the tags editor holds the tags they share;
            // adding one adds it to each, removing one removes it from each.
            const qint64 k1 = w.store()->byDir(QDir(ws.path()).filePath("runs/kd-s1"))->id;
            QVERIFY(w.store()->setTags(k1, {"baseline", "kd"}));
            t->clearSelection();
            for (const QString& name : {QString("base-s1"), QString("kd-s1")})
                t->selectionModel()->select(shownIndex(t, name, RunTableModel::Name),
                                            QItemSelectionModel::Select | QItemSelectionModel::Rows);
            QTRY_COMPARE_WITH_TIMEOUT(p->tagsEdit()->text(), QString("baseline"), 2000);
            QVERIFY(p->tagsEdit()->isVisible());
            QVERIFY(!p->notesEdit()->isEnabled());
            p->tagsEdit()->setFocus();
            p->tagsEdit()->selectAll();
            QTest::keyClicks(p->tagsEdit(), "paper-table5");  // "baseline" removed, "paper-table5" added
            QTest::keyClick(p->tagsEdit(), Qt::Key_Return);
            QCOMPARE(w.store()->byId(s1)->tags, (QStringList{"seed-study", "paper-table5"}));
            QCOMPARE(w.store()->byId(k1)->tags, (QStringList{"kd", "paper-table5"}));
            QCOMPARE(w.store()->byId(s2)->tags, QStringList{"baseline"});  // not selected: untouched
            p->selectRun(k1);  // one run again: its own tags, notes editable
            QVERIFY(p->notesEdit()->isEnabled());
            QCOMPARE(p->tagsEdit()->text(), QString("kd, paper-table5"));
        }
        // A new window on the workspace: all of it persisted.
        MainWindow w(ws.path(), "/nonexistent/bimamba");
        QTableView* t = w.runsPanel()->table();
        QTRY_COMPARE_WITH_TIMEOUT(t->model()->rowCount(), 2, 5000);  // base-s2 stays archived
        QCOMPARE(shownIndex(t, "base-s1", RunTableModel::Tags).data().toString(), QString("seed-study, paper-table5"));
        w.runsPanel()->showArchivedBox()->setChecked(true);
        QCOMPARE(shownIndex(t, "base-s2", RunTableModel::Notes).data().toString(), QString("diverged at 3k steps"));
        const qint64 s2 = w.store()->byDir(QDir(ws.path()).filePath("runs/base-s2"))->id;
        w.runsPanel()->selectRun(s2);
        QCOMPARE(w.runsPanel()->archiveAction()->text(), QString("Unarchive"));
        w.runsPanel()->archiveAction()->trigger();
        QVERIFY(!w.store()->byId(s2)->archived);
    }

    // The alert rules on synthetic streams.
    void alertsOnSyntheticStreams() {
        // NaN: one alert per streak of non-finite losses.
        {
            RunAlertMonitor m;
            QVERIFY(m.add_row(1, 5.0, 1).empty());
            auto a = m.add_row(2, NAN, 2);
            QCOMPARE(int(a.size()), 1);
            QCOMPARE(int(a[0].kind), int(AlertKind::NaN));
            QCOMPARE(a[0].step, int64_t(2));
            QVERIFY(m.add_row(3, NAN, 3).empty());  // the same event
            QVERIFY(m.add_row(4, INFINITY, 4).empty());
            QVERIFY(m.add_row(5, 4.0, 5).empty());
            QCOMPARE(int(m.add_row(6, INFINITY, 6).size()), 1);  // a new one
            QVERIFY(QString::fromStdString(m.active()).startsWith("Inf loss"));
        }
        // The trainer stops on a NaN without writing the line: its failure message.
        {
            RunAlertMonitor m;
            const std::string msg =
                "exit code 3: loss is NaN at step 12; stopped without saving; the last good "
                "checkpoint is step_00000010";
            auto a = m.add_failure(msg);
            QCOMPARE(int(a.size()), 1);
            QVERIFY2(a[0].text.find("loss is NaN at step 12") != std::string::npos, a[0].text.c_str());
            QVERIFY(m.add_failure(msg).empty());
            QVERIFY(RunAlertMonitor().add_failure("exit code 1: data folder missing").empty());
            auto g = RunAlertMonitor().add_failure(
                "exit code 3: gradient norm is not finite at step 7; stopped without saving; the last good checkpoint "
                "is step_00000005");
            QCOMPARE(int(g.size()), 1);
            QVERIFY2(g[0].text.rfind("NaN gradient: ", 0) == 0, g[0].text.c_str());
        }
        // Divergence: over 1.5 × the moving minimum of the smoothed loss, once
        // per rise; a single spike does not count; it re-arms near the minimum.
        {
            AlertRules rules;
            rules.divergence_factor = 1.5;
            RunAlertMonitor m(rules);
            int step = 0;
            std::vector<RunAlert> all;
            auto feed = [&](double loss) {
                for (auto& a : m.add_row(++step, loss, step)) all.push_back(a);
            };
            for (int i = 0; i < 50; ++i) feed(2.0 + 3.0 * std::exp(-i / 8.0));  // 5 → 2
            QVERIFY(all.empty());
            feed(3.6);  // a spike: smoothed 0.4·3.6 + 0.6·2.0 < 3.0
            for (int i = 0; i < 5; ++i) feed(2.0);
            QVERIFY(all.empty());
            for (int i = 0; i < 20; ++i) feed(2.0 + 0.2 * i);  // rising 2 → 5.8
            QCOMPARE(int(all.size()), 1);
            QCOMPARE(int(all[0].kind), int(AlertKind::Divergence));
            const int64_t firstAt = all[0].step;
            QVERIFY2(firstAt > 56 && firstAt < 76, qPrintable(QString::number(firstAt)));
            for (int i = 0; i < 10; ++i) feed(8.0);  // still diverged: the same event
            QCOMPARE(int(all.size()), 1);
            for (int i = 0; i < 10; ++i) feed(2.1);  // recovered
            QVERIFY(m.active().empty());
            for (int i = 0; i < 10; ++i) feed(4.0);
            QCOMPARE(int(all.size()), 2);
            // The minimum is a moving one: a slow drift (2 → 4 over 100 lines)
            // alerts against the whole history, not against the last 10 lines.
            AlertRules shortWindow = rules;
            shortWindow.divergence_window = 10;
            RunAlertMonitor drift(rules), drift10(shortWindow);
            int driftAlerts = 0, drift10Alerts = 0;
            for (int i = 0; i <= 100; ++i) {
                driftAlerts += int(drift.add_row(i, 2.0 + 0.02 * i, i).size());
                drift10Alerts += int(drift10.add_row(i, 2.0 + 0.02 * i, i).size());
            }
            QCOMPARE(driftAlerts, 1);
            QCOMPARE(drift10Alerts, 0);
            // Never during warm-up, whatever the first values.
            RunAlertMonitor early(rules);
            QVERIFY(early.add_row(1, 1.0, 1).empty());
            QVERIFY(early.add_row(2, 10.0, 2).empty());
        }
        // Stall: alive and idle for over stall_factor × the usual interval.
        {
            AlertRules rules;
            rules.stall_factor = 5;
            rules.stall_min_seconds = 0;
            RunAlertMonitor m(rules);
            QVERIFY(m.check_stall(1e6, true).empty());                                  // no interval known yet
            for (int i = 1; i <= 10; ++i) m.add_row(i, 3.0, i == 5 ? 48.0 : 10.0 * i);  // every 10 s, one line late
            QCOMPARE(m.usual_interval(), 10.0);
            QVERIFY(m.check_stall(45, true).empty());
            QVERIFY(m.check_stall(70, false).empty());  // ended: not stalled
            auto a = m.check_stall(70, true);
            QCOMPARE(int(a.size()), 1);
            QCOMPARE(int(a[0].kind), int(AlertKind::Stall));
            QVERIFY(m.check_stall(500, true).empty());  // the same stall
            m.add_row(11, 3.0, 110);                    // it moved again
            QVERIFY(m.active().empty());
            QCOMPARE(int(m.check_stall(60, true).size()), 1);  // a new stall
            rules.stall_min_seconds = 120;                     // the floor
            RunAlertMonitor floor(rules);
            for (int i = 1; i <= 10; ++i) floor.add_row(i, 3.0, i);
            QVERIFY(floor.check_stall(100, true).empty());
            QCOMPARE(int(floor.check_stall(121, true).size()), 1);
        }
    }

    // A live run in the Runs tab: alerts mark it in the table and notify
    // once per event; history read on opening marks but does not notify.
    void alertsInTheRunsTab() {
        QTemporaryDir ws;
        QByteArray history;
        for (int s = 1; s <= 10; ++s) history += trainLine(s, 5.0 - 0.2 * s, 0.2 * s);
        const QString dir = makeRun(ws.path(), "live", QJsonObject{{"data", "/d"}, {"steps", 100}}, history, "running");
        const QString m = QDir(dir).filePath("metrics.jsonl");
        {
            MainWindow w(ws.path(), "/nonexistent/bimamba");
            w.manager()->setPollInterval(50);
            AlertRules rules;
            rules.divergence_factor = 1.5;
            rules.stall_factor = 4;
            rules.stall_min_seconds = 1.0;
            w.manager()->setAlertRules(rules);
            w.resize(1400, 900);
            w.show();
            RunsPanel* p = w.runsPanel();
            // The desktop's notification service, on a private bus.
            PrivateBus bus;
            FakeNotificationServer daemon;
            if (!bus.address.isEmpty()) {
                QDBusConnection server = QDBusConnection::connectToBus(bus.address, "fake-notification-daemon");
                QVERIFY(server.isConnected());
                QVERIFY(server.registerService("org.freedesktop.Notifications"));
                QVERIFY(
                    server.registerObject("/org/freedesktop/Notifications", &daemon, QDBusConnection::ExportAllSlots));
                p->notifier()->setBus(QDBusConnection::connectToBus(bus.address, "workbench"));
                QCOMPARE(p->notifier()->channel(), DesktopNotifier::Channel::Freedesktop);
            } else {
                qWarning("no dbus-daemon on this system: the freedesktop notification path is not exercised");
            }
            auto* model = p->model();
            const qint64 id = w.store()->byDir(dir)->id;
            p->selectRun(id);
            const int row = model->rowOf(id);
            auto alertCell = [&] { return model->index(model->rowOf(id), RunTableModel::Alert).data().toString(); };
            QTRY_VERIFY_WITH_TIMEOUT(w.manager()->metrics(id)->train().rows == 10, 5000);
            QVERIFY(row >= 0);
            // Healthy lines, appended live, every 0.2 s of run time.
            for (int s = 11; s <= 20; ++s) appendLine(m, trainLine(s, 3.0, 0.2 * s));
            QTest::qWait(300);
            QCOMPARE(alertCell(), QString());
            QVERIFY(p->notifications().isEmpty());
            // Diverging.
            for (int s = 21; s <= 30; ++s) appendLine(m, trainLine(s, 3.0 + 0.5 * (s - 20), 0.2 * s));
            QTRY_VERIFY_WITH_TIMEOUT(alertCell().contains("loss diverging"), 5000);
            QCOMPARE(p->notifications().size(), 1);
            QVERIFY2(p->notifications()[0].startsWith("loss diverging: live:"), qPrintable(p->notifications()[0]));
            // No system tray on the offscreen platform: the status bar says it,
            // and the desktop's notification service gets it (checked below).
            QVERIFY(p->notifier()->channel() != DesktopNotifier::Channel::Tray);
            QVERIFY2(w.statusBar()->currentMessage().contains("loss diverging: live:"),
                     qPrintable(w.statusBar()->currentMessage()));
            if (!bus.address.isEmpty()) {
                QTRY_COMPARE_WITH_TIMEOUT(daemon.received.size(), 1, 5000);
                QVERIFY2(daemon.received[0].startsWith("BiMamba Workbench|Run alert: loss diverging|live:"),
                         qPrintable(daemon.received[0]));
            }
            QVERIFY(!model->index(model->rowOf(id), RunTableModel::Name).data(Qt::DecorationRole).isNull());
            QVERIFY(model->index(model->rowOf(id), RunTableModel::Alert)
                        .data(Qt::ToolTipRole)
                        .toString()
                        .contains("minimum"));
            // A NaN loss (null in the JSON).
            appendLine(m, trainLine(31, NAN, 6.2));
            QTRY_VERIFY_WITH_TIMEOUT(alertCell().contains("NaN loss"), 5000);
            QCOMPARE(p->notifications().size(), 2);
            if (!bus.address.isEmpty()) QTRY_COMPARE_WITH_TIMEOUT(daemon.received.size(), 2, 5000);
            // The filter finds alerted runs.
            p->findChild<QLineEdit*>("runFilter")->setText("alert:nan");
            QCOMPARE(p->table()->model()->rowCount(), 1);
            p->findChild<QLineEdit*>("runFilter")->clear();
            // Nothing new for > 4 × 0.2 s and > 1 s: stalled, once.
            QTRY_VERIFY_WITH_TIMEOUT(alertCell().contains("stalled"), 6000);
            QCOMPARE(p->notifications().size(), 3);
            QVERIFY(p->notifications()[2].startsWith("stalled: live:"));
            QTest::qWait(1500);
            QCOMPARE(p->notifications().size(), 3);
            // A new line ends the stall.
            appendLine(m, trainLine(32, 3.0, 6.4));
            QTRY_VERIFY_WITH_TIMEOUT(!alertCell().contains("stalled"), 5000);
            QCOMPARE(p->notifications().size(), 3);
        }
        QTest::qWait(1100);  // the file is older than the next window
        // Reopened: the history marks the run again but notifies nothing.
        MainWindow w(ws.path(), "/nonexistent/bimamba");
        w.manager()->setPollInterval(50);
        const qint64 id = w.store()->byDir(dir)->id;
        auto* model = w.runsPanel()->model();
        QTRY_VERIFY_WITH_TIMEOUT(!model->index(model->rowOf(id), RunTableModel::Alert).data().toString().isEmpty(),
                                 5000);
        QTest::qWait(300);
        QVERIFY2(w.runsPanel()->notifications().isEmpty(), qPrintable(w.runsPanel()->notifications().join("\n")));
    }

    // The picker offers every scalar key the selected runs have (not a fixed
    // list), new keys included as they arrive.
    void metricPickerListsEveryKey() {
        QTemporaryDir tmp;
        const QString a = QDir(tmp.path()).filePath("a.jsonl"), b = QDir(tmp.path()).filePath("b.jsonl");
        appendLine(a,
                   "{\"type\":\"train\",\"step\":1,\"tokens\":100,\"loss\":5,\"lr\":0.001,\"gpu_util\":87,\"time\":1}\n"
                   "{\"type\":\"val\",\"step\":1,\"tokens\":100,\"val_loss\":4.5,\"val_ppl\":90,\"time\":1.5}\n");
        appendLine(b, "{\"type\":\"train\",\"step\":1,\"tokens\":100,\"loss\":6,\"kd_top1\":0.4,\"time\":2}\n");
        MetricsReader ra(a), rb(b);
        ra.poll();
        rb.poll();
        MetricsPlot plot;
        plot.resize(900, 500);
        plot.show();
        plot.setRuns(QVector<PlotRun>{{"a", &ra, 0, "CE"}, {"b", &rb, 0, "CE"}});
        auto* box = plot.findChild<QComboBox*>("metricBox");
        QVERIFY(box);
        QStringList items;
        for (int i = 0; i < box->count(); ++i) items << box->itemData(i).toString();
        for (const char* want : {"train/loss", "train/lr", "train/gpu_util", "train/kd_top1", "train/tokens",
                                 "train/time", "val/val_loss", "val/val_ppl", "val/time"})
            QVERIFY2(items.contains(want), qPrintable(want + (" not in " + items.join(","))));
        QVERIFY(!items.contains("train/step"));
        QCOMPARE(box->itemText(items.indexOf("val/time")), QString("time (validation)"));
        QCOMPARE(box->itemText(items.indexOf("train/loss")), QString("Training loss"));
        // Choosing an item draws that key.
        box->setCurrentIndex(items.indexOf("train/gpu_util"));
        emit box->activated(box->currentIndex());
        QCOMPARE(plot.metric(), QString("gpu_util"));
        QCOMPARE(plot.displayedPoints(0), 1);
        QCOMPARE(plot.displayedPoints(1), 0);  // run b has no gpu_util
        // A key that appears later is offered after the next refresh.
        appendLine(b, "{\"type\":\"train\",\"step\":2,\"tokens\":200,\"loss\":5.5,\"rss_mb\":812,\"time\":3}\n");
        rb.poll();
        plot.refresh();
        items.clear();
        for (int i = 0; i < box->count(); ++i) items << box->itemData(i).toString();
        QVERIFY(items.contains("train/rss_mb"));
        QCOMPARE(plot.metric(), QString("gpu_util"));  // the choice stays
    }

    // A log axis over less than two decades (perplexity 80–1900) is labelled
    // down to its bottom: 100, 200, 500, … (QCustomPlot alone falls back to
    // linear steps there: 500, 1000, 1500, nothing below 500).
    void logAxisTicksCoverTheRange() {
        QTemporaryDir tmp;
        const QString path = QDir(tmp.path()).filePath("m.jsonl");
        QByteArray lines;
        for (int s = 1; s <= 20; ++s)
            lines += QStringLiteral("{\"type\":\"val\",\"step\":%1,\"val_ppl\":%2}\n")
                         .arg(s * 10)
                         .arg(80.0 * std::pow(1900.0 / 80.0, (s - 1) / 19.0))
                         .toUtf8();
        appendLine(path, lines);
        MetricsReader r(path);
        r.poll();
        MetricsPlot plot;
        plot.resize(700, 500);
        plot.show();
        plot.setRuns({{"run", &r}});
        plot.setMetric("val_ppl");
        plot.setLogScale(true);
        plot.plot()->replot(QCustomPlot::rpImmediateRefresh);
        const QVector<double> ticks = plot.plot()->yAxis->tickVector();
        const QCPRange range = plot.plot()->yAxis->range();
        QStringList shown;
        for (double t : ticks)
            if (range.contains(t)) shown << QString::number(t);
        QVERIFY2(shown.contains("100") && shown.contains("200") && shown.contains("1000"), qPrintable(shown.join(" ")));
        plot.setLogX(true);
        plot.plot()->replot(QCustomPlot::rpImmediateRefresh);
        QVERIFY(plot.plot()->xAxis->tickVector().contains(100.0));  // steps 10–200
        QCOMPARE(plot.displayedPoints(0), 20);
    }

    // The lineage: a student initialised (init_from) from a teacher's
    // checkpoint counts its tokens from the teacher's at that checkpoint,
    // also when the workspace moved; a grandchild adds both.
    void lineageTokens() {
        QTemporaryDir ws;
        QByteArray tm;
        for (int s = 1; s <= 30; ++s) tm += trainLine(s, 6.0 - 0.1 * s, s, s * 1024);
        const QString teacher = makeRun(
            ws.path(), "teacher", QJsonObject{{"data", "/d"}, {"loss", "ce"}, {"batch_size", 4}, {"seq_len", 256}}, tm);
        const QString ck = QDir(teacher).filePath("checkpoints/step_00000020");
        QDir().mkpath(ck);
        writeJsonFile(QDir(ck).filePath("trainer_state.json"), QJsonObject{{"step", 20}, {"tokens", 20480}});
        // No trainer_state.json: the step × the config's tokens per step (4 × 256).
        QDir().mkpath(QDir(teacher).filePath("checkpoints/step_00000030"));
        QFile latest(QDir(teacher).filePath("checkpoints/latest"));
        QVERIFY(latest.open(QIODevice::WriteOnly));
        latest.write("step_00000030\n");
        latest.close();
        QByteArray sm;
        for (int s = 1; s <= 10; ++s) sm += trainLine(s, 4.0 - 0.05 * s, s, s * 512);
        const QString student = makeRun(ws.path(), "student",
                                        QJsonObject{{"data", "/d"},
                                                    {"loss", "soft_ce"},
                                                    {"teacher", teacher},
                                                    {"init_from", ck},
                                                    {"batch_size", 2},
                                                    {"seq_len", 256}},
                                        sm);
        QCOMPARE(lineage_token_offset(student.toStdString()), 20480.0);
        QCOMPARE(lineage_token_offset(teacher.toStdString()), 0.0);
        // init_from = the run folder: its latest checkpoint (step 30: 30 × 1024).
        const QString fromRun = makeRun(ws.path(), "from-run", QJsonObject{{"data", "/d"}, {"init_from", teacher}});
        QCOMPARE(lineage_token_offset(fromRun.toStdString()), 30720.0);
        // Moved: a path that is gone, matched to the sibling run of that name.
        const QString moved =
            makeRun(ws.path(), "moved",
                    QJsonObject{{"data", "/d"}, {"init_from", "/gone/ws/runs/teacher/checkpoints/step_00000020"}});
        QCOMPARE(lineage_token_offset(moved.toStdString()), 20480.0);
        // A grandchild from the student's step 10 (5120 tokens there).
        const QString sck = QDir(student).filePath("checkpoints/step_00000010");
        QDir().mkpath(sck);
        const QString grand = makeRun(ws.path(), "grand", QJsonObject{{"data", "/d"}, {"init_from", sck}});
        QCOMPARE(lineage_token_offset(grand.toStdString()), 20480.0 + 5120.0);
        QCOMPARE(int(run_lineage(grand.toStdString()).size()), 2);
        // A parent whose config this version cannot read: its metrics at the step.
        QByteArray om;
        for (int s = 1; s <= 8; ++s) om += trainLine(s, 5.0, s, s * 300);
        const QString odd = makeRun(ws.path(), "odd", QJsonObject{{"data", "/d"}, {"future_field", 1}}, om);
        QDir().mkpath(QDir(odd).filePath("checkpoints/step_00000005"));
        const QString fromOdd =
            makeRun(ws.path(), "from-odd",
                    QJsonObject{{"data", "/d"}, {"init_from", QDir(odd).filePath("checkpoints/step_00000005")}});
        QCOMPARE(lineage_token_offset(fromOdd.toStdString()), 1500.0);
        // Not one of our runs: no offset.
        const QString imported = makeRun(ws.path(), "imp", QJsonObject{{"data", "/d"}, {"init_from", "/models/hf"}});
        QCOMPARE(lineage_token_offset(imported.toStdString()), 0.0);

        // In the Runs tab: teacher and student overlaid by lineage tokens, on
        // separate y axes (CE vs soft-target CE); log x; export as shown.
        MainWindow w(ws.path(), "/nonexistent/bimamba");
        w.resize(1400, 900);
        w.show();
        RunsPanel* p = w.runsPanel();
        QTableView* t = p->table();
        QTRY_COMPARE_WITH_TIMEOUT(t->model()->rowCount(), 8, 5000);
        p->findChild<QLineEdit*>("runFilter")->setText("teacher");  // name or teacher field: both
        QCOMPARE(t->model()->rowCount(), 2);
        t->selectAll();
        MetricsPlot* lp = p->lossPlot();
        QTRY_COMPARE_WITH_TIMEOUT(lp->curveCount(), 2, 3000);
        lp->setXAxis("lineage");
        int si = -1, ti = -1;
        for (int i = 0; i < 2; ++i) (lp->plot()->graph(i)->name().startsWith("student") ? si : ti) = i;
        QVERIFY(si >= 0 && ti >= 0);
        QCOMPARE(lp->plot()->graph(si)->data()->begin()->key, 20480.0 + 512);
        QCOMPARE(lp->plot()->graph(ti)->data()->begin()->key, 1024.0);
        // Two loss kinds: two value axes, labelled, the curves on different ones.
        QCOMPARE(lp->valueAxes().size(), 2);
        QVERIFY(lp->curveAxis(si) != lp->curveAxis(ti));
        QVERIFY(lp->plot()->yAxis2->visible());
        QVERIFY2(lp->curveAxis(si)->label().contains("soft-target CE"), qPrintable(lp->curveAxis(si)->label()));
        QVERIFY(lp->curveAxis(ti)->label().endsWith("— CE"));
        // Each axis fits its own curve (student 3.5–3.95, teacher 3–5.9).
        QVERIFY(lp->curveAxis(si)->range().upper < 4.1);
        QVERIFY(lp->curveAxis(ti)->range().upper > 5.8);
        // Names say the kind; the legend moves out of the narrowed axis rect,
        // below it, whole inside the plot.
        QVERIFY2(lp->plot()->graph(si)->name().endsWith("— soft-target CE"), qPrintable(lp->plot()->graph(si)->name()));
        QCOMPARE(lp->plot()->plotLayout()->rowCount(), 2);
        QCOMPARE(lp->plot()->plotLayout()->element(1, 0), static_cast<QCPLayoutElement*>(lp->plot()->legend));
        lp->plot()->replot();
        QVERIFY(lp->plot()->rect().contains(lp->plot()->legend->outerRect()));
        for (int i = 0; i < lp->plot()->legend->itemCount(); ++i)  // no entry cut at the plot's edge
            QVERIFY(lp->plot()->rect().contains(lp->plot()->legend->item(i)->outerRect()));
        QVERIFY(lp->plot()->legend->outerRect().top() >= lp->plot()->axisRect()->outerRect().bottom());
        // Validation perplexity is one quantity: one axis.
        QCOMPARE(p->pplPlot()->valueAxes().size(), 1);
        // val_loss is CE for all runs: one axis, the legend back inside.
        lp->setMetric("val_loss");
        QCOMPARE(lp->valueAxes().size(), 1);
        QVERIFY(!lp->plot()->yAxis2->visible());
        QCOMPARE(lp->plot()->plotLayout()->rowCount(), 1);
        QVERIFY(lp->plot()->axisRect()->insetLayout()->elements(false).contains(lp->plot()->legend));
        lp->setMetric("loss");
        // Log x, smoothed, exported as shown.
        lp->setLogX(true);
        QCOMPARE(lp->plot()->xAxis->scaleType(), QCPAxis::stLogarithmic);
        lp->setSmoothing(0.8);
        QCOMPARE(lp->plot()->graph(si)->data()->begin()->key, 20480.0 + 512);
        QTemporaryDir out;
        QString err;
        for (const char* ext : {"png", "svg", "pdf"})
            QVERIFY2(lp->exportTo(QDir(out.path()).filePath(QStringLiteral("loss.%1").arg(ext)), &err),
                     qPrintable(err));
        const QImage png(QDir(out.path()).filePath("loss.png"));
        QCOMPARE(png.size(), lp->plot()->size() * 2);  // as shown, at 2× for print
        QFile svg(QDir(out.path()).filePath("loss.svg"));
        QVERIFY(svg.open(QIODevice::ReadOnly));
        const QByteArray svgText = svg.readAll();
        QVERIFY(svgText.contains("<svg"));
        QVERIFY2(svgText.contains("soft-target CE"), "the second axis' label is in the exported figure");
        QVERIFY(svgText.contains("student"));
        QFile pdf(QDir(out.path()).filePath("loss.pdf"));
        QVERIFY(pdf.open(QIODevice::ReadOnly));
        QVERIFY(pdf.read(5) == "%PDF-");
        QVERIFY(!lp->exportTo(QDir(out.path()).filePath("loss.bmpx"), &err));
    }

    // Alerts… sets the divergence factor and the stall factor and floor; the
    // next window starts with them.
    void alertRulesDialogSetsTheFactors() {
        QTemporaryDir ws;
        {
            MainWindow w(ws.path(), "/nonexistent/bimamba");
            w.show();
            QCOMPARE(w.manager()->alertRules().divergence_factor, AlertRules{}.divergence_factor);
            QTimer::singleShot(0, [] {
                QDialog* dlg = nullptr;
                for (QWidget* tl : QApplication::topLevelWidgets())
                    if (auto* d = qobject_cast<QDialog*>(tl); d && d->isVisible()) dlg = d;
                QVERIFY(dlg);
                dlg->findChild<QDoubleSpinBox*>("divergenceFactor")->setValue(2.5);
                dlg->findChild<QDoubleSpinBox*>("stallFactor")->setValue(10);
                dlg->findChild<QSpinBox*>("stallMinSeconds")->setValue(300);
                dlg->accept();
            });
            w.runsPanel()->alertRulesAction()->trigger();
            QCOMPARE(w.manager()->alertRules().divergence_factor, 2.5);
            QCOMPARE(w.manager()->alertRules().stall_factor, 10.0);
            QCOMPARE(w.manager()->alertRules().stall_min_seconds, 300.0);
        }
        MainWindow w(ws.path(), "/nonexistent/bimamba");
        QCOMPARE(w.manager()->alertRules().divergence_factor, 2.5);
        QCOMPARE(w.manager()->alertRules().stall_min_seconds, 300.0);
        QSettings().clear();
    }
};

QTEST_MAIN(TestGuiRunsOrganise)
#include "test_gui_runs_organise.moc"
