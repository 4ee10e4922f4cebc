// The workbench as a person first sees it: the main window opened on a real
// workspace (the flagship study's, docs/results/paper-small-h200, copied),
// every tab shown in turn at the README's window size and saved as a PNG,
// and each checked for text a person would see cut off (elided without a
// tooltip, clipped) or widgets outside the window (tests/support/WidgetTextCheck.h).
// The PNGs go to $BIMAMBA_TOUR_SHOTS (default: a temporary folder).
#include "tests/support/WidgetTextCheck.h"
#include "ui/ChatPanel.h"
#include "ui/EmptyState.h"
#include "ui/EvaluatePanel.h"
#include "ui/MainWindow.h"
#include "ui/ReportsPanel.h"
#include "ui/Theme.h"
#include "ui/WeightsPanel.h"

#include <QAction>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QStandardItemModel>
#include <QTableView>
#include <QHeaderView>
#include <QVBoxLayout>
#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QListWidget>
#include <QMenu>
#include <QMenuBar>
#include <qcustomplot.h>

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonObject>
#include <QSettings>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

using namespace bimamba::ui;

namespace {

bool copyTree(const QString& from, const QString& to) {
    QDir().mkpath(to);
    QDirIterator it(from, QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot | QDir::Hidden, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString src = it.next();
        const QString dst = QDir(to).filePath(QDir(from).relativeFilePath(src));
        if (it.fileInfo().isDir()) {
            QDir().mkpath(dst);
        } else if (!QFile::copy(src, dst)) {
            return false;
        }
    }
    return true;
}

QJsonArray array(const QStringList& l) {
    return QJsonArray::fromStringList(l);
}

// Shows every tab of `w` in turn and lists what the checker finds, tab by tab.
QStringList problemsInEveryTab(MainWindow& w) {
    QStringList problems;
    for (int i = 0; i < w.tabs()->count(); ++i) {
        w.tabs()->setCurrentIndex(i);
        for (int k = 0; k < 5; ++k) QCoreApplication::processEvents();
        for (const auto& p : bimamba::test::findTextProblems(&w))
            problems << w.tabs()->tabText(i).remove('&') + ": " + p.describe();
    }
    problems.removeDuplicates();
    return problems;
}

QString shotsDir(const QTemporaryDir& tmp, const QString& sub) {
    const QString env = qEnvironmentVariable("BIMAMBA_TOUR_SHOTS");
    return env.isEmpty() ? tmp.filePath(sub) : QDir(env).filePath(sub);
}

}  // namespace

class TourTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);  // the user's QSettings stay untouched
        QSettings().clear();
    }

    // The checker itself, on widgets made to be cut off and their fixed twins.
    void checkerFindsWhatIsCutOff() {
        QWidget win;
        win.resize(400, 300);
        const QString longText = "Mamba-2 teacher with a name far too long for eighty pixels";
        auto* cut = new QLabel(longText, &win);
        cut->setGeometry(10, 10, 80, 20);
        auto* elided = new QLabel(&win);
        elided->setGeometry(10, 40, 80, 20);
        elided->setText(elided->fontMetrics().elidedText(longText, Qt::ElideRight, 78));
        elided->setToolTip(longText);
        auto* elidedNoTip = new QLabel(elided->text(), &win);
        elidedNoTip->setGeometry(10, 70, 80, 20);
        auto* fits = new QLabel("short", &win);
        fits->setGeometry(10, 100, 80, 20);
        auto* button = new QPushButton("A button whose label needs room", &win);
        button->setGeometry(100, 10, 60, 30);
        auto* combo = new QComboBox(&win);
        combo->addItem(longText);
        combo->setGeometry(100, 50, 90, 26);
        auto* outside = new QLabel("x", &win);
        outside->setGeometry(380, 280, 60, 40);
        auto* table = new QTableView(&win);
        auto* model = new QStandardItemModel(1, 2, table);
        model->setHorizontalHeaderLabels({"Best validation perplexity", "ok"});
        model->setItem(0, 0, new QStandardItem(longText));
        auto* tipped = new QStandardItem(longText);
        tipped->setToolTip(longText);
        model->setItem(0, 1, tipped);
        table->setModel(model);
        table->setGeometry(200, 100, 180, 120);
        table->setColumnWidth(0, 60);
        table->setColumnWidth(1, 60);
        // A chart too narrow for its category names: Qt Charts elides them.
        auto* chart = new QChart;
        auto* series = new QBarSeries;
        auto* set = new QBarSet("tokens/s");
        set->append({1.0, 2.0});
        series->append(set);
        chart->addSeries(series);
        auto* axis = new QBarCategoryAxis;
        axis->append(QStringList{"Bi-Mamba bit-packed engine", "fp16 baseline engine"});
        chart->addAxis(axis, Qt::AlignBottom);
        series->attachAxis(axis);
        chart->legend()->hide();
        auto* chartView = new QChartView(chart, &win);
        chartView->setGeometry(10, 130, 150, 160);
        win.show();
        QVERIFY(QTest::qWaitForWindowExposed(&win));
        const auto problems = bimamba::test::findTextProblems(&win);
        QStringList found;
        for (const auto& p : problems) found << p.describe();
        auto reported = [&](const QString& needle) {
            for (const QString& f : found)
                if (f.contains(needle)) return true;
            return false;
        };
        QVERIFY2(reported("QLabel: \"Mamba-2 teacher with"), qPrintable(found.join("\n")));
        QVERIFY2(reported("QPushButton: \"A button"), qPrintable(found.join("\n")));
        QVERIFY2(reported("QComboBox: \"Mamba-2"), qPrintable(found.join("\n")));
        QVERIFY2(reported("lies outside the window"), qPrintable(found.join("\n")));
        QVERIFY2(reported("section 0: \"Best validation"), qPrintable(found.join("\n")));
        QVERIFY2(reported("cell 0,0"), qPrintable(found.join("\n")));
        QVERIFY2(!reported("cell 0,1"), qPrintable(found.join("\n")));  // it has a tooltip
        QVERIFY2(reported("elided in the chart"), qPrintable(found.join("\n")));
        // Elided with a tooltip passes; elided without one is still cut off.
        int labels = 0;
        for (const auto& p : problems) labels += p.where.startsWith("QLabel") && p.why.startsWith("is ");
        QCOMPARE(labels, 2);  // `cut` and `elidedNoTip`; not `elided`, not `fits`
        // Fixed, the same widgets pass.
        cut->setText("ok");
        elidedNoTip->setToolTip(longText);
        button->setText("Go");
        combo->setToolTip(longText);
        outside->setGeometry(300, 250, 60, 40);
        table->setColumnWidth(0, 400);
        table->horizontalHeader()->setStretchLastSection(false);
        chartView->setGeometry(10, 130, 380, 160);
        axis->setCategories({"Bi-Mamba", "fp16"});
        QStringList left;
        for (const auto& p : bimamba::test::findTextProblems(&win)) left << p.describe();
        QVERIFY2(left.isEmpty(), qPrintable(left.join("\n")));
    }

    void everyTabOfTheStudyWorkspaceShowsItsTextWhole() {
        const QString study = QStringLiteral(BIMAMBA_SOURCE_DIR "/docs/results/paper-small-h200");
        QVERIFY2(QFileInfo::exists(study + "/report.h5"), qPrintable(study));
        QTemporaryDir tmp;
        const QString ws = tmp.filePath("study");
        QVERIFY(copyTree(study, ws));
        QDir().remove(ws + "/workbench.sqlite");
        const QString shots = shotsDir(tmp, "study");
        MainWindow w(ws, qEnvironmentVariable("BIMAMBA_CLI"));
        // What scripts/screenshots.sh --study shows (no weights here: Chat is empty).
        QJsonObject setup{
            {"runs", array({"teacher", "bi-mamba", "bi-mamba-ce", "bi-mamba-kl", "bi-mamba-mix", "bi-mamba-in-proj"})},
            {"ablation", QJsonObject{{"group", "students"}}},
            {"weights", QJsonObject{{"report", ws + "/report.h5"}, {"module", "in_proj"}}},
            {"evaluate", QJsonObject{{"results", array({ws + "/eval/perplexity.json", ws + "/eval/zero-shot.json"})}}},
            {"compare", QJsonObject{{"generations", ws + "/eval/generations.json"}}},
            {"reports", QJsonObject{{"run", "bi-mamba"}}}};
        const QStringList files = w.saveScreenshots(shots, QSize(1400, 860), setup);
        QCOMPARE(files.size(), w.tabs()->count());
        for (const QString& f : files) {
            const QImage img(f);
            QVERIFY2(img.width() >= 1400 && img.height() >= 800, qPrintable(f));
        }

        const QStringList problems = problemsInEveryTab(w);
        QVERIFY2(problems.isEmpty(), qPrintable("\n" + problems.join("\n")));

        // What the study holds is listed in Reports, and previewed.
        ReportsPanel* rep = w.reportsPanel();
        const QStringList listed = rep->workspaceFiles();
        for (const QString& f :
             {ws + "/report.h5", ws + "/summary.md", ws + "/eval/zero-shot.json", ws + "/eval/perplexity.csv"})
            QVERIFY2(listed.contains(f), qPrintable(f));
        rep->preview(ws + "/summary.md");
        QVERIFY(rep->previewText().contains("| model"));
        // The Evaluate chart shows bars, not its empty-state hint.
        QVERIFY(!w.evaluatePanel()->chartBox()->isEmpty());
    }

    // A workspace with nothing in it yet: every tab says what to do, and none
    // of that text is cut off either.
    void everyTabOfAnEmptyWorkspaceSaysWhatToDo() {
        QTemporaryDir tmp;
        MainWindow w(tmp.filePath("empty"), qEnvironmentVariable("BIMAMBA_CLI"));
        const QStringList files = w.saveScreenshots(shotsDir(tmp, "empty"), QSize(1400, 860));
        QCOMPARE(files.size(), w.tabs()->count());
        QVERIFY(w.evaluatePanel()->chartBox()->isEmpty());
        QVERIFY(w.evaluatePanel()->chartBox()->hint().contains("Evaluate"));
        QVERIFY(w.chatPanel()->findChild<EmptyState*>()->isEmpty());
        QVERIFY(w.reportsPanel()->workspaceFiles().isEmpty());
        QVERIFY(w.reportsPanel()->fileList()->item(0)->text().startsWith("Nothing here yet"));
        const QStringList problems = problemsInEveryTab(w);
        QVERIFY2(problems.isEmpty(), qPrintable("\n" + problems.join("\n")));
    }

    // View → Colour scheme: the palette and the plots follow the choice,
    // which is kept; "Follow the desktop" resolves to what the platform says.
    void colourSchemeFollowsTheChoice() {
        QTemporaryDir tmp;
        MainWindow w(tmp.filePath("ws"), qEnvironmentVariable("BIMAMBA_CLI"));
        w.resize(1400, 860);
        w.show();
        QAction* dark = w.findChild<QAction*>("colorScheme-dark");
        QAction* light = w.findChild<QAction*>("colorScheme-light");
        QAction* system = w.findChild<QAction*>("colorScheme-system");
        QVERIFY(dark && light && system);
        QCustomPlot* plot = nullptr;  // one with axes (an empty-state plot may have none)
        for (QCustomPlot* p : w.findChildren<QCustomPlot*>())
            if (p->xAxis && !plot) plot = p;
        QVERIFY(plot);
        dark->trigger();
        QVERIFY(Theme::isDark());
        QCOMPARE(Theme::chosen(), ColorScheme::Dark);
        QVERIFY(qApp->palette().color(QPalette::Window).lightness() < 80);
        QVERIFY(qApp->palette().color(QPalette::WindowText).lightness() > 180);
        plot->replot();
        QVERIFY(plot->toPixmap(200, 150).toImage().pixelColor(2, 2).lightness() < 80);
        QVERIFY(plot->xAxis->tickLabelColor().lightness() > 180);
        QVERIFY(w.grab().toImage().pixelColor(700, 400).lightness() < 128);  // what a person sees
        const QStringList darkShots = w.saveScreenshots(shotsDir(tmp, "dark"), QSize(1400, 860));
        QCOMPARE(darkShots.size(), w.tabs()->count());
        light->trigger();
        QVERIFY(!Theme::isDark());
        QCOMPARE(QSettings().value("view/colorScheme").toString(), QString("light"));
        QVERIFY(qApp->palette().color(QPalette::Window).lightness() > 180);
        plot->replot();
        QCOMPARE(plot->toPixmap(200, 150).toImage().pixelColor(2, 2), QColor(Qt::white));
        system->trigger();
        QCOMPARE(Theme::isDark(), Theme::desktopPrefersDark());
        QCOMPARE(Theme::parse("Dark"), ColorScheme::Dark);
        QCOMPARE(Theme::parse("nonsense", ColorScheme::Light), ColorScheme::Light);
        QSettings().remove("view/colorScheme");
        qputenv("BIMAMBA_COLOR_SCHEME", "dark");
        QCOMPARE(Theme::chosen(), ColorScheme::Dark);
        qunsetenv("BIMAMBA_COLOR_SCHEME");
        QCOMPARE(Theme::chosen(), ColorScheme::System);
        light->trigger();
    }
};

QTEST_MAIN(TourTest)
#include "test_gui_tour.moc"
