// GUI tests (offscreen): run store, incremental metrics, live plots, the
// new-run dialog (validation, launch), stop / resume, failure display,
// re-attach after reopening, import.
#include "ui/MainWindow.h"
#include "ui/MetricsPlot.h"
#include "ui/MetricsReader.h"
#include "ui/NewRunDialog.h"
#include "core/base/RunDir.h"
#include "ui/JsonFile.h"
#include "ui/RunManager.h"
#include "ui/RunStore.h"
#include "tests/support/TinyCorpus.h"
#include "ui/RunTableModel.h"
#include "ui/RunsPanel.h"
#include "ui/TrainConfigJson.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProcess>
#include <QSet>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <qcustomplot.h>

#include <cmath>
#include <unistd.h>

using namespace bimamba::ui;

// A stand-in for `bimamba train` following docs/run-directory.md, so these
// tests need no LibTorch. "eps": 1e-07 in the config makes it slow (0.15 s per
// step); a "fail_setup" key makes it fail like a setup error (exit 1).
const char* fakeTrainerScript();  // defined at the end of the file (moc must not parse it)

namespace {
QString writeFakeCli(const QString& dir) {
    const QString p = QDir(dir).filePath("bimamba");
    QFile f(p);
    f.open(QIODevice::WriteOnly);
    f.write(fakeTrainerScript());
    f.close();
    f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    return p;
}
void appendLine(const QString& path, const QByteArray& line) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::Append));
    f.write(line);
}
QJsonObject tinyConfig(const QString& data, int steps, bool slow = false) {
    QJsonObject c = trainPreset("quickstart", data);
    c["steps"] = steps;
    c["eval_every"] = 5;
    if (slow) c["eps"] = 1e-7;
    return c;
}
int rowOfName(RunTableModel* m, const QString& name) {
    for (int r = 0; r < m->rowCount(); ++r)
        if (m->index(r, RunTableModel::Name).data().toString() == name) return r;
    return -1;
}
QString cell(RunTableModel* m, const QString& name, int col) {
    const int r = rowOfName(m, name);
    return r < 0 ? QString() : m->index(r, col).data().toString();
}
}  // namespace

class TestGuiRuns : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    QString cli_, data_;

private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("BiMambaTest");
        QCoreApplication::setApplicationName("test_gui_runs");
        QVERIFY(tmp_.isValid());
        cli_ = writeFakeCli(tmp_.path());
        data_ = QDir(tmp_.path()).filePath("corpus");
        QDir().mkpath(data_);
    }

    void metricsReaderIsIncremental() {
        const QString path = QDir(tmp_.path()).filePath("m.jsonl");
        MetricsReader r(path);
        QCOMPARE(r.poll(), 0);  // no file yet
        appendLine(
            path,
            "{\"type\":\"train\",\"step\":1,\"tokens\":10,\"loss\":5.0,\"time\":1}\n{\"type\":\"train\",\"step\":2,");
        QCOMPARE(r.poll(), 1);  // the partial line waits
        QCOMPARE(r.train().rows, 1);
        appendLine(path,
                   "\"tokens\":20,\"loss\":4.0,\"time\":2}\n{\"type\":\"val\",\"step\":2,\"val_loss\":3.0,\"val_ppl\":"
                   "20.1}\n");
        QCOMPARE(r.poll(), 2);
        QCOMPARE(r.train().rows, 2);
        QCOMPARE(r.train().column("loss").at(1), 4.0);
        QCOMPARE(r.val().rows, 1);
        QVERIFY(std::isnan(r.val().column("tokens").at(0)));  // a missing field is NaN
        QCOMPARE(r.bestValPpl(), 20.1);
        const qint64 off = r.offset();
        QCOMPARE(off, QFileInfo(path).size());
        // A resumed run re-appends step 2: the last line per step wins.
        appendLine(path, "{\"type\":\"train\",\"step\":2,\"tokens\":20,\"loss\":3.5,\"time\":2}\nnot json\n");
        QCOMPARE(r.poll(), 2);
        QCOMPARE(r.train().rows, 2);
        QCOMPARE(r.train().column("loss").at(1), 3.5);
        QCOMPARE(r.malformedLines(), 1);
        QCOMPARE(r.poll(), 0);
    }

    // The workbench keeps the rows core's read_metrics keeps (one rule:
    // core/base/MetricsRows.h), whether it reads the file line by line or in
    // one go: steps re-appended by old resumes, train and val rows interleaved.
    void metricsReaderKeepsWhatCoreKeeps() {
        const QString dir = QDir(tmp_.path()).filePath("rule");
        QDir().mkpath(dir);
        const QString path = QDir(dir).filePath("metrics.jsonl");
        const QList<QByteArray> lines = {
            R"({"type":"train","step":1,"loss":6.0})",   R"({"type":"train","step":2,"loss":5.0})",
            R"({"type":"val","step":2,"val_loss":5.5})", R"({"type":"train","step":3,"loss":4.0})",
            R"({"type":"train","step":4,"loss":3.0})",   R"({"type":"train","step":3,"loss":4.1})",
            R"({"type":"train","step":4,"loss":3.1})",   R"({"type":"val","step":4,"val_loss":3.5})",
            R"({"type":"train","step":2,"loss":5.2})",   R"({"type":"train","step":3,"loss":4.2})",
            R"({"type":"val","step":2,"val_loss":5.4})", R"({"type":"train","step":4,"loss":3.2})"};
        MetricsReader byLine(path);
        for (const QByteArray& l : lines) {
            appendLine(path, l + "\n");
            QCOMPARE(byLine.poll(), 1);
        }
        MetricsReader whole(path);
        QCOMPARE(whole.poll(), int(lines.size()));
        const auto rows = bimamba::base::read_metrics(dir.toStdString());
        for (const QString type : {"train", "val"}) {
            const std::string key = type == "val" ? "val_loss" : "loss";
            QVector<double> steps, values;
            for (const auto& r : rows)
                if (r.value("type", "train") == type.toStdString()) {
                    steps.push_back(r["step"].get<double>());
                    values.push_back(r[key].get<double>());
                }
            for (const MetricsReader* m : {&byLine, &whole}) {
                QCOMPARE(m->table(type).column("step"), steps);
                QCOMPARE(m->table(type).column(QString::fromStdString(key)), values);
            }
        }
        QCOMPARE(whole.train().column("loss"), (QVector<double>{6.0, 5.2, 4.2, 3.2}));
        QCOMPARE(whole.val().column("val_loss"), (QVector<double>{5.4}));
    }

    void downsamplingKeepsExtremes() {
        const int n = 300000;
        QVector<double> x(n), y(n);
        for (int i = 0; i < n; ++i) {
            x[i] = i;
            y[i] = std::sin(i * 0.001);
        }
        y[123457] = 50.0;  // a spike must survive
        y[200001] = -40.0;
        QVector<double> ox, oy;
        downsampleMinMax(x, y, 0, n - 1, 800, ox, oy);
        QVERIFY(ox.size() <= 2 * 800 + 4);
        QVERIFY(ox.size() > 800);
        QCOMPARE(*std::max_element(oy.begin(), oy.end()), 50.0);
        QCOMPARE(*std::min_element(oy.begin(), oy.end()), -40.0);
        QVERIFY(std::is_sorted(ox.begin(), ox.end()));
        // zoomed in: only the visible window (plus neighbours)
        downsampleMinMax(x, y, 1000, 1100, 800, ox, oy);
        QCOMPARE(ox.size(), 103);
        QCOMPARE(ox.first(), 999.0);
        QCOMPARE(ox.last(), 1101.0);
        // EMA is display-only and debiased
        const QVector<double> e = emaSmooth({1, 1, 1, 5}, 0.5);
        QCOMPARE(e[0], 1.0);
        QVERIFY(e[3] > 1.0 && e[3] < 5.0);
    }

    void plotStaysFluidWithManyPoints() {
        const QString dir = QDir(tmp_.path()).filePath("big");
        QDir().mkpath(dir);
        QFile f(QDir(dir).filePath("metrics.jsonl"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        for (int i = 1; i <= 300000; ++i)
            f.write(QStringLiteral("{\"type\":\"train\",\"step\":%1,\"tokens\":%2,\"loss\":%3,\"time\":%4}\n")
                        .arg(i)
                        .arg(i * 512)
                        .arg(3 + std::sin(i * 0.01))
                        .arg(i * 0.1)
                        .toUtf8());
        f.close();
        MetricsReader r(f.fileName());
        QCOMPARE(r.poll(), 300000);
        MetricsPlot plot;
        plot.resize(1000, 600);
        plot.show();
        QVERIFY(QTest::qWaitForWindowExposed(&plot));
        QCoreApplication::processEvents();
        QElapsedTimer t;
        t.start();
        plot.setRuns({{"big", &r}});
        plot.plot()->replot(QCustomPlot::rpImmediateRefresh);
        QVERIFY2(t.elapsed() < 3000, qPrintable(QString::number(t.elapsed())));
        QVERIFY(plot.displayedPoints(0) > 0);
        QCoreApplication::processEvents();
        // bounded by pixel columns (tick labels may shift the axis rect a little), not by the 300k points
        const int width = std::max(100, plot.plot()->axisRect()->width());
        QVERIFY2(plot.displayedPoints(0) <= 2 * (width + 50),
                 qPrintable(QStringLiteral("%1 points for %2 px").arg(plot.displayedPoints(0)).arg(width)));
        QCOMPARE(r.train().rows, 300000);  // the data itself is untouched
        plot.setXAxis("tokens");
        QCOMPARE(plot.plot()->xAxis->range().upper, 300000.0 * 512);
        plot.setLogScale(true);
        QCOMPARE(plot.plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
        QVERIFY(plot.readoutAt(1000 * 512).contains("loss"));
    }

    // The background (async) path gives exactly the tables the synchronous
    // one does, also when a large append overlaps steps already read (a
    // resumed run re-appends from its checkpoint) and with malformed lines.
    void asyncMetricsLoadMatchesSyncRead() {
        const QString path = QDir(tmp_.path()).filePath("async.jsonl");
        QFile::remove(path);
        QByteArray a;
        for (int i = 1; i <= 3000; ++i) {
            a += QStringLiteral("{\"type\":\"train\",\"step\":%1,\"loss\":%2}\n").arg(i).arg(5.0 - i * 1e-3).toUtf8();
            if (i % 500 == 0)
                a += QStringLiteral("{\"type\":\"val\",\"step\":%1,\"val_ppl\":%2}\n")
                         .arg(i)
                         .arg(40.0 - i * 1e-3)
                         .toUtf8();
        }
        appendLine(path, a);
        MetricsReader sync(path), async(path);
        async.setAsyncThreshold(0);  // every non-empty read goes to the worker
        QSignalSpy loaded(&async, &MetricsReader::loaded);
        QCOMPARE(sync.poll(), 3006);
        QCOMPARE(async.poll(), 0);  // started in the background
        QVERIFY(async.isLoading());
        QVERIFY(loaded.wait(10000));
        QVERIFY(!async.isLoading());
        // resume from step 2001 with a new column and a malformed line, plus a partial last line
        QByteArray b = "not json\n";
        for (int i = 2001; i <= 4000; ++i)
            b += QStringLiteral("{\"type\":\"train\",\"step\":%1,\"loss\":%2,\"grad_norm\":0.5}\n")
                     .arg(i)
                     .arg(4.0 - i * 1e-3)
                     .toUtf8();
        b += "{\"type\":\"val\",\"step\":2500,\"val_ppl\":12.5}\n{\"type\":\"train\",\"st";
        appendLine(path, b);
        QCOMPARE(sync.poll(), 2002);
        QCOMPARE(async.poll(), 0);
        QVERIFY(loaded.wait(10000));
        appendLine(path, "ep\":4001,\"loss\":1.0}\n");
        QCOMPARE(sync.poll(), 1);
        QCOMPARE(async.poll(), 0);
        QVERIFY(loaded.wait(10000));
        for (const QString type : {"train", "val"}) {
            const MetricsTable& x = sync.table(type);
            const MetricsTable& y = async.table(type);
            QCOMPARE(y.rows, x.rows);
            const QStringList xk = x.keys(), yk = y.keys();
            QCOMPARE(QSet<QString>(yk.begin(), yk.end()), QSet<QString>(xk.begin(), xk.end()));
            for (const QString& k : x.keys())
                for (int i = 0; i < x.rows; ++i) {
                    const double u = x.column(k)[i], v = y.column(k)[i];
                    QVERIFY2((std::isnan(u) && std::isnan(v)) || u == v,
                             qPrintable(QStringLiteral("%1 %2 row %3").arg(type, k).arg(i)));
                }
        }
        QCOMPARE(sync.train().rows, 4001);
        QCOMPARE(sync.val().rows, 5);  // 500, 1000, 1500, 2000 and the re-appended 2500
        QCOMPARE(async.malformedLines(), 1);
        QCOMPARE(async.offset(), sync.offset());
        QCOMPARE(async.bestValPpl(), 12.5);
    }

    // A run with a 300k-line metrics.jsonl: the first read happens on a
    // worker thread (the event loop keeps running: a 10 ms timer keeps
    // firing), every point arrives, the plot shows it downsampled, and new
    // lines are then tailed incrementally.
    void hugeMetricsFileDoesNotBlockTheUiThread() {
        QTemporaryDir ws, elsewhere;
        const QString dir = QDir(elsewhere.path()).filePath("long-run");
        QDir().mkpath(dir);
        const int n = 300000;
        {
            QFile f(QDir(dir).filePath("metrics.jsonl"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            QByteArray buf;
            for (int i = 1; i <= n; ++i) {
                buf += "{\"type\":\"train\",\"step\":" + QByteArray::number(i) +
                       ",\"tokens\":" + QByteArray::number(qint64(i) * 4096) + ",\"loss\":" +
                       QByteArray::number(3 + 4 * std::exp(-i / 30000.0) + 0.05 * std::sin(i * 0.37), 'f', 5) +
                       ",\"lr\":0.0001,\"grad_norm\":0.42,\"tok_per_s\":5123.4,\"time\":" +
                       QByteArray::number(i * 0.8, 'f', 1) + "}\n";
                if (i % 1000 == 0)
                    buf += "{\"type\":\"val\",\"step\":" + QByteArray::number(i) +
                           ",\"val_loss\":3.1,\"val_ppl\":" + QByteArray::number(22.0 + 10.0 * 1000 / i, 'f', 4) +
                           "}\n";
                if (buf.size() > (1 << 20)) f.write(buf), buf.clear();
            }
            f.write(buf);
        }
        writeJsonFile(QDir(dir).filePath("status.json"),
                      QJsonObject{{"state", "finished"}, {"pid", 1}, {"step", n}, {"total_steps", n}});
        MainWindow w(ws.path(), cli_);
        w.resize(1200, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QElapsedTimer clock;
        clock.start();
        qint64 last = 0, maxGap = 0;
        int ticksWhileLoading = 0;
        MetricsReader* reader = nullptr;
        QTimer tick;
        tick.setInterval(10);
        connect(&tick, &QTimer::timeout, this, [&] {
            const qint64 now = clock.elapsed();
            if (reader && reader->isLoading()) {
                ++ticksWhileLoading;
                maxGap = std::max(maxGap, now - last);
            }
            last = now;
        });
        tick.start();
        QString err;
        const qint64 t0 = clock.elapsed();
        const qint64 id = w.manager()->importRunDir(dir, &err);
        QVERIFY2(id > 0, qPrintable(err));
        w.runsPanel()->selectRun(id);
        const qint64 blocked = clock.elapsed() - t0;  // import + select, on the UI thread
        reader = w.manager()->metrics(id);
        QVERIFY(reader);
        QVERIFY2(reader->isLoading(), "the first read of a 300k-line file must go to a worker thread");
        last = clock.elapsed();
        QTRY_VERIFY_WITH_TIMEOUT(!reader->isLoading(), 120000);
        const qint64 loadMs = clock.elapsed() - t0;
        qInfo("import+select %lld ms on the UI thread; load %lld ms; %d ticks while loading, longest gap %lld ms",
              blocked, loadMs, ticksWhileLoading, maxGap);
        QVERIFY2(blocked < 1000, qPrintable(QString::number(blocked)));
        QVERIFY2(ticksWhileLoading >= 5, qPrintable(QString::number(ticksWhileLoading)));
        QVERIFY2(maxGap < 500, qPrintable(QString::number(maxGap)));
        // every point arrived; the plot downsamples only for display
        QCOMPARE(reader->train().rows, n);
        QCOMPARE(reader->val().rows, n / 1000);
        QCOMPARE(reader->train().column("step").last(), double(n));
        auto* model = w.runsPanel()->model();
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "long-run", RunTableModel::BestPpl), QString("22.03"), 5000);
        QTRY_VERIFY_WITH_TIMEOUT(w.runsPanel()->lossPlot()->displayedPoints(0) > 100, 5000);
        const int width = std::max(100, w.runsPanel()->lossPlot()->plot()->axisRect()->width());
        QVERIFY2(w.runsPanel()->lossPlot()->displayedPoints(0) <= 2 * (width + 50),
                 qPrintable(QString::number(w.runsPanel()->lossPlot()->displayedPoints(0))));
        QTRY_VERIFY_WITH_TIMEOUT(w.runsPanel()->pplPlot()->displayedPoints(0) > 0, 5000);
        // then tailed incrementally (a small append is read on the spot)
        w.manager()->setPollInterval(50);
        appendLine(QDir(dir).filePath("metrics.jsonl"),
                   "{\"type\":\"train\",\"step\":300001,\"tokens\":1228804096,\"loss\":2.9,\"time\":240001}\n");
        QTRY_COMPARE_WITH_TIMEOUT(reader->train().rows, n + 1, 5000);
        QVERIFY(!reader->isLoading());
        QCOMPARE(reader->linesRead(), qint64(n + n / 1000 + 1));
    }

    void runStorePersists() {
        const QString db = QDir(tmp_.path()).filePath("store.sqlite");
        {
            RunStore s;
            QVERIFY(s.open(db));
            RunRecord r;
            r.name = "a";
            r.group = "g";
            r.runDir = "/x/a";
            r.bestValPpl = 12.5;
            QVERIFY(s.add(r) > 0);
            r.name = "b";
            r.runDir = "/x/b";
            QVERIFY(s.add(r) > 0);
        }
        RunStore s;
        QVERIFY(s.open(db));
        QCOMPARE(s.all().size(), 2);
        QCOMPARE(s.group("g").size(), 2);
        QCOMPARE(s.byDir("/x/b")->name, QString("b"));
        QCOMPARE(s.all().first().bestValPpl, 12.5);
        QVERIFY(std::isnan(RunRecord{}.bestValPpl));
    }

    // A database of a workbench from before remote runs (no host / remote
    // columns) gains them on open and keeps its rows; remote records persist.
    void runStoreUpgradesAnOlderDatabase() {
        const QString db = QDir(tmp_.path()).filePath("old.sqlite");
        {
            auto c = QSqlDatabase::addDatabase("QSQLITE", "old-schema");
            c.setDatabaseName(db);
            QVERIFY(c.open());
            QSqlQuery q(c);
            QVERIFY(
                q.exec("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, grp TEXT, "
                       "preset TEXT, binarize TEXT, loss TEXT, teacher TEXT, status TEXT, step INTEGER, total_steps "
                       "INTEGER, tokens INTEGER, best_val_ppl REAL, started TEXT, ended TEXT, run_dir TEXT UNIQUE, "
                       "message TEXT, axes TEXT)"));
            QVERIFY(q.exec("INSERT INTO runs (name, status, step, run_dir) VALUES ('old', 'finished', 42, '/x/old')"));
            c.close();
        }
        QSqlDatabase::removeDatabase("old-schema");
        {
            RunStore s;
            QString err;
            QVERIFY2(s.open(db, &err), qPrintable(err));
            QCOMPARE(s.all().size(), 1);
            QCOMPARE(s.all().first().step, qint64(42));
            QVERIFY(!s.all().first().isRemote());
            RunRecord r;
            r.name = "far";
            r.runDir = "/x/far";
            r.status = "pending";
            r.host = "cluster";
            r.remote = R"({"host":"cluster","kind":"slurm","remote_dir":"/s/far","job_id":"7"})";
            QVERIFY(s.add(r) > 0);
        }
        RunStore s;
        QVERIFY(s.open(db));
        QCOMPARE(s.all().size(), 2);
        QCOMPARE(s.byDir("/x/far")->host, QString("cluster"));
        QVERIFY(s.byDir("/x/far")->remote.contains("\"job_id\":\"7\""));
    }

    void liveMetricsFromSyntheticRunDir() {
        QTemporaryDir ws;
        const QString dir = QDir(ws.path()).filePath("runs/synthetic");
        QDir().mkpath(dir);
        writeJsonFile(QDir(dir).filePath("status.json"), QJsonObject{{"state", "running"},
                                                                     {"pid", qint64(getpid())},
                                                                     {"step", 0},
                                                                     {"total_steps", 20},
                                                                     {"started", "2026-01-01T00:00:00Z"}});
        MainWindow w(ws.path(), cli_);
        w.manager()->setPollInterval(100);
        w.resize(1200, 800);
        w.show();
        auto* model = w.runsPanel()->model();
        QCOMPARE(rowOfName(model, "synthetic"), 0);  // re-attached from the run folder
        QCOMPARE(cell(model, "synthetic", RunTableModel::Status), QString("running"));
        w.runsPanel()->selectRun(model->runId(0));
        const QString m = QDir(dir).filePath("metrics.jsonl");
        for (int s = 1; s <= 10; ++s)
            appendLine(m, QStringLiteral("{\"type\":\"train\",\"step\":%1,\"tokens\":%2,\"loss\":%3,\"time\":%1}\n")
                              .arg(s)
                              .arg(s * 100)
                              .arg(10.0 / s)
                              .toUtf8());
        appendLine(m, "{\"type\":\"val\",\"step\":10,\"tokens\":1000,\"val_loss\":2.0,\"val_ppl\":7.39,\"time\":10}\n");
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->lossPlot()->displayedPoints(0), 10, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->pplPlot()->displayedPoints(0), 1, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "synthetic", RunTableModel::BestPpl), QString("7.39"), 5000);
        QCOMPARE(cell(model, "synthetic", RunTableModel::Tokens), QString("1.0k"));
        for (int s = 11; s <= 20; ++s)
            appendLine(m, QStringLiteral("{\"type\":\"train\",\"step\":%1,\"tokens\":%2,\"loss\":%3,\"time\":%1}\n")
                              .arg(s)
                              .arg(s * 100)
                              .arg(10.0 / s)
                              .toUtf8());
        writeJsonFile(QDir(dir).filePath("status.json"), QJsonObject{{"state", "finished"},
                                                                     {"pid", qint64(getpid())},
                                                                     {"step", 20},
                                                                     {"total_steps", 20},
                                                                     {"started", "2026-01-01T00:00:00Z"},
                                                                     {"ended", "2026-01-01T01:00:00Z"}});
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->lossPlot()->displayedPoints(0), 20, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "synthetic", RunTableModel::Status), QString("finished"), 5000);
        QCOMPARE(cell(model, "synthetic", RunTableModel::Steps), QString("20 / 20"));
    }

    void dialogRefusesMalformedConfig() {
        NewRunDialog dlg(tmp_.path());
        dlg.setDataDir(data_);
        QVERIFY2(dlg.validate(), qPrintable(dlg.errors().join("; ")));
        dlg.setConfigText("{ \"data\": \"x\", \n \"steps\": }");
        dlg.accept();
        QVERIFY(dlg.result() != QDialog::Accepted);
        QVERIFY(dlg.errors().join(' ').contains("not valid JSON"));
        QVERIFY(dlg.errors().join(' ').contains("line 2"));

        QJsonObject c = trainPreset("quickstart", data_);
        c["stepz"] = 10;                                                      // unknown field
        c["loss"] = "kl";                                                     // distillation without a teacher
        c["lr"] = -1.0;                                                       // out of range
        c["model"] = QJsonObject{{"preset", "small"}, {"binarize", "half"}};  // refused by Mamba2Config
        dlg.setConfigText(QString::fromUtf8(QJsonDocument(c).toJson()));
        dlg.accept();
        QVERIFY(dlg.result() != QDialog::Accepted);
        const QString all = dlg.errors().join('\n');
        QVERIFY2(all.contains("'stepz'"), qPrintable(all));
        QVERIFY2(all.contains("teacher"), qPrintable(all));
        QVERIFY2(all.contains("'lr'"), qPrintable(all));
        QVERIFY2(all.contains("binarize"), qPrintable(all));
        QVERIFY(dlg.findChild<QLabel*>("validation")->text().contains("cannot be launched"));

        c = trainPreset("quickstart", QDir(tmp_.path()).filePath("no-such-corpus"));
        dlg.setConfigText(QString::fromUtf8(QJsonDocument(c).toJson()));
        QVERIFY(!dlg.validate());
        QVERIFY(dlg.errors().join(' ').contains("does not exist"));

        // The paper presets are valid model configs (780M/1.3B/2.7B).
        for (const QString p : {"paper-780m", "paper-1.3b", "paper-2.7b"}) {
            QJsonObject pc = trainPreset(p, data_);
            pc["teacher"] = data_;
            QVERIFY2(trainConfigProblems(pc).isEmpty(), qPrintable(trainConfigProblems(pc).join("; ")));
        }
        QVERIFY(modelParameters(trainPreset("paper-780m", data_)) > 700'000'000LL);

        // The dialog's checks are core's (TrainConfig::problems), field by field.
        const QStringList p = trainConfigProblems(QJsonObject{{"data", "x"}, {"steps", 0}, {"seq_len", 1.5}}, false);
        QCOMPARE(p.size(), 2);
        QVERIFY2(p.join('\n').contains("Field 'steps' must be positive"), qPrintable(p.join('\n')));
        QVERIFY2(p.join('\n').contains("Field 'seq_len' must be an integer"), qPrintable(p.join('\n')));
        QString err;
        QCOMPARE(modelParameters(QJsonObject{{"model", QJsonObject{{"preset", "tiny"}, {"d_modle", 8}}}}, &err), -1LL);
        QVERIFY2(err.contains("d_modle"), qPrintable(err));
    }

    void launchTinyRunFromDialog() {
        QTemporaryDir ws;
        MainWindow w(ws.path(), cli_);
        w.manager()->setPollInterval(100);
        w.resize(1200, 800);
        w.show();
        bool sawDialog = false;
        QTimer::singleShot(200, this, [&] {
            auto* dlg = qobject_cast<NewRunDialog*>(QApplication::activeModalWidget());
            QVERIFY(dlg);
            sawDialog = true;
            dlg->findChild<QLineEdit*>("name")->setText("tiny");
            QJsonObject c = tinyConfig(data_, 25);
            dlg->setConfigText(QString::fromUtf8(QJsonDocument(c).toJson()));
            dlg->accept();
        });
        w.runsPanel()->newRunAction()->trigger();
        QVERIFY(sawDialog);
        auto* model = w.runsPanel()->model();
        QCOMPARE(rowOfName(model, "tiny"), 0);
        QVERIFY(w.runsPanel()->selectedRuns().size() == 1);
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "tiny", RunTableModel::Status), QString("finished"), 15000);
        QCOMPARE(cell(model, "tiny", RunTableModel::Steps), QString("25 / 25"));
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->lossPlot()->displayedPoints(0), 25, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->pplPlot()->displayedPoints(0), 5, 5000);
        QVERIFY(cell(model, "tiny", RunTableModel::BestPpl) != "–");
        const QString dir = w.store()->all().first().runDir;
        QCOMPARE(bimamba::base::read_exit_code(dir.toStdString()), 0);
        QVERIFY(QFileInfo::exists(QDir(dir).filePath("workbench_config.json")));
    }

    // The same flow with the real engine, when the bimamba CLI at $BIMAMBA_CLI
    // has `train` and `prepare`: prepare a tiny corpus, launch a tiny
    // Bi-Mamba run from the dialog, watch it finish in the table and plots.
    void realTinyRunFromDialog() {
        const QString cli = qEnvironmentVariable("BIMAMBA_CLI");
        if (cli.isEmpty() || !QFileInfo(cli).isExecutable()) QSKIP("BIMAMBA_CLI is not set to a built bimamba");
        if (QProcess::execute(cli, {"train", "--help"}) != 0) QSKIP("this bimamba has no `train` command");
        QTemporaryDir ws;
        QString err;
        const QString data = bimamba::test::prepareTinyCorpus(cli, ws.path(), 400, 0, &err);
        QVERIFY2(!data.isEmpty(), qPrintable(err));
        MainWindow w(ws.path(), cli);
        w.manager()->setPollInterval(200);
        QTimer::singleShot(200, this, [&] {
            auto* dlg = qobject_cast<NewRunDialog*>(QApplication::activeModalWidget());
            QVERIFY(dlg);
            dlg->findChild<QLineEdit*>("name")->setText("real-tiny");
            QJsonObject c{
                {"data", data},
                {"model", QJsonObject{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}, {"vocab_size", 512}}},
                {"steps", 6},
                {"seq_len", 32},
                {"batch_size", 2},
                {"warmup_steps", 2},
                {"eval_every", 3},
                {"eval_batches", 1},
                {"checkpoint_every", 3},
                {"device", "cpu"},
                {"threads", 1},
                {"lr", 1e-3}};
            dlg->setConfigText(QString::fromUtf8(QJsonDocument(c).toJson()));
            dlg->accept();
            QVERIFY2(dlg->result() == QDialog::Accepted, qPrintable(dlg->errors().join("; ")));
        });
        w.runsPanel()->newRunAction()->trigger();
        auto* model = w.runsPanel()->model();
        QCOMPARE(rowOfName(model, "real-tiny"), 0);
        QTRY_VERIFY_WITH_TIMEOUT(!RunManager::isActive(cell(model, "real-tiny", RunTableModel::Status)), 300000);
        QVERIFY2(cell(model, "real-tiny", RunTableModel::Status) == "finished",
                 qPrintable(w.store()->all().first().message));
        QCOMPARE(cell(model, "real-tiny", RunTableModel::Steps), QString("6 / 6"));
        QTRY_COMPARE_WITH_TIMEOUT(w.runsPanel()->lossPlot()->displayedPoints(0), 6, 5000);
        QVERIFY(w.runsPanel()->pplPlot()->displayedPoints(0) >= 2);
        QVERIFY(!QString::fromStdString(bimamba::base::latest_checkpoint(w.store()->all().first().runDir.toStdString()))
                     .isEmpty());

        // Stop (SIGTERM: checkpoint, "stopped") and resume with the real trainer.
        QJsonObject c{{"data", data},
                      {"model", QJsonObject{{"preset", "tiny"}, {"binarize", "in_proj"}, {"vocab_size", 512}}},
                      {"steps", 400},
                      {"seq_len", 32},
                      {"batch_size", 2},
                      {"warmup_steps", 2},
                      {"eval_every", 50},
                      {"eval_batches", 1},
                      {"checkpoint_every", 0},
                      {"device", "cpu"},
                      {"threads", 1},
                      {"lr", 1e-3}};
        QVERIFY(trainConfigProblems(c).isEmpty());
        err.clear();
        const qint64 id = w.manager()->launch("real-stop", "", "custom", c, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        QTRY_VERIFY_WITH_TIMEOUT(w.store()->byId(id)->step >= 3, 120000);
        QVERIFY(w.manager()->stop(id, &err));
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(id)->status, QString("stopped"), 60000);
        const qint64 at = w.store()->byId(id)->step;
        QVERIFY(at < 400);
        QVERIFY(!QString::fromStdString(bimamba::base::latest_checkpoint(w.store()->byId(id)->runDir.toStdString()))
                     .isEmpty());
        QVERIFY(w.manager()->resume(id, &err));
        QTRY_VERIFY_WITH_TIMEOUT(!RunManager::isActive(w.store()->byId(id)->status), 300000);
        QCOMPARE(w.store()->byId(id)->status, QString("finished"));
        QCOMPARE(w.store()->byId(id)->step, 400);
    }

    void stopAndResume() {
        QTemporaryDir ws;
        MainWindow w(ws.path(), cli_);
        w.manager()->setPollInterval(100);
        QString err;
        const qint64 id = w.manager()->launch("slow", "", "quickstart", tinyConfig(data_, 60, true), &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        auto* model = w.runsPanel()->model();
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "slow", RunTableModel::Status), QString("running"), 10000);
        QTRY_VERIFY_WITH_TIMEOUT(w.store()->byId(id)->step >= 3, 10000);
        w.runsPanel()->selectRun(id);
        QVERIFY(w.runsPanel()->stopAction()->isEnabled());
        w.runsPanel()->stopAction()->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "slow", RunTableModel::Status), QString("stopped"), 10000);
        const RunRecord stopped = *w.store()->byId(id);
        QVERIFY(stopped.step < 60);
        QVERIFY(!QString::fromStdString(bimamba::base::latest_checkpoint(stopped.runDir.toStdString())).isEmpty());
        QVERIFY(QString::fromStdString(bimamba::base::latest_checkpoint(stopped.runDir.toStdString()))
                    .endsWith(QStringLiteral("step_%1").arg(stopped.step, 8, 10, QChar('0'))));
        QTRY_COMPARE_WITH_TIMEOUT(bimamba::base::read_exit_code(stopped.runDir.toStdString()), 0, 5000);
        QVERIFY(w.runsPanel()->resumeAction()->isEnabled());
        w.runsPanel()->resumeAction()->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "slow", RunTableModel::Status), QString("finished"), 20000);
        QCOMPARE(w.store()->byId(id)->step, 60);
        // metrics continue from the checkpoint without duplicate steps
        MetricsReader* m = w.manager()->metrics(id);
        const QVector<double> steps = m->train().column("step");
        QCOMPARE(steps.size(), 60);
        QVERIFY(std::is_sorted(steps.begin(), steps.end()));
    }

    void failureShowsExitCodeAndStderr() {
        QTemporaryDir ws;
        MainWindow w(ws.path(), cli_);
        w.manager()->setPollInterval(100);
        QJsonObject c = tinyConfig(data_, 10);
        c["fail_setup"] = true;
        QString err;
        const qint64 id = w.manager()->launch("broken", "", "custom", c, &err);
        QVERIFY(id > 0);
        auto* model = w.runsPanel()->model();
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "broken", RunTableModel::Status), QString("failed"), 10000);
        const QString msg = w.store()->byId(id)->message;
        QVERIFY2(msg.contains("exit code 1"), qPrintable(msg));
        QVERIFY2(msg.contains("prepared corpus"), qPrintable(msg));
        w.runsPanel()->selectRun(id);
        QVERIFY(w.runsPanel()->findChild<QLabel*>("runDetail")->text().contains("exit code 1"));
        // A missing CLI is a message, not a crash.
        w.manager()->setCliPath(QDir(ws.path()).filePath("nope"));
        const qint64 id2 = w.manager()->launch("nocli", "", "custom", tinyConfig(data_, 5), &err);
        QVERIFY(err.contains("not found"));
        QCOMPARE(w.store()->byId(id2)->status, QString("failed"));
        QVERIFY(w.store()->byId(id2)->message.contains("not found"));
    }

    void reattachAfterReopen() {
        QTemporaryDir ws;
        qint64 id = -1;
        {
            MainWindow w(ws.path(), cli_);
            QString err;
            id = w.manager()->launch("detached", "", "quickstart", tinyConfig(data_, 30, true), &err);
            QTRY_VERIFY_WITH_TIMEOUT(w.store()->byId(id)->step >= 2, 10000);
        }  // the window closes; the run keeps going
        MainWindow w2(ws.path(), cli_);
        w2.manager()->setPollInterval(100);
        auto* model = w2.runsPanel()->model();
        QCOMPARE(model->rowCount(), 1);
        const QString st = cell(model, "detached", RunTableModel::Status);
        QVERIFY2(st == "running" || st == "starting", qPrintable(st));
        QTRY_COMPARE_WITH_TIMEOUT(cell(model, "detached", RunTableModel::Status), QString("finished"), 20000);
        QCOMPARE(w2.store()->byId(id)->step, 30);
    }

    void importRunDirectory() {
        QTemporaryDir ws, elsewhere;
        const QString dir = QDir(elsewhere.path()).filePath("made-elsewhere");
        QDir().mkpath(dir);
        QFile cfg(QDir(dir).filePath("train_config.json"));
        cfg.open(QIODevice::WriteOnly);
        cfg.write(
            R"({"data":"/d","loss":"soft_ce","teacher":"/t/teacher","steps":100,"model":{"preset":"780m","binarize":"in_proj"}})");
        cfg.close();
        writeJsonFile(QDir(dir).filePath("status.json"),
                      QJsonObject{{"state", "finished"}, {"pid", 1}, {"step", 100}, {"total_steps", 100}});
        writeJsonFile(QDir(dir).filePath("workbench.json"),
                      QJsonObject{{"group", "scope-abl"}, {"axes", QJsonObject{{"binarize", "in_proj"}}}});
        MainWindow w(ws.path(), cli_);
        QString err;
        const qint64 id = w.manager()->importRunDir(dir, &err);
        QVERIFY2(id > 0, qPrintable(err));
        const RunRecord r = *w.store()->byId(id);
        QCOMPARE(r.status, QString("finished"));
        QCOMPARE(r.loss, QString("soft_ce"));
        QCOMPARE(r.binarize, QString("in_proj"));
        QCOMPARE(r.preset, QString("780m"));
        QCOMPARE(r.step, 100);
        QCOMPARE(r.group, QString("scope-abl"));  // from workbench.json
        QVERIFY(r.axes.contains("in_proj"));
        QCOMPARE(w.manager()->importRunDir(dir, &err), id);  // no duplicate
        QVERIFY(w.manager()->importRunDir(ws.path(), &err) < 0);
        QVERIFY(err.contains("not a run directory"));
    }

    void runTableSortsAndFilters() {
        // Three imported runs with different losses, sizes and seeds.
        QTemporaryDir ws;
        auto make = [&](const QString& name, const QString& loss, const QString& preset, int seed, int step) {
            const QString dir = QDir(ws.path()).filePath("runs/" + name);
            QDir().mkpath(dir);
            writeJsonFile(QDir(dir).filePath("train_config.json"),
                          QJsonObject{{"data", "/d"},
                                      {"loss", loss},
                                      {"seed", seed},
                                      {"lr", 0.001},
                                      {"model", QJsonObject{{"preset", preset}, {"binarize", "in_proj+out_proj"}}}});
            writeJsonFile(QDir(dir).filePath("status.json"),
                          QJsonObject{{"state", "finished"}, {"pid", 1}, {"step", step}, {"total_steps", step}});
        };
        make("kd-s1", "soft_ce", "130m", 1, 400);
        make("ce-s1", "ce", "130m", 1, 90);
        make("kd-big", "soft_ce", "780m", 2, 1000);
        MainWindow w(ws.path(), cli_);
        RunsPanel* p = w.runsPanel();
        QTableView* t = p->table();
        QTRY_COMPARE_WITH_TIMEOUT(t->model()->rowCount(), 3, 5000);
        auto names = [t] {
            QStringList n;
            for (int r = 0; r < t->model()->rowCount(); ++r)
                n << t->model()->index(r, RunTableModel::Name).data().toString();
            return n;
        };
        // Steps sort as numbers (90 < 400 < 1000), not as text.
        t->sortByColumn(RunTableModel::Steps, Qt::AscendingOrder);
        QCOMPARE(names(), (QStringList{"ce-s1", "kd-s1", "kd-big"}));
        t->sortByColumn(RunTableModel::Steps, Qt::DescendingOrder);
        QCOMPARE(names().first(), QString("kd-big"));
        auto* filter = p->findChild<QLineEdit*>("runFilter");
        QVERIFY(filter);
        filter->setText("loss:soft_ce");
        QCOMPARE(names().size(), 2);
        filter->setText("loss:soft_ce preset:130m");
        QCOMPARE(names(), QStringList{"kd-s1"});
        filter->setText("seed:2");  // a config field
        QCOMPARE(names(), QStringList{"kd-big"});
        filter->setText("model.preset:780");  // by dotted path
        QCOMPARE(names(), QStringList{"kd-big"});
        filter->setText("ce-");  // a bare word: any run field
        QCOMPARE(names(), QStringList{"ce-s1"});
        filter->setText("nosuchkey:1");
        QCOMPARE(names().size(), 0);
        filter->clear();
        QCOMPARE(names().size(), 3);
        // Selection maps through the sorted view to the right run.
        const qint64 big = w.store()->byDir(QDir(ws.path()).filePath("runs/kd-big"))->id;
        p->selectRun(big);
        QCOMPARE(p->selectedRuns(), QList<qint64>{big});
        // Several selected: the side panel lists what differs.
        t->selectAll();
        const QString diff = p->runsDiff(p->selectedRuns());
        QVERIFY2(diff.contains("loss\n") && diff.contains("seed\n") && diff.contains("model.preset\n"),
                 qPrintable(diff));
        QVERIFY2(!diff.contains("\nlr\n") && !diff.startsWith("lr\n"), qPrintable(diff));  // the same in all three
    }
};

QTEST_MAIN(TestGuiRuns)
#include "test_gui_runs.moc"

// After the moc include: moc does not read past the test class.
const char* fakeTrainerScript() {
    return R"SH(#!/bin/sh
# Stand-in for `bimamba train` implementing the run-directory contract of
# docs/run-directory.md (status.json, metrics.jsonl, checkpoints/latest,
# SIGTERM = checkpoint + "stopped" + exit 0). Other commands: "unknown command".
cmd=$1; shift
if [ "$cmd" != train ]; then echo "bimamba: unknown command '$cmd'" >&2; exit 2; fi
if [ "$1" = --resume ]; then
  dir=$2; cfg="$dir/train_config.json"
  start=$(sed 's/step_0*//' "$dir/checkpoints/latest"); [ -z "$start" ] && start=0
else
  cfg=$2; dir=$4; start=0
  mkdir -p "$dir"; cp "$cfg" "$dir/train_config.json"
fi
if grep -q '"fail_setup"' "$cfg"; then echo "error: data folder does not hold a prepared corpus (fake)" >&2; exit 1; fi
steps=$(tr -d '\n ' < "$cfg" | sed -n 's/.*"steps":\([0-9]*\).*/\1/p')
delay=$(tr -d '\n ' < "$cfg" | sed -n 's/.*"eps":\([0-9.e-]*\).*/\1/p')
case "$delay" in 1e-07) d=0.15;; *) d=0.02;; esac
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
status() { printf '{"state":"%s","pid":%s,"step":%s,"total_steps":%s,"started":"%s","ended":%s,"message":"%s"}\n' "$1" $$ "$2" "$steps" "$started" "$3" "$4" > "$dir/status.tmp" && mv "$dir/status.tmp" "$dir/status.json"; }
ckpt() { mkdir -p "$dir/checkpoints/step_$(printf %08d $1)"; printf 'step_%08d\n' $1 > "$dir/checkpoints/latest.tmp"; mv "$dir/checkpoints/latest.tmp" "$dir/checkpoints/latest"; }
stop=0; trap 'stop=1' TERM INT
status running $start null ""
s=$start
while [ $s -lt $steps ]; do
  s=$((s+1))
  sleep $d
  loss=$(awk "BEGIN{print 6.0*exp(-$s/30.0)+2.0}")
  printf '{"type":"train","step":%d,"tokens":%d,"loss":%s,"lr":0.001,"grad_norm":1.0,"tok_per_s":5000.0,"mem_mb":100.0,"time":%s}\n' $s $((s*1024)) $loss $(awk "BEGIN{print $s*$d}") >> "$dir/metrics.jsonl"
  if [ $((s%5)) -eq 0 ]; then
    printf '{"type":"val","step":%d,"tokens":%d,"val_loss":%s,"val_ppl":%s,"time":%s}\n' $s $((s*1024)) $loss $(awk "BEGIN{print exp($loss)}") $(awk "BEGIN{print $s*$d}") >> "$dir/metrics.jsonl"
  fi
  [ $((s%10)) -eq 0 ] && ckpt $s
  status running $s null ""
  echo "step $s loss $loss" >> "$dir/train.log"
  if [ $stop = 1 ]; then ckpt $s; status stopped $s "\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"" "stopped at step $s"; exit 0; fi
done
ckpt $s
status finished $s "\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"" ""
exit 0
)SH";
}
