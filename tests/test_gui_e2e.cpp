// The workbench end to end with the real `bimamba` ($BIMAMBA_CLI), as a
// person uses it (offscreen): a tiny corpus prepared, a new run launched from
// the New run dialog, its loss curve seen growing while it trains, Stop and
// Resume from the Runs tab's actions, then the run chosen from the run table
// (Add runs…) to be evaluated (perplexity in the Evaluate table) and to
// generate in Compare. Under two minutes on an idle 2-core machine.
#include "core/base/RunDir.h"
#include "ui/ComparePanel.h"
#include "ui/EvaluatePanel.h"
#include "ui/MainWindow.h"
#include "ui/MetricsPlot.h"
#include "ui/NewRunDialog.h"
#include "ui/RunManager.h"
#include "ui/RunPicker.h"
#include "ui/RunStore.h"
#include "ui/RunTableModel.h"
#include "ui/RunsPanel.h"
#include "tests/support/TinyCorpus.h"

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include <cmath>

using namespace bimamba::ui;

namespace {

// Answers the next Add runs… dialog: checks the run named `name`, then Add.
void pickRunWhenAsked(QObject* context, const QString& name, bool* seen) {
    QTimer::singleShot(100, context, [name, seen] {
        auto* picker = qobject_cast<RunPicker*>(QApplication::activeModalWidget());
        if (!picker) return;
        for (int i = 0; i < picker->list()->count(); ++i) {
            QListWidgetItem* item = picker->list()->item(i);
            if (item->text().startsWith(name + " ") || item->text() == name) {
                item->setCheckState(Qt::Checked);
                *seen = (item->flags() & Qt::ItemIsEnabled) != 0;
            }
        }
        picker->accept();
    });
}

}  // namespace

class EndToEndTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QSettings().clear();  // no model lists kept from an earlier run of this test
    }

    void newRunLiveCurveStopResumeEvaluateCompare() {
        const QString cli = qEnvironmentVariable("BIMAMBA_CLI");
        if (cli.isEmpty() || !QFileInfo(cli).isExecutable()) QSKIP("BIMAMBA_CLI is not set to a built bimamba");
        if (QProcess::execute(cli, {"train", "--help"}) != 0) QSKIP("this bimamba has no `train` command");
        QTemporaryDir ws;
        // A tiny corpus and a held-out text to evaluate on.
        QString err;
        const QString data = bimamba::test::prepareTinyCorpus(cli, ws.path(), 600, 10, &err);
        QVERIFY2(!data.isEmpty(), qPrintable(err));
        const QString heldOut = ws.filePath("heldout.txt");

        MainWindow w(ws.path(), cli);
        w.resize(1400, 860);
        w.show();
        w.manager()->setPollInterval(200);

        // New run from the dialog: long enough to be watched, stopped and resumed.
        QTimer::singleShot(200, this, [&] {
            auto* dlg = qobject_cast<NewRunDialog*>(QApplication::activeModalWidget());
            QVERIFY(dlg);
            dlg->findChild<QLineEdit*>("name")->setText("e2e");
            const QJsonObject c{
                {"data", data},
                {"model", QJsonObject{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}, {"vocab_size", 512}}},
                {"steps", 240},
                {"seq_len", 32},
                {"batch_size", 2},
                {"warmup_steps", 2},
                {"log_every", 2},
                {"eval_every", 40},
                {"eval_batches", 1},
                {"checkpoint_every", 0},
                {"device", "cpu"},
                {"threads", 1},
                {"lr", 1e-3}};
            dlg->setConfigText(QString::fromUtf8(QJsonDocument(c).toJson()));
            dlg->accept();
            QVERIFY2(dlg->result() == QDialog::Accepted, qPrintable(dlg->errors().join("; ")));
        });
        w.runsPanel()->newRunAction()->trigger();
        QCOMPARE(w.store()->all().size(), 1);
        const qint64 id = w.store()->all().first().id;
        w.runsPanel()->selectRun(id);

        // The curve grows while the trainer runs (the table says "running").
        MetricsPlot* loss = w.runsPanel()->lossPlot();
        QTRY_VERIFY_WITH_TIMEOUT(loss->displayedPoints(0) >= 2, 60000);
        const int early = loss->displayedPoints(0);
        QTRY_VERIFY_WITH_TIMEOUT(loss->displayedPoints(0) > early, 30000);
        QCOMPARE(w.store()->byId(id)->status, QString("running"));

        // Stop from the Runs tab: checkpoint, "stopped", fewer than all steps.
        QVERIFY(w.runsPanel()->stopAction()->isEnabled());
        w.runsPanel()->stopAction()->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(id)->status, QString("stopped"), 60000);
        const qint64 stoppedAt = w.store()->byId(id)->step;
        QVERIFY2(stoppedAt > 0 && stoppedAt < 240, qPrintable(QString::number(stoppedAt)));
        const QString runDir = w.store()->byId(id)->runDir;
        QVERIFY(!bimamba::base::latest_checkpoint(runDir.toStdString()).empty());

        // Resume: the same run goes on from its checkpoint to the end; the
        // curve holds every logged step once.
        QTRY_VERIFY_WITH_TIMEOUT(w.runsPanel()->resumeAction()->isEnabled(), 5000);
        w.runsPanel()->resumeAction()->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!RunManager::isActive(w.store()->byId(id)->status), 120000);
        QVERIFY2(w.store()->byId(id)->status == "finished", qPrintable(w.store()->byId(id)->message));
        QCOMPARE(w.store()->byId(id)->step, 240);
        QTRY_COMPARE_WITH_TIMEOUT(loss->displayedPoints(0), 120, 10000);

        // Evaluate: the run chosen from the run table, perplexity on the held-out text.
        EvaluatePanel* ev = w.evaluatePanel();
        w.tabs()->setCurrentWidget(ev);
        ev->setModels({"e2e=/somewhere/older"});  // the run chosen now replaces an entry of the same name
        bool picked = false;
        pickRunWhenAsked(this, "e2e", &picked);
        ev->findChild<QPushButton*>("evalFromRuns")->click();
        QVERIFY(picked);
        QCOMPARE(ev->findChild<QPlainTextEdit*>("evalModels")->toPlainText(), "e2e=" + QDir::cleanPath(runDir));
        ev->setTasks({"wikitext2=" + heldOut});
        ev->findChild<QSpinBox*>("pplWindow")->setValue(32);
        QSignalSpy evalDone(ev, &EvaluatePanel::finished);
        ev->start();
        QTRY_VERIFY_WITH_TIMEOUT(!evalDone.isEmpty(), 60000);
        QVERIFY2(evalDone.first().first().toBool(), qPrintable(ev->lastError()));
        QTableWidget* t = ev->table();
        QCOMPARE(t->rowCount(), 1);
        QCOMPARE(t->item(0, 0)->text(), QString("e2e"));
        const double ppl = t->item(0, 1)->text().toDouble();
        QVERIFY2(std::isfinite(ppl) && ppl > 1 && ppl < 512, qPrintable(t->item(0, 1)->text()));

        // Compare: the same run picked, a generation streamed into its column.
        ComparePanel* cmp = w.comparePanel();
        w.tabs()->setCurrentWidget(cmp);
        picked = false;
        pickRunWhenAsked(this, "e2e", &picked);
        cmp->findChild<QPushButton*>("compareFromRuns")->click();
        QVERIFY(picked);
        cmp->setPrompt("The quick brown fox");
        cmp->setMaxTokens(12);
        cmp->generate();
        QCOMPARE(cmp->columnCount(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(!cmp->isRunning(), 60000);
        QVERIFY2(cmp->columnStatus(0).contains("tokens"), qPrintable(cmp->columnStatus(0)));
        QVERIFY(!cmp->columnText(0).trimmed().isEmpty());
    }
};

QTEST_MAIN(EndToEndTest)
#include "test_gui_e2e.moc"
