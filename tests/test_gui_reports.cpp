// GUI tests (offscreen): ablation grids, results tables and their CSV/LaTeX
// export; figure / table / HDF5 export (checked by magic bytes and by parsing
// the files back); the weights, evaluate and compare panels; the headless
// --export-figures entry of the application.
#include "ui/Ablation.h"
#include "ui/ChatPanel.h"
#include "ui/CliEvents.h"
#include "ui/AblationPanel.h"
#include "ui/ComparePanel.h"
#include "ui/EvaluatePanel.h"
#include "ui/Hdf5Report.h"
#include "ui/JsonFile.h"
#include "ui/MainWindow.h"
#include "ui/MetricsReader.h"
#include "ui/ReportExporter.h"
#include "ui/ReportsPanel.h"
#include "ui/RunManager.h"
#include "ui/RunStore.h"
#include "ui/TrainConfigJson.h"
#include "ui/WeightsPanel.h"

#include <hdf5.h>

#include <QChartView>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QLabel>
#include <QListWidget>
#include <QJsonDocument>
#include <QProcess>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSvgRenderer>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QXmlStreamReader>
#include <hdf5.h>
#include <qcustomplot.h>

#include <cmath>

using namespace bimamba::ui;

namespace {
QByteArray head(const QString& path, int n) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.read(n);
}
QByteArray all(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.readAll();
}
bool isPng(const QString& p) {
    return head(p, 8) == QByteArray("\x89PNG\r\n\x1a\n", 8) && QImage(p).width() > 100;
}
bool isSvg(const QString& p) {
    QXmlStreamReader x(all(p));
    bool sawSvg = false;
    while (!x.atEnd()) {
        x.readNext();
        if (x.isStartElement() && x.name() == QStringLiteral("svg")) sawSvg = true;
    }
    return sawSvg && !x.hasError() && QSvgRenderer(p).isValid();
}
bool isPdf(const QString& p) {
    const QByteArray b = all(p);
    return b.startsWith("%PDF-") && b.trimmed().endsWith("%%EOF") && b.size() > 500;
}
bool isHdf5(const QString& p) {
    return head(p, 8) == QByteArray("\x89HDF\r\n\x1a\n", 8);
}
QVector<QStringList> parseCsv(const QString& p) {
    QVector<QStringList> rows;
    const QString text = QString::fromUtf8(all(p));
    QStringList row;
    QString cellText;
    bool quoted = false;
    for (int i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                cellText += '"';
                ++i;
            } else if (c == '"')
                quoted = false;
            else
                cellText += c;
        } else if (c == '"')
            quoted = true;
        else if (c == ',') {
            row << cellText;
            cellText.clear();
        } else if (c == '\n') {
            row << cellText;
            cellText.clear();
            rows << row;
            row.clear();
        } else
            cellText += c;
    }
    return rows;
}
void writeMetrics(const QString& dir, int steps) {
    QDir().mkpath(dir);
    QFile f(QDir(dir).filePath("metrics.jsonl"));
    f.open(QIODevice::WriteOnly);
    for (int s = 1; s <= steps; ++s) {
        f.write(QStringLiteral("{\"type\":\"train\",\"step\":%1,\"tokens\":%2,\"loss\":%3,\"lr\":0.001,\"time\":%4}\n")
                    .arg(s)
                    .arg(s * 256)
                    .arg(2 + 5.0 / s)
                    .arg(s * 0.5)
                    .toUtf8());
        if (s % 10 == 0)
            f.write(QStringLiteral(
                        "{\"type\":\"val\",\"step\":%1,\"tokens\":%2,\"val_loss\":%3,\"val_ppl\":%4,\"time\":%5}\n")
                        .arg(s)
                        .arg(s * 256)
                        .arg(2 + 5.0 / s)
                        .arg(std::exp(2 + 5.0 / s))
                        .arg(s * 0.5)
                        .toUtf8());
    }
}
Histogram gaussianHist(double mu, double sigma, int bins, quint32 seed) {
    Histogram h;
    const double lo = mu - 4 * sigma, hi = mu + 4 * sigma;
    h.counts.fill(0, bins);
    for (int i = 0; i <= bins; ++i) h.edges << lo + (hi - lo) * i / bins;
    quint32 st = seed;
    for (int k = 0; k < 20000; ++k) {
        double u = 0;
        for (int j = 0; j < 12; ++j) {
            st = st * 1664525u + 1013904223u;
            u += (st >> 8) / double(1 << 24);
        }
        const double v = mu + sigma * (u - 6);
        const int b = std::clamp(int((v - lo) / (hi - lo) * bins), 0, bins - 1);
        ++h.counts[b];
    }
    h.mean = mu;
    h.std = sigma;
    h.min = lo;
    h.max = hi;
    h.numel = 20000;
    return h;
}
QVector<HistogramSet> syntheticSets() {
    QVector<HistogramSet> sets;
    const char* names[] = {"mamba2_fp", "bi_mamba", "billm"};
    const char* kinds[] = {"full-precision", "bi-mamba", "ptq"};
    for (int s = 0; s < 3; ++s) {
        HistogramSet hs;
        hs.name = names[s];
        hs.kind = kinds[s];
        hs.checkpoint = QStringLiteral("/ck/%1").arg(names[s]);
        for (int layer : {0, 23, 47})
            for (const QString m : {"in_proj", "out_proj"})
                hs.layers[layer][m] = gaussianHist(0.001 * s, 0.02 * (1 + 0.3 * s), 64, 17 + s + layer);
        sets << hs;
    }
    return sets;
}
}  // namespace

class TestGuiReports : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("BiMambaTest");
        QCoreApplication::setApplicationName("test_gui_reports");
        QVERIFY(tmp_.isValid());
    }

    void ablationGridExpandsIntoTheRightRuns() {
        QJsonObject base = trainPreset("quickstart", "/data");
        AblationAxes ax;
        ax.losses = {"ce", "soft_ce", "kl", "mix"};
        ax.binarizations = {"in_proj", "in_proj+out_proj"};
        ax.teachers = {"/t/llama", "/t/phi"};
        ax.seeds = {0, 1};
        const auto runs = expandAblation("abl", base, ax);
        // CE has no teacher: 2 bin × 2 seeds; the three distillation losses × 2 teachers × 2 bin × 2 seeds
        QCOMPARE(runs.size(), 4 + 3 * 2 * 2 * 2);
        QSet<QString> names;
        int ce = 0;
        for (const auto& r : runs) {
            names.insert(r.name);
            const QString loss = r.config.value("loss").toString();
            QVERIFY(ax.losses.contains(loss));
            QVERIFY(ax.binarizations.contains(r.config.value("model").toObject().value("binarize").toString()));
            QCOMPARE(r.config.value("model").toObject().value("preset").toString(), QString("small"));  // base kept
            QCOMPARE(r.config.value("steps").toInt(), base.value("steps").toInt());
            if (loss == "ce") {
                ++ce;
                QVERIFY(!r.config.contains("teacher"));
                QVERIFY(!r.axes.contains("teacher"));
            } else {
                QVERIFY(ax.teachers.contains(r.config.value("teacher").toString()));
            }
            QVERIFY(r.name.startsWith("abl-"));
            QVERIFY(trainConfigProblems(r.config, false).isEmpty());
        }
        QCOMPARE(ce, 4);
        QCOMPARE(names.size(), runs.size());  // unique names
        // The paper's Table 10 grid: sizes × binarization scope
        AblationAxes t10;
        t10.sizes = {"780m", "2.7b"};
        t10.binarizations = {"in_proj", "in_proj+out_proj"};
        const auto r10 = expandAblation("t10", base, t10);
        QCOMPARE(r10.size(), 4);
        QCOMPARE(r10[0].config.value("model").toObject().value("preset").toString(), QString("780m"));
        QCOMPARE(r10[3].config.value("model").toObject().value("binarize").toString(), QString("in_proj+out_proj"));
        // No axis: the base alone
        QCOMPARE(expandAblation("one", base, {}).size(), 1);
    }

    void ablationPanelLaunchesGroupAndExportsTable() {
        QTemporaryDir ws;
        const QString data = QDir(ws.path()).filePath("corpus");
        QDir().mkpath(data);
        // A CLI that exists but has no `train` yet: the runs fail with its message.
        const QString cli = QDir(ws.path()).filePath("bimamba");
        QFile f(cli);
        f.open(QIODevice::WriteOnly);
        f.write("#!/bin/sh\necho \"bimamba: unknown command '$1'\" >&2\nexit 2\n");
        f.close();
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        MainWindow w(ws.path(), cli);
        w.manager()->setPollInterval(100);
        AblationPanel* p = w.ablationPanel();
        p->setGroupName("loss-abl");
        p->setBaseConfig(trainPreset("quickstart", data));
        AblationAxes ax;
        ax.losses = {"ce", "mix"};
        ax.teachers = {data};
        ax.seeds = {0, 1};
        p->setAxes(ax);
        QCOMPARE(p->preview().size(), 4);
        QString err;
        const auto ids = p->launchGroup(&err);
        QCOMPARE(ids.size(), 4);
        QCOMPARE(w.store()->group("loss-abl").size(), 4);
        // every run fails with the CLI's own message, the window stays up
        for (qint64 id : ids) QTRY_COMPARE_WITH_TIMEOUT(w.store()->byId(id)->status, QString("failed"), 10000);
        QVERIFY(w.store()->byId(ids[0])->message.contains("unknown command 'train'"));
        // one run evaluated: its eval_results.json feeds the Table-5 columns
        const RunRecord r0 = *w.store()->byId(ids[0]);
        QJsonObject res{
            {"boolq", QJsonObject{{"kind", "mc"}, {"acc", 0.6}, {"headline", "acc"}}},
            {"arc_challenge", QJsonObject{{"kind", "mc"}, {"acc", 0.2}, {"acc_norm", 0.3}, {"headline", "acc_norm"}}},
            {"wikitext2", QJsonObject{{"kind", "ppl"}, {"ppl", 13.4}}}};
        writeJsonFile(QDir(r0.runDir).filePath("eval_results.json"),
                      QJsonObject{{"models", QJsonArray{QJsonObject{{"label", "x"}, {"results", res}}}}});
        p->showGroup("loss-abl");
        const ResultsTable t = p->currentResults();
        QCOMPARE(t.rows.size(), 4);
        QVERIFY(t.header.contains("Loss") && t.header.contains("Seed") && t.header.contains("Teacher"));
        QVERIFY(t.header.contains("BoolQ") && t.header.contains("ARC-c") && t.header.contains("Avg") &&
                t.header.contains("Wiki2 ppl"));
        const int boolq = t.header.indexOf("BoolQ"), arcc = t.header.indexOf("ARC-c"), avg = t.header.indexOf("Avg"),
                  wiki = t.header.indexOf("Wiki2 ppl"), loss = t.header.indexOf("Loss");
        QCOMPARE(t.rows[0][boolq], QString("60.0"));
        QCOMPARE(t.rows[0][arcc], QString("30.0"));  // acc_norm is ARC-c's headline
        QCOMPARE(t.rows[0][avg], QString("45.0"));
        QCOMPARE(t.rows[0][wiki], QString("13.40"));
        QCOMPARE(t.rows[0][loss], QString("CE"));
        QCOMPARE(t.rows[2][loss], QString("mix"));
        const QString csv = QDir(ws.path()).filePath("t5.csv"), tex = QDir(ws.path()).filePath("t5.tex");
        QVERIFY(p->exportCsv(csv, &err));
        const auto rows = parseCsv(csv);
        QCOMPARE(rows.size(), 5);
        QCOMPARE(rows[0], t.header);
        QCOMPARE(rows[1][boolq], QString("60.0"));
        QVERIFY(p->exportLatex(tex, &err));
        const QString latex = QString::fromUtf8(all(tex));
        QVERIFY(latex.contains("\\begin{tabular}") && latex.contains("\\end{tabular}"));
        QCOMPARE(latex.count("\\\\\n"), 5);  // header + 4 rows
        QVERIFY(latex.contains("loss-abl-ce-s0"));
        QVERIFY(latex.contains("loss-abl-ce-s0 & CE &"));
        // An archived run leaves the table, and the panel says so.
        QVERIFY(w.store()->setArchived(ids[3], true));
        p->showGroup("loss-abl");
        QCOMPARE(p->currentResults().rows.size(), 3);
        QVERIFY2(p->findChild<QLabel*>("ablationInfo")->text().contains("1 archived run(s) of group loss-abl"),
                 qPrintable(p->findChild<QLabel*>("ablationInfo")->text()));
    }

    void ablationTableAggregatesSeedGroupsFromAStudyWorkspace() {
        // A study workspace: runs/<stage>/ and one eval file for all models,
        // rows labelled by stage. a, b and c differ only in the seed (c is a's
        // seed again), d in the loss.
        QTemporaryDir ws;
        auto run = [&](const QString& name, const QString& loss, int seed) {
            const QString dir = QDir(ws.path()).filePath("runs/" + name);
            QDir().mkpath(dir);
            writeJsonFile(QDir(dir).filePath("train_config.json"),
                          QJsonObject{{"data", "/d"}, {"loss", loss}, {"seed", seed}, {"steps", 400}});
            RunRecord r;
            r.name = name;
            r.loss = loss;
            r.binarize = "in_proj+out_proj";
            r.runDir = dir;
            r.status = "finished";
            return r;
        };
        const QVector<RunRecord> runs{run("a", "soft_ce", 1), run("b", "soft_ce", 2), run("c", "soft_ce", 1),
                                      run("d", "ce", 1)};
        auto model = [](const QString& label, double ppl, double boolq) {
            return QJsonObject{
                {"label", label},
                {"results", QJsonObject{{"wikitext2", QJsonObject{{"kind", "ppl"}, {"ppl", ppl}}},
                                        {"boolq", QJsonObject{{"kind", "mc"}, {"acc", boolq}, {"headline", "acc"}}}}}};
        };
        QDir().mkpath(QDir(ws.path()).filePath("eval"));
        writeJsonFile(QDir(ws.path()).filePath("eval/perplexity.json"),
                      QJsonObject{{"models", QJsonArray{model("a", 470, 0.5), model("b", 452, 0.6),
                                                        model("c", 476, 0.7), model("d", 412, 0.4)}}});
        const ResultsTable t = ablationResults(runs);
        QCOMPARE(t.rows.size(), 5);  // four runs, one seed group (d stands alone)
        QCOMPARE(t.seedGroupRows, QVector<int>{4});
        const int wiki = t.header.indexOf("Wiki2 ppl"), boolq = t.header.indexOf("BoolQ"),
                  loss = t.header.indexOf("Loss");
        QCOMPARE(t.rows[1][wiki], QString("452.00"));  // found in the workspace's eval file by label
        QCOMPARE(t.rows[3][boolq], QString("40.0"));
        const QStringList g = t.rows[4];
        QVERIFY2(g[0].startsWith("mean ± sd, n=3: a, b, c"), qPrintable(g[0]));
        QCOMPARE(g[loss], QString("AR-KD"));
        // mean of 470, 452, 476 = 466; sample sd = sqrt(((4)^2 + (14)^2 + (10)^2) / 2) = sqrt(156) = 12.49
        QCOMPARE(g[wiki], QString("466.00 ± 12.49"));
        QCOMPARE(g[boolq], QString("60.0 ± 10.0"));
        // d against the group by best validation perplexity: spread = max - min.
        const int vs = t.header.indexOf("Val ppl vs seed group");
        QVERIFY(vs > 0);
        QCOMPARE(t.rows[4][vs], QString());  // no validation metrics here: no spread to compare with
    }

    void ablationTableMarksDifferencesAgainstTheSeedSpread() {
        QTemporaryDir ws;
        auto run = [&](const QString& name, const QString& loss, int seed, double bestVal) {
            const QString dir = QDir(ws.path()).filePath("runs/" + name);
            QDir().mkpath(dir);
            writeJsonFile(QDir(dir).filePath("train_config.json"), QJsonObject{{"loss", loss}, {"seed", seed}});
            RunRecord r;
            r.name = name;
            r.loss = loss;
            r.runDir = dir;
            r.bestValPpl = bestVal;
            return r;
        };
        // seed group 69.2 / 69.4 / 69.1 (spread 0.3, mean 69.2333); CE 64.9 is beyond, KL 69.3 within.
        const ResultsTable t =
            ablationResults({run("a", "soft_ce", 1, 69.2), run("b", "soft_ce", 2, 69.4), run("c", "soft_ce", 1, 69.1),
                             run("ce", "ce", 1, 64.9), run("kl", "kl", 1, 69.3)});
        const int vs = t.header.indexOf("Val ppl vs seed group");
        QCOMPARE(t.rows[5][vs], QString("spread 0.30"));
        QCOMPARE(t.rows[3][vs], QString("-4.33, beyond spread"));
        QCOMPARE(t.rows[4][vs], QString("+0.07, within spread"));
        QCOMPARE(t.rows[0][vs], QString());  // a member of the group
    }

    void hdf5HistogramsRoundTripAndWeightsPanel() {
        const QString h5 = QDir(tmp_.path()).filePath("hist.h5");
        QString err;
        QVERIFY2(writeHistogramsHdf5(syntheticSets(), h5, &err), qPrintable(err));
        QVERIFY(isHdf5(h5));
        Hdf5Report rep;
        QVERIFY2(rep.load(h5, &err), qPrintable(err));
        QCOMPARE(rep.format, QString("bimamba-report"));
        QCOMPARE(rep.histograms.size(), 3);
        QCOMPARE(rep.layers(), (QList<int>{0, 23, 47}));
        QCOMPARE(rep.modules(), (QStringList{"in_proj", "out_proj"}));
        // sets come back in HDF5 name order
        QCOMPARE(rep.histograms[0].name, QString("bi_mamba"));
        QCOMPARE(rep.histograms[2].name, QString("mamba2_fp"));
        QCOMPARE(rep.histograms[2].kind, QString("full-precision"));
        const Histogram& h = rep.histograms[0].layers[23]["out_proj"];
        QCOMPARE(h.counts.size(), 64);
        QCOMPARE(h.edges.size(), 65);
        qint64 total = 0;
        for (auto c : h.counts) total += c;
        QCOMPARE(total, 20000);
        QCOMPARE(rep.histograms[0].kind, QString("bi-mamba"));
        QCOMPARE(rep.histograms[0].checkpoint, QString("/ck/bi_mamba"));
        QCOMPARE(h.numel, 20000);
        QVERIFY(std::fabs(h.std - 0.026) < 1e-12);
        QVERIFY(!rep.load(QDir(tmp_.path()).filePath("nope.h5"), &err));
        QFile bad(QDir(tmp_.path()).filePath("bad.h5"));
        bad.open(QIODevice::WriteOnly);
        bad.write("not hdf5");
        bad.close();
        QVERIFY(!rep.load(bad.fileName(), &err));
        QVERIFY(err.contains("not an HDF5 file"));

        QTemporaryDir ws;
        MainWindow w(ws.path(), "");
        w.resize(1300, 850);
        w.show();
        WeightsPanel* p = w.weightsPanel();
        QVERIFY(p->loadReport(h5));
        QCOMPARE(p->overlayPlot()->graphCount(), 3);       // three sets overlaid
        QCOMPARE(p->gridPlot()->graphCount(), 3 * 3 * 2);  // layers × modules panels, 3 sets each
        p->setLayerIndex(2);
        p->setModule("out_proj");
        QCOMPARE(p->overlayPlot()->graphCount(), 3);
        const auto files = p->exportFigures(QDir(tmp_.path()).filePath("wfig"), &err);
        QCOMPARE(files.size(), 6);
        for (const auto& f : files) {
            if (f.endsWith(".png")) QVERIFY2(isPng(f), qPrintable(f));
            if (f.endsWith(".svg")) QVERIFY2(isSvg(f), qPrintable(f));
            if (f.endsWith(".pdf")) QVERIFY2(isPdf(f), qPrintable(f));
        }
    }

    // Reports from other tools or damaged ones (issue #17, fuzz_hdf5_report):
    // counts outside qint64 (cast, undefined behaviour) read as absent, and an
    // attribute of several values where one is expected (read into one double,
    // it overflowed the stack) reads as absent, the rest of the file as usual.
    void hdf5ReportWithHostileAttributesLoadsWhatIsValid() {
        const QString h5 = QDir(tmp_.path()).filePath("hostile_attrs.h5");
        QString err;
        QVERIFY2(writeHistogramsHdf5(syntheticSets(), h5, &err), qPrintable(err));
        {
            hid_t f = H5Fopen(h5.toUtf8().constData(), H5F_ACC_RDWR, H5P_DEFAULT);
            QVERIFY(f >= 0);
            auto put = [](hid_t obj, const char* name, double v) {
                if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
                hid_t s = H5Screate(H5S_SCALAR);
                hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
                H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
                H5Aclose(a), H5Sclose(s);
            };
            put(f, "format_version", 1e300);
            hid_t m = H5Oopen(f, "/histograms/bi_mamba/layer_23/out_proj", H5P_DEFAULT);
            QVERIFY(m >= 0);
            put(m, "numel", -1e300);
            H5Oclose(m);
            H5Fclose(f);
        }
        Hdf5Report rep;
        QVERIFY2(rep.load(h5, &err), qPrintable(err));
        QCOMPARE(rep.formatVersion, qint64(0));
        const Histogram& h = rep.histograms[0].layers[23]["out_proj"];
        QCOMPARE(h.numel, qint64(20000));  // from the bins, as when the attribute is missing

        // The fuzz seed whose /histograms/bi/layer_0/in_proj has "std" of three values.
        const QString seed =
            QString(BIMAMBA_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_hdf5_report/bad_attr_of_three_values_latest.h5";
        QVERIFY2(rep.load(seed, &err), qPrintable(err));
        QCOMPARE(rep.histograms.size(), 1);
        QCOMPARE(rep.histograms[0].kind, QString("bi-mamba"));  // an ASCII string (HDF5's default)
        const Histogram& g = rep.histograms[0].layers[0]["in_proj"];
        QCOMPARE(g.counts, (QVector<qint64>{1, 5, 2}));
        QCOMPARE(g.mean, 0.1);
        QCOMPARE(g.std, 0.0);  // refused, read as absent
        QCOMPARE(rep.eval.models, (QStringList{"fp16", "bi"}));
    }

    // libhdf5 crashes or loops on some damaged files (docs/reliability.md), so
    // load() reads in a child process: a crash or a hang there is an error
    // here, and this process goes on.
    void hdf5ReportIsReadInAChildThatMayCrashOrHang() {
        const QString h5 = QDir(tmp_.path()).filePath("isolated.h5");
        QString err;
        QVERIFY2(writeHistogramsHdf5(syntheticSets(), h5, &err), qPrintable(err));
        Hdf5Report rep;
        QVERIFY2(rep.load(h5, &err), qPrintable(err));  // what the child read comes back whole
        Hdf5Report here;
        QVERIFY(here.loadInProcess(h5, &err));
        QCOMPARE(rep.histograms.size(), here.histograms.size());
        QCOMPARE(rep.layers(), here.layers());
        QCOMPARE(rep.histograms[0].layers[23]["out_proj"].counts, here.histograms[0].layers[23]["out_proj"].counts);
        QCOMPARE(rep.histograms[0].kind, here.histograms[0].kind);

        qputenv("BIMAMBA_TEST_HDF5_READER", "crash");
        QVERIFY(!rep.load(h5, &err));
        QVERIFY2(err.contains("the HDF5 library crashed reading") && err.contains("signal 11"), qPrintable(err));
        QVERIFY(rep.histograms.isEmpty());
        qputenv("BIMAMBA_TEST_HDF5_READER", "hang");
        Hdf5Report::setReadTimeoutMs(300);
        QElapsedTimer t;
        t.start();
        QVERIFY(!rep.load(h5, &err));
        QVERIFY2(err.contains("did not finish reading") && err.contains("0.3 s"), qPrintable(err));
        QVERIFY(t.elapsed() < 5000);
        Hdf5Report::setReadTimeoutMs(30000);
        qunsetenv("BIMAMBA_TEST_HDF5_READER");

        // A file that crashes libhdf5 itself (1.10: a variable-length string
        // naming an object its global heap does not have; found by fuzz_hdf5_report).
        const QString bad = QString(BIMAMBA_SOURCE_DIR) + "/tests/data/hdf5/libhdf5-crash-vlen-heap-index.h5";
        QVERIFY(QFileInfo::exists(bad));
        if (!rep.load(bad, &err)) QVERIFY(!err.isEmpty());  // an error, or what it could read: never a crash here
        QVERIFY2(rep.load(h5, &err), qPrintable(err));      // and the next file reads as usual
    }

    void exportWritesValidFiles() {
        const QString run = QDir(tmp_.path()).filePath("runs/r1");
        writeMetrics(run, 200);
        QString err;
        QVERIFY(writeHistogramsHdf5(syntheticSets(), QDir(run).filePath("report.h5"), &err));
        const QString out = QDir(tmp_.path()).filePath("export");
        const QStringList files = ReportExporter::exportRunFigures(run, out, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        for (const QString base : {"loss", "val_ppl", "histograms"}) {
            QVERIFY2(isPng(QDir(out).filePath(base + ".png")), qPrintable(base));
            QVERIFY2(isSvg(QDir(out).filePath(base + ".svg")), qPrintable(base));
            QVERIFY2(isPdf(QDir(out).filePath(base + ".pdf")), qPrintable(base));
        }
        const auto train = parseCsv(QDir(out).filePath("metrics_train.csv"));
        QCOMPARE(train.size(), 201);
        QCOMPARE(train[0][0], QString("step"));
        const int lossCol = train[0].indexOf("loss");
        QVERIFY(lossCol > 0);
        QCOMPARE(train[1][lossCol].toDouble(), 7.0);
        QCOMPARE(parseCsv(QDir(out).filePath("metrics_val.csv")).size(), 21);
        // metrics.h5 read back with the HDF5 C API
        const QString mh5 = QDir(out).filePath("metrics.h5");
        QVERIFY(isHdf5(mh5));
        hid_t fh = H5Fopen(mh5.toUtf8().constData(), H5F_ACC_RDONLY, H5P_DEFAULT);
        QVERIFY(fh >= 0);
        hid_t d = H5Dopen2(fh, "/metrics/train/loss", H5P_DEFAULT);
        QVERIFY(d >= 0);
        hid_t sp = H5Dget_space(d);
        QCOMPARE(H5Sget_simple_extent_npoints(sp), hssize_t(200));
        std::vector<double> v(200);
        QVERIFY(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
        QCOMPARE(v[0], 7.0);
        QCOMPARE(v[199], 2 + 5.0 / 200);
        H5Sclose(sp);
        H5Dclose(d);
        H5Fclose(fh);
        QVERIFY(files.size() >= 9 + 3);

        // The Reports tab: run table CSV + the run's figures + copied report
        QTemporaryDir ws;
        QDir().mkpath(QDir(ws.path()).filePath("runs"));
        QVERIFY(QProcess::execute("cp", {"-r", run, QDir(ws.path()).filePath("runs/r1")}) == 0);
        MainWindow w(ws.path(), "");
        const QString out2 = QDir(ws.path()).filePath("exports");
        w.reportsPanel()->setOutDir(out2);
        w.reportsPanel()->setRun(w.store()->all().first().id);
        const QStringList f2 = w.reportsPanel()->exportAll(&err);
        QVERIFY(isHdf5(QDir(out2).filePath("r1/report.h5")));
        const auto runsCsv = parseCsv(QDir(out2).filePath("runs.csv"));
        QCOMPARE(runsCsv.size(), 2);
        QCOMPARE(runsCsv[0][0], QString("Name"));
        QCOMPARE(runsCsv[1][0], QString("r1"));
        QVERIFY(isPng(QDir(out2).filePath("r1/loss.png")));
        // The list keeps the workspace's files and adds what was written;
        // choosing a figure previews it.
        QListWidget* list = w.reportsPanel()->fileList();
        QStringList shown;
        for (int i = 0; i < list->count(); ++i) shown << list->item(i)->text();
        QVERIFY2(shown.join("|").contains("runs/r1/report.h5"), qPrintable(shown.join("|")));
        QVERIFY2(shown.join("|").contains("r1/loss.png"), qPrintable(shown.join("|")));
        QVERIFY(w.reportsPanel()->selectFile("loss.png"));
        QVERIFY(list->currentItem()->data(Qt::UserRole).toString().endsWith("r1/loss.png"));
        QCOMPARE(w.reportsPanel()->previewText(), QString());  // a figure, not text
        QVERIFY(w.reportsPanel()->selectFile("runs.csv"));
        QVERIFY(w.reportsPanel()->previewText().startsWith("Name"));
        QVERIFY(!w.reportsPanel()->selectFile("no-such-file"));
    }

    void headlessExportEntry() {
        const QString app = QDir(QCoreApplication::applicationDirPath()).filePath("../app/bimamba-workbench");
        if (!QFileInfo(app).isExecutable()) QSKIP("bimamba-workbench not built beside the tests");
        const QString run = QDir(tmp_.path()).filePath("runs/headless");
        writeMetrics(run, 50);
        const QString out = QDir(tmp_.path()).filePath("headless-out");
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("QT_QPA_PLATFORM", "offscreen");
        p.setProcessEnvironment(env);
        p.start(app, {"--export-figures", run, "--out", out});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 0);
        QVERIFY(isPng(QDir(out).filePath("loss.png")));
        QVERIFY(isSvg(QDir(out).filePath("val_ppl.svg")));
        QVERIFY(isPdf(QDir(out).filePath("loss.pdf")));
        p.start(app, {"--export-figures", QDir(tmp_.path()).filePath("missing"), "--out", out});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 1);
        QVERIFY(p.readAllStandardError().contains("is not a folder"));
    }

    void evaluatePanelShowsTable3Layout() {
        const QString path = QDir(tmp_.path()).filePath("eval_results.json");
        auto mc = [](double acc, double accNorm, const char* h) {
            return QJsonObject{{"kind", "mc"}, {"acc", acc}, {"acc_norm", accNorm}, {"headline", h}};
        };
        QJsonArray models;
        models.append(QJsonObject{{"label", "Mamba-2"},
                                  {"results", QJsonObject{{"wikitext2", QJsonObject{{"kind", "ppl"}, {"ppl", 11.8}}},
                                                          {"ptb", QJsonObject{{"kind", "ppl"}, {"ppl", 20.0}}},
                                                          {"piqa", mc(0.70, 0.71, "acc")},
                                                          {"boolq", mc(0.60, 0.0, "acc")},
                                                          {"hellaswag", mc(0.40, 0.50, "acc_norm")}}}});
        models.append(QJsonObject{{"label", "Bi-Mamba"},
                                  {"results", QJsonObject{{"wikitext2", QJsonObject{{"kind", "ppl"}, {"ppl", 13.4}}},
                                                          {"ptb", QJsonObject{{"kind", "ppl"}, {"ppl", 32.4}}},
                                                          {"piqa", mc(0.65, 0.66, "acc")},
                                                          {"boolq", mc(0.55, 0.0, "acc")},
                                                          {"hellaswag", QJsonObject{{"kind", "mc"},
                                                                                    {"acc", 0.33},
                                                                                    {"acc_norm", 0.38},
                                                                                    {"acc_norm_stderr", 0.0123},
                                                                                    {"headline", "acc_norm"}}}}}});
        writeJsonFile(path, QJsonObject{{"models", models}});
        QTemporaryDir ws;
        MainWindow w(ws.path(), "");
        EvaluatePanel* p = w.evaluatePanel();
        QVERIFY(p->loadResults(path));
        QTableWidget* t = p->table();
        QStringList header;
        for (int c = 0; c < t->columnCount(); ++c) header << t->horizontalHeaderItem(c)->text();
        // perplexity first (Wiki2, PTB), then zero-shot in the paper's order, then Avg
        QCOMPARE(header, (QStringList{"Model", "Wiki2 ↓", "PTB ↓", "BoolQ ↑", "PIQA ↑", "HS ↑", "Avg ↑"}));
        QCOMPARE(t->item(1, 0)->text(), QString("Bi-Mamba"));
        QCOMPARE(t->item(1, 1)->text(), QString("13.40"));
        QCOMPARE(t->item(0, 5)->text(), QString("50.0"));        // HellaSwag headline acc_norm
        QCOMPARE(t->item(1, 5)->text(), QString("38.0 ± 1.2"));  // with its standard error when the results have it
        QCOMPARE(t->item(0, 6)->text(), QString("60.0"));        // (60 + 70 + 50) / 3
        QCOMPARE(p->chart()->chart()->series().size(), 1);
        // Running with a CLI lacking the command: the error is shown, nothing crashes
        p->setModels({"m=/nowhere"});
        p->setTasks({"wikitext2=/nowhere.txt"});
        w.manager()->setCliPath(QDir(tmp_.path()).filePath("no-cli"));
        QSignalSpy done(p, &EvaluatePanel::finished);
        p->start();
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 5000);
        QCOMPARE(done.first().first().toBool(), false);
        QVERIFY(p->lastError().contains("not found"));
    }

    void chatStatsFromEngineEvents() {
        // the "stats" event `bimamba chat --json` writes after each reply (docs/cli-events.md)
        JsonLineReader r;
        const auto ev = r.feed(
            "{\"event\":\"stats\",\"tokens\":128,\"tok_per_s\":77.8,\"prompt_tokens\":12,"
            "\"prompt_tok_per_s\":410.5,\"rss_mb\":1064.9,\"joules_per_token\":0.123,"
            "\"energy_source\":\"estimate\",\"stop\":\"eos\"}\n{\"event\":\"tok");
        QCOMPARE(ev.size(), 1);  // the second line is not complete yet
        const ChatStats s = chatStatsFromEvent(ev[0]);
        QCOMPARE(s.tokPerS, 77.8);  // decode speed, not the prompt's
        QCOMPARE(s.tokens, qint64(128));
        QCOMPARE(s.memMb, 1064.9);
        QCOMPARE(s.joulesPerToken, 0.123);
        QCOMPARE(s.energySource, QString("estimate"));
        QVERIFY(!s.energyMeasured());
        QCOMPARE(s.energyText(), QString("0.123 J/token (estimate)"));
        // the rest of the split line arrives: a token event, which leaves the stats alone
        const auto tok = r.feed("en\",\"text\":\" hi\"}\nnot json\n");
        QCOMPARE(tok.size(), 1);
        QCOMPARE(eventName(tok[0]), QString("token"));
        QCOMPARE(tok[0].value("text").toString(), QString(" hi"));
        QCOMPARE(r.skipped(), 1);
        QCOMPARE(chatStatsFromEvent(tok[0], s).tokPerS, 77.8);
        // RAPL: measured; fields an event lacks keep their earlier value
        const ChatStats rapl = chatStatsFromEvent(
            r.feed(
                "{\"event\":\"stats\",\"tok_per_s\":80.1,\"joules_per_token\":0.0456,\"energy_source\":\"RAPL\"}\n")[0],
            s);
        QCOMPARE(rapl.joulesPerToken, 0.0456);
        // the "ready" event carries the model's weight bytes (RSS is shown beside them); later stats keep them
        const ChatStats ready = chatStatsFromEvent(
            r.feed("{\"event\":\"ready\",\"weights\":\"binary\",\"weights_mb\":12.5,\"threads\":2}\n")[0], s);
        QCOMPARE(ready.weightsMb, 12.5);
        QCOMPARE(ready.tokPerS, 77.8);
        QCOMPARE(chatStatsFromEvent(r.feed("{\"event\":\"stats\",\"rss_mb\":400}\n")[0], ready).weightsMb, 12.5);
        QCOMPARE(rapl.energySource, QString("RAPL"));
        QVERIFY(rapl.energyMeasured());
        QCOMPARE(rapl.energyText(), QString("0.0456 J/token (RAPL, measured)"));
        QCOMPARE(rapl.tokens, qint64(128));
        QCOMPARE(rapl.memMb, 1064.9);
        QCOMPARE(ChatStats{}.energyText(), QString("–"));
        // a chat engine driven through stdin/stdout: the reply streams into the transcript
        QTemporaryDir ws;
        const QString cli = QDir(ws.path()).filePath("bimamba");
        QFile f(cli);
        f.open(QIODevice::WriteOnly);
        // (it insists on --json; the reply is two token events, then stats)
        f.write(
            "#!/bin/sh\n[ \"$1\" = chat ] || exit 2\ncase \" $* \" in *' --json '*|*' --json') ;; *) exit 3;; esac\n"
            "echo '{\"event\":\"ready\",\"model\":\"m\"}'\n"
            "while read -r line; do printf '{\"event\":\"token\",\"text\":\" echo\"}\\n'; "
            "printf '{\"event\":\"token\",\"text\":\" %s\"}\\n' \"$line\"; "
            "echo '{\"event\":\"stats\",\"tokens\":3,\"tok_per_s\":42.0,\"prompt_tokens\":2,\"joules_per_token\":0.0123,"
            "\"energy_source\":\"estimate\",\"stop\":\"eos\"}'; done\n");
        f.close();
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        MainWindow w(ws.path(), cli);
        ChatPanel* c = w.chatPanel();
        c->setModels("/m/bi.bmd", "");
        c->setPlainText(false);  // the chat template (the setting persists)
        QVERIFY(c->startEngines());
        c->send("hello there");
        QTRY_VERIFY_WITH_TIMEOUT(c->transcript(0).contains("Assistant: echo hello there"), 5000);
        QTRY_COMPARE_WITH_TIMEOUT(c->stats(0).tokPerS, 42.0, 5000);
        QCOMPARE(c->stats(0).joulesPerToken, 0.0123);
        QCOMPARE(c->stats(0).energySource, QString("estimate"));
        // the panel shows the energy with its label (the stats line refreshes once a second)
        QTRY_VERIFY_WITH_TIMEOUT(c->statsText(0).contains("0.0123 J/token (estimate)"), 3000);
        c->stopEngines();

        // Plain text: `--template text` reaches the CLI, the prompt is
        // continued in the transcript without an "Assistant:" label; a reply
        // that ends at once says so.
        QFile g(cli);
        QVERIFY(g.open(QIODevice::WriteOnly));
        g.write(
            "#!/bin/sh\ncase \" $* \" in *' --template text '*|*' --template text') ;; *) exit 3;; esac\n"
            "echo '{\"event\":\"ready\",\"model\":\"m\",\"template\":\"text\"}'\n"
            "read -r line; printf '{\"event\":\"token\",\"text\":\" and then\"}\\n'\n"
            "echo '{\"event\":\"stats\",\"tokens\":2,\"tok_per_s\":40.0,\"stop\":\"max_tokens\"}'\n"
            "read -r line; echo '{\"event\":\"stats\",\"tokens\":0,\"tok_per_s\":0,\"stop\":\"eos\"}'\n"
            "read -r line\n");
        g.close();
        c->setPlainText(true);
        QVERIFY(c->startEngines());
        c->send("Once upon a time");
        QTRY_VERIFY2_WITH_TIMEOUT(c->transcript(0).contains("Once upon a time and then"),
                                  qPrintable(c->transcript(0) + " / " + c->lastError()), 5000);
        QVERIFY(!c->transcript(0).contains("Assistant:"));
        QVERIFY2(!c->transcript(0).contains("[engine stopped]"), qPrintable(c->transcript(0)));  // the stop above
        c->send("The end");
        QTRY_VERIFY_WITH_TIMEOUT(c->transcript(0).contains("The end [the model ended at once]"), 5000);
        QVERIFY2(c->lastError().isEmpty(), qPrintable(c->lastError()));
        c->stopEngines();
        c->setPlainText(false);
    }

    // `bimamba generate --stream` output appears in the column while the
    // process is still running (a fake CLI writes one word, waits, then the
    // rest), and the final stats line (tokens, tok/s, J/token with its
    // source) is shown under the column.
    void compareStreamsTextBeforeTheProcessEnds() {
        QTemporaryDir ws;
        const QString cli = QDir(ws.path()).filePath("bimamba");
        QFile f(cli);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(
            "#!/bin/sh\n[ \"$1\" = generate ] || exit 2\n"
            "case \" $* \" in *' --stream '*) ;; *) echo 'no --stream' >&2; exit 3;; esac\n"
            "case \" $* \" in *' --json '*|*' --json') ;; *) echo 'no --json' >&2; exit 3;; esac\n"
            "echo '{\"event\":\"start\",\"label\":\"fp\",\"model\":\"/ck/fp\",\"prompt_index\":0}'\n"
            // a line cut in two reads
            "printf '{\"event\":\"token\",\"label\":\"fp\",\"text\":\"Leonardo\"}\\n{\"event\":\"tok'\n"
            "while [ ! -e \"$0.go\" ]; do sleep 0.05; done\n"  // holds until the test has looked
            "printf 'en\",\"label\":\"fp\",\"text\":\" da Vinci\"}\\n'\n"
            "echo '{\"event\":\"stats\",\"label\":\"fp\",\"tokens\":3,\"tok_per_s\":51.2,\"prompt_tokens\":9,"
            "\"joules_per_token\":0.0123,\"energy_source\":\"estimate\",\"stop\":\"max_tokens\"}'\n"
            "echo '{\"event\":\"done\",\"generations\":1}'\n"
            "echo 'human text on stderr is not read' >&2\n");
        f.close();
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        MainWindow w(ws.path(), cli);
        ComparePanel* p = w.comparePanel();
        p->setModels({"fp=/ck/fp"});
        QSignalSpy done(p, &ComparePanel::allFinished);
        p->generate();
        QTRY_COMPARE_WITH_TIMEOUT(p->columnText(0), QString("Leonardo"), 5000);
        QVERIFY(p->isRunning());  // partial text while the process is still going
        QCOMPARE(p->columnStatus(0), QString("streaming…"));
        QFile(cli + ".go").open(QIODevice::WriteOnly);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() >= 1, 10000);
        QCOMPARE(p->columnText(0), QString("Leonardo da Vinci"));
        QCOMPARE(p->columnStatus(0), QString("done — 3 tokens · 51.2 tok/s · 0.0123 J/token (estimate)"));
        JsonLineReader r;
        const auto ev = r.feed(
            "{\"event\":\"stats\",\"label\":\"bi\",\"tokens\":7,\"tok_per_s\":3.0,\"prompt_tokens\":2,"
            "\"joules_per_token\":2.5,\"energy_source\":\"NVML\",\"stop\":\"eos\"}\n");
        QCOMPARE(ev.size(), 1);
        QCOMPARE(ComparePanel::generateStatsText(ev[0]),
                 QString("7 tokens · 3.0 tok/s · 2.5 J/token (NVML) · stop: eos"));
        QCOMPARE(ComparePanel::generateStatsText(QJsonObject{{"event", "token"}, {"text", "x"}}), QString());
    }

    // With the real CLI: a tiny model trained here; `generate --stream`
    // writes exactly the text that the non-streaming command stores (also
    // with a stop string), and the Compare panel shows that same text.
    void realGenerateStreamMatchesNonStream() {
        const QString cli = qEnvironmentVariable("BIMAMBA_CLI");
        if (cli.isEmpty() || !QFileInfo(cli).isExecutable()) QSKIP("BIMAMBA_CLI is not set to a built bimamba");
        QProcess help;
        help.start(cli, {"generate", "--help"});
        QVERIFY(help.waitForFinished(60000));
        if (!help.readAllStandardOutput().contains("--stream")) QSKIP("this bimamba's generate has no --stream");
        QTemporaryDir ws;
        const QString text = QDir(ws.path()).filePath("corpus.txt");
        QFile f(text);
        QVERIFY(f.open(QIODevice::WriteOnly));
        for (int i = 0; i < 300; ++i)
            f.write(QStringLiteral("The quick brown fox %1 jumps over the lazy dog number %2.\n")
                        .arg(i % 17)
                        .arg(i % 29)
                        .toUtf8());
        f.close();
        const QString data = QDir(ws.path()).filePath("data");
        auto run = [&](const QStringList& args, QByteArray* out = nullptr, QByteArray* err = nullptr) {
            QProcess p;
            p.start(cli, args);
            if (!p.waitForFinished(300000)) return false;
            if (out) *out = p.readAllStandardOutput();
            const QByteArray e = p.readAllStandardError();
            if (err) *err = e;
            if (p.exitCode() != 0) qWarning("%s", e.constData());
            return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
        };
        QVERIFY(run({"prepare", text, "--out", data, "--unit", "line", "--vocab-size", "300", "--quiet"}));
        const QString cfg = QDir(ws.path()).filePath("tiny.json");
        writeJsonFile(
            cfg, QJsonObject{
                     {"data", data},
                     {"model", QJsonObject{{"preset", "tiny"}, {"binarize", "in_proj+out_proj"}, {"vocab_size", 512}}},
                     {"steps", 4},
                     {"seq_len", 32},
                     {"batch_size", 2},
                     {"warmup_steps", 1},
                     {"eval_every", 0},
                     {"checkpoint_every", 0},
                     {"device", "cpu"},
                     {"threads", 1},
                     {"lr", 3e-3}});
        const QString runDir = QDir(ws.path()).filePath("run");
        QVERIFY(run({"train", "--config", cfg, "--run-dir", runDir}));
        for (const QStringList& extra : {QStringList{}, QStringList{"--stop", "o"}}) {
            const QStringList common =
                QStringList{"generate",     "--models", "tiny=" + runDir, "--prompt", "The quick brown",
                            "--max-tokens", "24",       "--threads",      "1"} +
                extra;
            const QString json = QDir(ws.path()).filePath("gen.json");
            QByteArray table, streamed, err;
            QVERIFY(run(common + QStringList{"--out", json}, &table));
            QVERIFY(run(common + QStringList{"--stream"}, &streamed, &err));
            const QJsonObject g = QJsonDocument::fromJson(all(json)).object();
            const QJsonObject o = g["generations"].toArray()[0].toObject()["outputs"].toArray()[0].toObject();
            const QString expected = o["text"].toString();
            QVERIFY2(!expected.isEmpty() || extra.size(), "the tiny model generated nothing");
            QCOMPARE(QString::fromUtf8(streamed), expected);
            QVERIFY(!streamed.contains("+---"));  // no table in stream mode
            QVERIFY(table.contains("+---"));
            // stats line with energy per token and its source
            QVERIFY2(
                QRegularExpression(
                    R"(\[[0-9]+ tokens, [0-9.]+ tok/s, prompt [0-9]+ tokens, [0-9.e+-]+ J/token \((RAPL|estimate)\), stop: [a-z_]+\] tiny)")
                    .match(QString::fromUtf8(err))
                    .hasMatch(),
                err.constData());
            QVERIFY(o["joules_per_token"].toDouble() > 0);
            QVERIFY(!o["energy_source"].toString().isEmpty());
            if (extra.size()) QVERIFY(!expected.contains('o'));
        }
        // the Compare panel, driving the same CLI, shows the same text
        QProcess p;
        const QString json = QDir(ws.path()).filePath("gen.json");
        QVERIFY(run({"generate", "--models", "tiny=" + runDir, "--prompt", "The quick brown", "--max-tokens", "24",
                     "--out", json}));
        const QString expected = QJsonDocument::fromJson(all(json))
                                     .object()["generations"]
                                     .toArray()[0]
                                     .toObject()["outputs"]
                                     .toArray()[0]
                                     .toObject()["text"]
                                     .toString();
        MainWindow w(ws.path(), cli);
        ComparePanel* c = w.comparePanel();
        c->setModels({"tiny=" + runDir});
        c->setPrompt("The quick brown");
        c->setMaxTokens(24);
        QSignalSpy done(c, &ComparePanel::allFinished);
        c->generate();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() >= 1, 120000);
        QCOMPARE(c->columnText(0), expected);
        QVERIFY2(c->columnStatus(0).startsWith("done — 24 tokens") || c->columnStatus(0).contains("stop:"),
                 qPrintable(c->columnStatus(0)));
        QVERIFY(c->columnStatus(0).contains("J/token ("));
    }

    void compareShowsEachModelsOutputOrError() {
        QTemporaryDir ws;
        // A generator that streams a few words slowly, and fails for one model.
        const QString cli = QDir(ws.path()).filePath("bimamba");
        QFile f(cli);
        f.open(QIODevice::WriteOnly);
        f.write(
            "#!/bin/sh\n[ \"$1\" = generate ] || exit 2\ncase \"$3\" in bad=*) echo 'error: no checkpoint in /bad' >&2; exit 1;; esac\n"
            "for w in Leonardo da Vinci; do printf '{\"event\":\"token\",\"text\":\"%s \"}\\n' $w; sleep 0.05; done\n");
        f.close();
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        MainWindow w(ws.path(), cli);
        ComparePanel* p = w.comparePanel();
        p->setModels({"fp=/ck/fp", "bi=/ck/bi", "bad=/bad"});
        QSignalSpy done(p, &ComparePanel::allFinished);
        p->generate();
        QCOMPARE(p->columnCount(), 3);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() >= 1, 10000);
        QCOMPARE(p->columnText(0).trimmed(), QString("Leonardo da Vinci"));
        QCOMPARE(p->columnText(1).trimmed(), QString("Leonardo da Vinci"));
        QCOMPARE(p->columnStatus(0), QString("done"));
        QVERIFY(p->columnStatus(2).contains("exit code 1"));
        QVERIFY(p->columnStatus(2).contains("no checkpoint"));
        QString err;
        const QString csv = QDir(ws.path()).filePath("gen.csv");
        QCOMPARE(p->exportCsv(csv, &err).size(), 1);
        const auto rows = parseCsv(csv);
        QCOMPARE(rows.size(), 4);
        QCOMPARE(rows[1][1], QString("fp"));
    }
};

QTEST_MAIN(TestGuiReports)
#include "test_gui_reports.moc"
