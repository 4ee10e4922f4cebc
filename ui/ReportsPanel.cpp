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
#include <QFontDatabase>
#include <QPlainTextEdit>
#include <QSplitter>
#include <QStackedWidget>
#include <QPixmap>
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
    exportBtn->setToolTip(
        "Loss / perplexity / histogram figures as PNG, SVG, PDF; metrics and run table as CSV; metrics.h5 (Ctrl+Shift+E)");
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
    previewImage_ = new QLabel;
    previewImage_->setObjectName("previewImage");
    previewImage_->setAlignment(Qt::AlignCenter);
    previewText_ = new QPlainTextEdit;
    previewText_->setObjectName("previewText");
    previewText_->setReadOnly(true);
    previewText_->setLineWrapMode(QPlainTextEdit::NoWrap);
    previewText_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    auto* previewHint = new QLabel(
        "Select a file to preview it: figures as images, tables and summaries as text. "
        "Double-click opens it with the desktop's application.");
    previewHint->setWordWrap(true);
    previewHint->setAlignment(Qt::AlignCenter);
    previewHint->setForegroundRole(QPalette::PlaceholderText);
    previewStack_ = new QStackedWidget;
    previewStack_->addWidget(previewHint);
    previewStack_->addWidget(previewImage_);
    previewStack_->addWidget(previewText_);
    auto* split = new QSplitter;
    split->addWidget(files_);
    split->addWidget(previewStack_);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    lay->addWidget(split, 1);
    listWorkspaceFiles();
    connect(files_, &QListWidget::currentItemChanged, this,
            [this](QListWidgetItem* item) { preview(item ? item->data(Qt::UserRole).toString() : QString()); });
    connect(files_, &QListWidget::itemDoubleClicked, this, [](QListWidgetItem* item) {
        const QString path = item->data(Qt::UserRole).toString();
        if (!path.isEmpty()) QDesktopServices::openUrl(QUrl::fromLocalFile(path));
    });
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
    connect(openBtn, &QPushButton::clicked, this,
            [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(out_->text())); });
    connect(runs_, &QAbstractItemModel::modelReset, this, &ReportsPanel::refreshRuns);
    connect(runs_, &QAbstractItemModel::rowsInserted, this, &ReportsPanel::refreshRuns);
    refreshRuns();
}

QStringList ReportsPanel::workspaceFiles() const {
    const QDir ws(manager_->workspace());
    QStringList found;
    auto add = [&](const QString& sub, const QStringList& patterns, QDir::Filters kinds = QDir::Files) {
        const QDir d(sub.isEmpty() ? ws.path() : ws.filePath(sub));
        for (const auto& fi : d.entryInfoList(patterns, kinds | QDir::NoDotAndDotDot, QDir::Name))
            if (!found.contains(fi.absoluteFilePath())) found << fi.absoluteFilePath();
    };
    add("", {"*.h5", "summary.md"});
    add("reports", {"*.h5", "*.hdf5"});
    add("eval", {"*.json", "*.md", "*.csv"});
    for (const auto& run : QDir(ws.filePath("runs")).entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name))
        add("runs/" + run.fileName(), {"report.h5", "eval_results.json", "*.bmd"});
    add("", {"*.bmd"});
    add("deploy", {"*.bmd"});
    add("exports", {"*.bmd"});
    const QDir ex(out_->text());
    for (const auto& fi : ex.entryInfoList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name))
        if (!found.contains(fi.absoluteFilePath())) found << fi.absoluteFilePath();
    return found;
}

void ReportsPanel::listWorkspaceFiles() {
    const QStringList found = workspaceFiles();
    if (found.isEmpty()) {
        files_->clear();
        auto* item = new QListWidgetItem(
            "Nothing here yet. Export figures & tables writes the selected run's figures (PNG/SVG/PDF) and "
            "tables (CSV) to the output folder; Build HDF5 report runs `bimamba report`.");
        item->setFlags(Qt::NoItemFlags);
        item->setToolTip(item->text());
        files_->addItem(item);
        files_->setWordWrap(true);
        return;
    }
    files_->setWordWrap(false);
    showFiles(found);
}

// Each file by its path inside the workspace (the whole path as a tooltip)
// with what it is, so a narrow list still says which is which.
void ReportsPanel::showFiles(const QStringList& paths) {
    const QDir ws(manager_->workspace());
    files_->clear();
    for (const QString& p : paths) {
        const QFileInfo fi(p);
        const QString ext = fi.suffix().toLower();
        const QString kind = fi.isDir()                                                            ? "folder"
                             : ext == "h5" || ext == "hdf5"                                        ? "HDF5 report"
                             : ext == "bmd"                                                        ? "deployment file"
                             : fi.fileName() == "summary.md"                                       ? "study summary"
                             : fi.fileName() == "eval_results.json" || fi.path().endsWith("/eval") ? "evaluation"
                             : QStringList{"png", "svg", "pdf"}.contains(ext)                      ? "figure"
                                                                                                   : ext.toUpper();
        const QDir outDir(out_->text());
        const QString rel = p.startsWith(ws.absolutePath() + "/")       ? ws.relativeFilePath(p)
                            : p.startsWith(outDir.absolutePath() + "/") ? "exported: " + outDir.relativeFilePath(p)
                                                                        : p;
        auto* item = new QListWidgetItem(rel + "   — " + kind);
        item->setData(Qt::UserRole, p);
        item->setToolTip(p);
        files_->addItem(item);
    }
}

bool ReportsPanel::selectFile(const QString& nameContains) {
    for (int i = 0; i < files_->count(); ++i) {
        const QString path = files_->item(i)->data(Qt::UserRole).toString();
        if (!path.isEmpty() && QFileInfo(path).isFile() && QFileInfo(path).fileName().contains(nameContains)) {
            files_->setCurrentRow(i);  // previews it
            return true;
        }
    }
    return false;
}

void ReportsPanel::preview(const QString& path) {
    const QFileInfo fi(path);
    const QString ext = fi.suffix().toLower();
    if (path.isEmpty() || !fi.isFile()) {
        previewStack_->setCurrentIndex(0);
        return;
    }
    if (ext == "png" || ext == "svg" || ext == "jpg") {
        QPixmap pm(path);
        if (!pm.isNull()) {
            const QSize room = previewStack_->size() - QSize(16, 16);
            previewImage_->setPixmap(pm.size().width() > room.width() || pm.size().height() > room.height()
                                         ? pm.scaled(room, Qt::KeepAspectRatio, Qt::SmoothTransformation)
                                         : pm);
            previewImage_->setToolTip(path);
            previewStack_->setCurrentWidget(previewImage_);
            return;
        }
    }
    QString text;
    if (QStringList{"md", "csv", "json", "txt", "log", "tex", "jsonl"}.contains(ext)) {
        QFile f(path);
        if (f.open(QIODevice::ReadOnly)) text = QString::fromUtf8(f.read(64 * 1024));
        if (fi.size() > 64 * 1024) text += "\n… (" + QString::number(fi.size() / 1024) + " KiB in all)";
    } else if (ext == "h5" || ext == "hdf5") {
        text = fi.fileName() + ": HDF5 report (docs/report-format.md), " + QString::number(fi.size() / 1024) +
               " KiB.\nIts histograms open in the Weights tab (Open…); the figures of a run: Export figures & tables.";
    } else if (ext == "bmd") {
        text = fi.fileName() + ": deployment file for the CPU engine (bimamba export), " +
               QString::number(fi.size() / 1048576.0, 'f', 1) +
               " MB.\nChat with it in the Chat & energy tab, or "
               "evaluate it (bimamba eval --model " +
               path + ").";
    } else {
        text = path + "\n" + QString::number(fi.size() / 1024) + " KiB";
    }
    previewText_->setPlainText(text);
    previewStack_->setCurrentWidget(previewText_);
}

QString ReportsPanel::previewText() const {
    return previewStack_->currentWidget() == previewText_ ? previewText_->toPlainText() : QString();
}

void ReportsPanel::refreshRuns() {
    const QVariant cur = run_->currentData();
    run_->clear();
    for (int r = 0; r < runs_->rowCount(); ++r)
        if (const RunRecord* rec = runs_->record(r)) run_->addItem(rec->name + "  (" + rec->status + ")", rec->id);
    const int i = run_->findData(cur);
    if (i >= 0) run_->setCurrentIndex(i);
}

void ReportsPanel::setOutDir(const QString& d) {
    out_->setText(d);
}
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
        if (ReportExporter::writeModelCsv(runs_, table, &e2))
            out << table;
        else
            err += "\n" + e2;
    }
    // The workspace's files, then what was written (inside the output folder).
    QStringList all;
    const QString outPrefix = QDir(dir).absolutePath() + "/";
    for (const QString& p : workspaceFiles())
        if (!p.startsWith(outPrefix)) all << p;
    showFiles(all + out);
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
        info_->setText(ok ? "Wrote " + out
                          : "<span style='color:#c62828'>" + msg.toHtmlEscaped().replace('\n', "<br>") + "</span>");
        emit reportBuilt(ok);
    });
    job_->start();
}

}  // namespace bimamba::ui
