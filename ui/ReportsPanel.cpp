#include "ui/ReportsPanel.h"

#include "ui/CliJob.h"
#include "ui/ReportExporter.h"
#include "ui/RunManager.h"
#include "ui/RunTableModel.h"

#include <QComboBox>
#include <QDesktopServices>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSettings>
#include <QUrl>
#include <QVBoxLayout>

namespace bimamba::ui {

ReportsPanel::ReportsPanel(RunManager* manager, RunTableModel* runs, QWidget* parent)
    : QWidget(parent), manager_(manager), runs_(runs) {
    setObjectName("ReportsPanel");
    auto* lay = new QVBoxLayout(this);
    auto* form = new QFormLayout;
    run_ = new QComboBox;
    run_->setObjectName("reportRun");
    out_ = new QLineEdit(QSettings().value("reports/out", QDir(manager_->workspace()).filePath("exports")).toString());
    out_->setObjectName("reportOut");
    auto* outRow = new QHBoxLayout;
    outRow->addWidget(out_, 1);
    auto* browse = new QPushButton("…");
    outRow->addWidget(browse);
    form->addRow("Run", run_);
    form->addRow("Output folder", outRow);
    lay->addLayout(form);
    auto* btns = new QHBoxLayout;
    auto* exportBtn = new QPushButton("Export figures && tables");
    exportBtn->setObjectName("exportAll");
    exportBtn->setShortcut(QKeySequence("Ctrl+Shift+E"));
    exportBtn->setToolTip("Loss / perplexity / histogram figures as PNG, SVG, PDF; metrics and run table as CSV; metrics.h5 (Ctrl+Shift+E)");
    auto* reportBtn = new QPushButton("Build HDF5 report (bimamba report)");
    reportBtn->setObjectName("buildReport");
    auto* openBtn = new QPushButton("Open folder");
    btns->addWidget(exportBtn);
    btns->addWidget(reportBtn);
    btns->addWidget(openBtn);
    btns->addStretch();
    lay->addLayout(btns);
    files_ = new QListWidget;
    files_->setObjectName("exportedFiles");
    lay->addWidget(files_, 1);
    listWorkspaceFiles();
    info_ = new QLabel("Headless: bimamba-workbench --export-figures RUN_DIR --out DIR");
    info_->setObjectName("reportsInfo");
    info_->setWordWrap(true);
    lay->addWidget(info_);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, "Output folder", out_->text());
        if (!d.isEmpty()) out_->setText(d);
    });
    connect(exportBtn, &QPushButton::clicked, this, [this] {
        QString err;
        exportAll(&err);
    });
    connect(reportBtn, &QPushButton::clicked, this, &ReportsPanel::buildReport);
    connect(openBtn, &QPushButton::clicked, this, [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(out_->text())); });
    connect(runs_, &QAbstractItemModel::modelReset, this, &ReportsPanel::refreshRuns);
    connect(runs_, &QAbstractItemModel::rowsInserted, this, &ReportsPanel::refreshRuns);
    refreshRuns();
}

void ReportsPanel::listWorkspaceFiles() {
    // What the workspace already holds: HDF5 reports, study summaries,
    // evaluation results and earlier exports; double-click opens one.
    const QDir ws(manager_->workspace());
    QStringList found;
    for (const QString& pattern : {QStringLiteral("*.h5"), QStringLiteral("summary.md"), QStringLiteral("reports/*.h5"),
                                   QStringLiteral("eval/*.json"), QStringLiteral("eval/*.md"), QStringLiteral("eval/*.csv")}) {
        const QString sub = pattern.section('/', 0, -2);
        const QDir d(sub.isEmpty() ? ws.path() : ws.filePath(sub));
        for (const auto& fi : d.entryInfoList({pattern.section('/', -1)}, QDir::Files, QDir::Name)) found << fi.absoluteFilePath();
    }
    const QDir ex(out_->text());
    for (const auto& fi : ex.entryInfoList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) found << fi.absoluteFilePath();
    files_->clear();
    if (found.isEmpty()) {
        files_->addItem("Nothing here yet. Export figures & tables writes the selected run's figures (PNG/SVG/PDF) and "
                        "tables (CSV) to the output folder; Build HDF5 report runs `bimamba report`.");
        return;
    }
    files_->addItems(found);
}

void ReportsPanel::refreshRuns() {
    const QVariant cur = run_->currentData();
    run_->clear();
    for (int r = 0; r < runs_->rowCount(); ++r)
        if (const RunRecord* rec = runs_->record(r)) run_->addItem(rec->name + "  (" + rec->status + ")", rec->id);
    const int i = run_->findData(cur);
    if (i >= 0) run_->setCurrentIndex(i);
}

void ReportsPanel::setOutDir(const QString& d) { out_->setText(d); }
void ReportsPanel::setRun(qint64 id) {
    refreshRuns();
    const int i = run_->findData(id);
    if (i >= 0) run_->setCurrentIndex(i);
}

QStringList ReportsPanel::exportAll(QString* error) {
    QStringList out;
    QString err;
    const QString dir = out_->text().trimmed();
    QSettings().setValue("reports/out", dir);
    if (dir.isEmpty() || !QDir().mkpath(dir)) {
        err = "Choose a writable output folder.";
    } else {
        auto rec = manager_->store()->byId(run_->currentData().toLongLong());
        if (rec) {
            const QString sub = QDir(dir).filePath(rec->name);
            out << ReportExporter::exportRunFigures(rec->runDir, sub, &err);
            const QString rep = ReportExporter::findReport(rec->runDir);
            if (!rep.isEmpty()) {
                const QString dst = QDir(sub).filePath(QFileInfo(rep).fileName());
                QFile::remove(dst);
                if (QFile::copy(rep, dst)) out << dst;
            }
        } else {
            err = "No run selected: only the run table is exported.";
        }
        const QString table = QDir(dir).filePath("runs.csv");
        QString e2;
        if (ReportExporter::writeModelCsv(runs_, table, &e2)) out << table;
        else err += "\n" + e2;
    }
    files_->clear();
    files_->addItems(out);
    info_->setText(err.trimmed().isEmpty() ? QStringLiteral("Wrote %1 files.").arg(out.size())
                                           : QStringLiteral("Wrote %1 files. %2").arg(out.size()).arg(err.trimmed()));
    if (error) *error = err.trimmed();
    return out;
}

void ReportsPanel::buildReport() {
    if (job_ && job_->isRunning()) return;
    auto rec = manager_->store()->byId(run_->currentData().toLongLong());
    if (!rec) {
        info_->setText("Choose a run first.");
        emit reportBuilt(false);
        return;
    }
    const QString out = QDir(rec->runDir).filePath("report.h5");
    QStringList args{"report", "--run", rec->runDir, "--out", out};
    const QString ev = QDir(rec->runDir).filePath("eval_results.json");
    if (QFileInfo::exists(ev)) args << "--eval" << ev;
    delete job_;
    job_ = new CliJob(manager_->cliPath(), args, this);
    info_->setText("Running " + job_->commandLine() + " …");
    connect(job_, &CliJob::finished, this, [this, out](bool ok, const QString& msg) {
        info_->setText(ok ? "Wrote " + out : "<span style='color:#c62828'>" + msg.toHtmlEscaped().replace('\n', "<br>") + "</span>");
        emit reportBuilt(ok);
    });
    job_->start();
}

}  // namespace bimamba::ui
