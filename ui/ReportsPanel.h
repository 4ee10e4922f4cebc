#pragma once
// The Reports tab: export a run's figures (PNG, SVG, PDF), its metrics and
// the run table (CSV), a metrics HDF5 file, and build / copy the full HDF5
// report with `bimamba report`.
#include <QWidget>

class QComboBox;
class QLineEdit;
class QListWidget;
class QLabel;
class QListWidgetItem;
class QPlainTextEdit;
class QStackedWidget;

namespace bimamba::ui {

class RunManager;
class RunTableModel;
class CliJob;

class ReportsPanel : public QWidget {
    Q_OBJECT
public:
    ReportsPanel(RunManager* manager, RunTableModel* runs, QWidget* parent = nullptr);
    void setOutDir(const QString& d);
    void setRun(qint64 id);
    // Exports figures + CSV + metrics.h5 of the selected run, the run table
    // CSV, and copies the run's HDF5 report when it has one.
    QStringList exportAll(QString* error);
    void buildReport();  // bimamba report --run RUN --out OUT/report.h5
    // What the workspace holds, re-read: HDF5 reports, study summaries,
    // evaluation results (the workspace's and each run's), deployment files
    // (bimamba export) and earlier exports; one absolute path per entry.
    QStringList workspaceFiles() const;
    void listWorkspaceFiles();
    QListWidget* fileList() const { return files_; }
    bool selectFile(const QString& nameContains);  // the first listed file whose name contains it, previewed
    void preview(const QString& path);             // the file beside the list: a figure, or the head of a text file
    QString previewText() const;                   // what the preview shows as text ("" for a figure)

signals:
    void reportBuilt(bool ok);

private:
    void refreshRuns();
    RunManager* manager_;
    RunTableModel* runs_;
    QComboBox* run_;
    QLineEdit* out_;
    QListWidget* files_;
    void showFiles(const QStringList& paths);
    QStackedWidget* previewStack_;
    QLabel* previewImage_;
    QPlainTextEdit* previewText_;
    QLabel* info_;
    CliJob* job_ = nullptr;
};

}  // namespace bimamba::ui
