#include "ui/MainWindow.h"

#include "ui/AblationPanel.h"
#include "ui/ChatPanel.h"
#include "ui/ComparePanel.h"
#include "ui/EvaluatePanel.h"
#include "ui/ReportsPanel.h"
#include "ui/RunManager.h"
#include "ui/WeightsPanel.h"
#include "ui/RunStore.h"
#include "ui/MetricsPlot.h"
#include "ui/RunsPanel.h"
#include "ui/RunPicker.h"
#include "ui/Theme.h"

#include <cstdio>
#include <QAction>
#include <QActionGroup>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QThread>
#include <functional>
#include "ui/Ablation.h"
#include "ui/MetricsReader.h"
#include <QApplication>
#include <QCloseEvent>
#include <QCoreApplication>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPointer>
#include <QProcess>
#include <QRegularExpression>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>

static void initResources() {
    Q_INIT_RESOURCE(resources);
}

namespace bimamba::ui {

QString MainWindow::defaultCli() {
    const QString env = qEnvironmentVariable("BIMAMBA_CLI");
    if (!env.isEmpty()) return env;
    const QString set = QSettings().value("cli").toString();
    if (!set.isEmpty() && QFileInfo(set).isExecutable()) return set;
    const QString beside = QDir(QCoreApplication::applicationDirPath()).filePath("bimamba");
    if (QFileInfo(beside).isExecutable()) return beside;
    return QStandardPaths::findExecutable("bimamba");
}

MainWindow::MainWindow(const QString& workspace, const QString& cli, QWidget* parent)
    : QMainWindow(parent), workspace_(QFileInfo(workspace).absoluteFilePath()) {
    initResources();  // bimamba_ui is a static library
    setObjectName("MainWindow");
    setWindowTitle(QStringLiteral("BiMamba Workbench — %1").arg(workspace_));
    setWindowIcon(QIcon(":/icons/bimamba-workbench.svg"));
    QDir().mkpath(workspace_);
    store_ = new RunStore(this);
    QString err;
    if (!store_->open(QDir(workspace_).filePath("workbench.sqlite"), &err)) {
        QMessageBox::warning(this, "Run database", err + "\nRuns are kept in memory for this session.");
        store_->open(":memory:");
    }
    manager_ = new RunManager(store_, workspace_, cli.isEmpty() ? defaultCli() : cli, this);

    tabs_ = new QTabWidget;
    tabs_->setObjectName("tabs");
    tabs_->setDocumentMode(true);
    runs_ = new RunsPanel(manager_);
    tabs_->addTab(runs_, "Runs");
    ablation_ = new AblationPanel(manager_);
    tabs_->addTab(ablation_, "Ablations");
    weights_ = new WeightsPanel(manager_);
    tabs_->addTab(weights_, "Weights");
    compare_ = new ComparePanel(manager_);
    // A study's side-by-side generations, shown until the user generates anew.
    if (const QString gens = QDir(workspace).filePath("eval/generations.json"); QFileInfo::exists(gens))
        compare_->loadGenerations(gens);
    tabs_->addTab(compare_, "Compare");
    evaluate_ = new EvaluatePanel(manager_);
    tabs_->addTab(evaluate_, "Evaluate");
    chat_ = new ChatPanel(manager_);
    tabs_->addTab(chat_, "Chat && energy");
    reports_ = new ReportsPanel(manager_, runs_->model());
    tabs_->addTab(reports_, "Reports");
    setCentralWidget(tabs_);

    statusRuns_ = new QLabel;
    statusBar()->addPermanentWidget(statusRuns_);
    connect(runs_, &RunsPanel::message, this, [this](const QString& t, int ms) { statusBar()->showMessage(t, ms); });
    connect(manager_, &RunManager::message, this, [this](const QString& t) { statusBar()->showMessage(t, 6000); });
    auto countRuns = [this] {
        int active = 0;
        const auto all = store_->all();
        for (const auto& r : all) active += RunManager::isActive(r.status);
        statusRuns_->setText(
            QStringLiteral("%1 runs, %2 active  |  CLI: %3")
                .arg(all.size())
                .arg(active)
                .arg(manager_->cliPath().isEmpty() ? QStringLiteral("not found") : manager_->cliPath()));
    };
    connect(manager_, &RunManager::runUpdated, this, countRuns);
    connect(store_, &RunStore::runAdded, this, countRuns);

    // "Add runs…" in Weights, Compare and Evaluate starts from the Runs tab's selection.
    RunPicker::setSelectionSource(
        [panel = QPointer<RunsPanel>(runs_)] { return panel ? panel->selectedRuns() : QList<qint64>{}; });
    buildMenus();
    Theme::styleDataViews(this);  // plots follow the palette (light, dark or the desktop's)
    manager_->attachAll();
    countRuns();

    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    tabs_->setCurrentIndex(s.value("window/tab", 0).toInt());
    s.setValue("workspace", workspace_);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu("&File");
    file->addAction(runs_->newRunAction());
    file->addAction(runs_->importAction());
    auto* ws = file->addAction("Open workspace…", this, &MainWindow::openWorkspaceDialog);
    ws->setShortcut(QKeySequence::Open);
    file->addAction("Set bimamba CLI…", this, &MainWindow::setCliDialog);
    file->addSeparator();
    auto* quit = file->addAction("Quit", this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    auto* run = menuBar()->addMenu("&Run");
    run->addAction(runs_->stopAction());
    run->addAction(runs_->resumeAction());
    run->addAction(runs_->cloneAction());
    auto* refresh = run->addAction("Refresh", manager_, &RunManager::refreshAll);
    refresh->setShortcut(QKeySequence::Refresh);
    auto* view = menuBar()->addMenu("&View");
    for (int i = 0; i < 9; ++i) {
        auto* a = view->addAction(QStringLiteral("Tab %1").arg(i + 1), this, [this, i] {
            if (i < tabs_->count()) tabs_->setCurrentIndex(i);
        });
        a->setShortcut(QKeySequence(Qt::ALT | Qt::Key(Qt::Key_1 + i)));
    }
    view->addSeparator();
    auto* scheme = view->addMenu("Colour scheme");
    scheme->setObjectName("colorSchemeMenu");
    auto* group = new QActionGroup(scheme);
    for (ColorScheme cs : {ColorScheme::System, ColorScheme::Light, ColorScheme::Dark}) {
        const QString label = cs == ColorScheme::System  ? "Follow the desktop"
                              : cs == ColorScheme::Light ? "Light"
                                                         : "Dark";
        auto* a = scheme->addAction(label, this, [cs] { Theme::choose(cs); });
        a->setObjectName("colorScheme-" + Theme::name(cs));
        a->setCheckable(true);
        a->setChecked(Theme::chosen() == cs);
        group->addAction(a);
    }
    auto* help = menuBar()->addMenu("&Help");
    help->addAction("About", this, [this] {
        // The build's version, commit, LibTorch and CUDA/ISA come from
        // `bimamba --version`, asked asynchronously (never blocking the window).
        auto show = [this](const QString& version) {
            QMessageBox::about(this, "BiMamba Workbench",
                               "<b>BiMamba Workbench</b><br>Train, evaluate and deploy 1-bit Mamba-2 language models "
                               "(Bi-Mamba, arXiv 2411.11843).<br>Runs keep going when the window closes; reopening the "
                               "workspace re-attaches to them.<br><br><pre>" +
                                   version.toHtmlEscaped() + "</pre>");
        };
        const QString cli = manager_->cliPath();
        if (cli.isEmpty()) return show(QStringLiteral("bimamba CLI: not found"));
        auto* p = new QProcess(this);
        connect(p, &QProcess::finished, this, [p, show, cli](int code, QProcess::ExitStatus st) {
            const QString out = QString::fromUtf8(p->readAllStandardOutput()).trimmed();
            show(st == QProcess::NormalExit && code == 0 && !out.isEmpty()
                     ? out
                     : QStringLiteral("%1 --version failed").arg(cli));
            p->deleteLater();
        });
        connect(p, &QProcess::errorOccurred, this, [p, show, cli](QProcess::ProcessError e) {
            if (e != QProcess::FailedToStart) return;
            show(QStringLiteral("%1 could not be started").arg(cli));
            p->deleteLater();
        });
        p->start(cli, {"--version"});
    });
}

void MainWindow::openWorkspaceDialog() {
    const QString d = QFileDialog::getExistingDirectory(this, "Open workspace", workspace_);
    if (d.isEmpty()) return;
    QSettings().setValue("workspace", d);
    QProcess::startDetached(QCoreApplication::applicationFilePath(), {"--workspace", d});
}

void MainWindow::setCliDialog() {
    bool ok = false;
    const QString p = QInputDialog::getText(this, "bimamba CLI", "Path of the bimamba binary:", QLineEdit::Normal,
                                            manager_->cliPath(), &ok);
    if (!ok) return;
    manager_->setCliPath(p);
    QSettings().setValue("cli", p);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/tab", tabs_->currentIndex());
    int active = 0;
    for (const auto& r : store_->all()) active += RunManager::isActive(r.status);
    if (active > 0) statusBar()->showMessage(QStringLiteral("%1 runs keep going in the background").arg(active));
    e->accept();
}

namespace {
// Runs the event loop until `cond` holds or `ms` pass.
bool waitUntil(const std::function<bool()>& cond, int ms) {
    QElapsedTimer t;
    t.start();
    while (!cond()) {
        if (t.elapsed() > ms) return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
        QThread::msleep(20);
    }
    return true;
}
QStringList strings(const QJsonValue& v) {
    QStringList out;
    for (const auto& x : v.toArray()) out << x.toString();
    return out;
}
}  // namespace

QStringList MainWindow::saveScreenshots(const QString& dir, const QSize& size, const QJsonObject& setup) {
    QDir().mkpath(dir);
    QStringList written;
    resize(size);
    show();
    auto note = [](const QString& s) { std::fprintf(stderr, "screenshots: %s\n", qPrintable(s)); };
    auto idOf = [this](const QString& name) -> qint64 {
        for (const auto& r : store_->all())
            if (r.name == name) return r.id;
        return -1;
    };
    // Runs: the named runs (else every run) selected, their metrics loaded.
    const QStringList runNames = strings(setup.value("runs"));
    if (!runNames.isEmpty()) {
        runs_->table()->clearSelection();
        runs_->table()->setSelectionMode(QAbstractItemView::MultiSelection);
        for (const QString& n : runNames)
            if (qint64 id = idOf(n); id >= 0) runs_->selectRun(id);
        runs_->table()->setSelectionMode(QAbstractItemView::ExtendedSelection);
    }
    if (runs_->selectedRuns().isEmpty()) runs_->table()->selectAll();
    // The Runs tab's left plot: {"x": "lineage", "metric": "loss", "log_x": true}.
    const QJsonObject rp = setup.value("runs_plot").toObject();
    if (rp.contains("x")) runs_->lossPlot()->setXAxis(rp.value("x").toString());
    if (rp.contains("metric")) runs_->lossPlot()->setMetric(rp.value("metric").toString());
    if (rp.contains("log_x")) runs_->lossPlot()->setLogX(rp.value("log_x").toBool());
    waitUntil(
        [this] {
            for (qint64 id : runs_->selectedRuns())
                if (auto* m = manager_->metrics(id); m && m->isLoading()) return false;
            return true;
        },
        60000);
    // Ablations: a group to show and axes to preview.
    const QJsonObject abl = setup.value("ablation").toObject();
    if (!abl.isEmpty()) {
        if (abl.contains("base_config")) ablation_->setBaseConfig(abl.value("base_config").toObject());
        if (abl.contains("name")) ablation_->setGroupName(abl.value("name").toString());
        AblationAxes axes;
        axes.losses = strings(abl.value("losses"));
        axes.binarizations = strings(abl.value("binarize"));
        axes.teachers = strings(abl.value("teachers"));
        ablation_->setAxes(axes);
        ablation_->preview();
        if (abl.contains("group")) ablation_->showGroup(abl.value("group").toString());
    }
    // Weights: a report, layer and module.
    const QJsonObject wt = setup.value("weights").toObject();
    if (wt.contains("report")) {
        QString err;
        if (!weights_->loadReport(wt.value("report").toString(), &err)) note("weights: " + err);
    }
    if (wt.contains("module")) weights_->setModule(wt.value("module").toString());
    if (wt.contains("layer")) weights_->setLayerIndex(wt.value("layer").toInt());
    // Evaluate: a results file, or several merged by model label.
    const QJsonObject ev = setup.value("evaluate").toObject();
    if (ev.contains("results")) {
        QString err;
        const QStringList files =
            ev.value("results").isArray() ? strings(ev.value("results")) : QStringList{ev.value("results").toString()};
        if (!evaluate_->loadResults(files, &err)) note("evaluate: " + err);
    }
    // Reports: a run, and optionally its figures and tables exported.
    const QJsonObject rep = setup.value("reports").toObject();
    if (rep.contains("run")) reports_->setRun(idOf(rep.value("run").toString()));
    if (rep.contains("out")) reports_->setOutDir(rep.value("out").toString());
    if (rep.value("export").toBool()) {
        QString err;
        reports_->exportAll(&err);
        if (!err.isEmpty()) note("reports: " + err);
    }
    if (rep.contains("preview") && !reports_->selectFile(rep.value("preview").toString()))
        note("reports: no listed file named like " + rep.value("preview").toString());
    // Compare: generate with every model and wait for them.
    const QJsonObject cmp = setup.value("compare").toObject();
    if (cmp.contains("generations")) {
        QString err;
        if (!compare_->loadGenerations(cmp.value("generations").toString(), &err)) note("compare: " + err);
    } else if (!cmp.isEmpty()) {
        compare_->setModels(strings(cmp.value("models")));
        if (cmp.contains("prompt")) compare_->setPrompt(cmp.value("prompt").toString());
        if (cmp.contains("max_tokens")) compare_->setMaxTokens(cmp.value("max_tokens").toInt());
        tabs_->setCurrentWidget(compare_);
        compare_->generate();
        if (!waitUntil([this] { return !compare_->isRunning(); }, 600000))
            note("compare: still generating after 10 min");
    }
    // Chat: start both engines, send one prompt, wait for both replies.
    const QJsonObject chat = setup.value("chat").toObject();
    if (!chat.isEmpty()) {
        chat_->setModels(chat.value("model").toString(), chat.value("baseline").toString());
        QString err;
        if (chat_->startEngines(&err)) {
            chat_->send(chat.value("prompt").toString("Tell me a fortune."));
            const int sides = chat.value("baseline").toString().isEmpty() ? 1 : 2;
            if (!waitUntil(
                    [this, sides] {
                        if (!chat_->lastError().isEmpty()) return true;  // an engine failed: shot it as it is
                        for (int i = 0; i < sides; ++i)
                            if (chat_->stats(i).tokens <= 0) return false;
                        return true;
                    },
                    300000))
                note("chat: no reply after 5 min");
            if (!chat_->lastError().isEmpty()) note("chat: " + chat_->lastError());
            waitUntil([] { return false; }, 1500);  // the stats line refreshes once a second
        } else {
            note("chat: " + err);
        }
    }
    for (int i = 0; i < tabs_->count(); ++i) {
        tabs_->setCurrentIndex(i);
        for (int k = 0; k < 5; ++k) QCoreApplication::processEvents();
        QString name = tabs_->tabText(i).toLower().remove('&');
        name.replace(QRegularExpression("[^a-z0-9]+"), "-");
        const QString path = QDir(dir).filePath(QStringLiteral("%1-%2.png").arg(i + 1).arg(name));
        if (grab().save(path, "PNG")) written << path;
    }
    if (!chat.isEmpty()) chat_->stopEngines();
    return written;
}

}  // namespace bimamba::ui
