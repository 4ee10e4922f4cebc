#pragma once
// The Runs tab: the run table (SQLite store), actions (new, stop, resume,
// clone-and-edit, import), live metric plots of the selected runs overlaid,
// and the selected run's log / failure message.
#include <QHash>
#include <QWidget>

class QTableView;
class QPlainTextEdit;
class QLabel;
class QProgressBar;
class QAction;
class QSortFilterProxyModel;
class QLineEdit;
class QCheckBox;
class QTimer;

namespace bimamba::ui {

class DesktopNotifier;
class RunManager;
class RunTableModel;
class RunFilterProxy;
class MetricsPlot;

class RunsPanel : public QWidget {
    Q_OBJECT
public:
    RunsPanel(RunManager* manager, QWidget* parent = nullptr);
    QTableView* table() const { return table_; }
    RunTableModel* model() const { return model_; }
    MetricsPlot* lossPlot() const { return plotA_; }
    MetricsPlot* pplPlot() const { return plotB_; }
    QList<qint64> selectedRuns() const;
    void selectRun(qint64 id);
    QAction* newRunAction() const { return newAct_; }
    QAction* stopAction() const { return stopAct_; }
    QAction* resumeAction() const { return resumeAct_; }
    QAction* cloneAction() const { return cloneAct_; }
    QAction* importAction() const { return importAct_; }
    QAction* fetchAction() const { return fetchAct_; }
    QAction* hostsAction() const { return hostsAct_; }
    QAction* archiveAction() const { return archiveAct_; }
    QCheckBox* showArchivedBox() const { return showArchived_; }
    QLineEdit* tagsEdit() const { return tagsEdit_; }
    QPlainTextEdit* notesEdit() const { return notesEdit_; }
    QAction* alertRulesAction() const { return alertRulesAct_; }
    // The notifications raised so far ("title: text"), newest last, and
    // where they went: the desktop's tray, or the status bar where there is none.
    const QStringList& notifications() const { return notifications_; }
    DesktopNotifier* notifier() const { return notifier_; }

public slots:
    void newRun();
    void stopSelected();
    void resumeSelected();
    void cloneSelected();
    void importRun();
    void fetchSelected();    // remote runs: the run folder back (rsync)
    void editHosts();        // the Hosts dialog (hosts.toml)
    void archiveSelected();  // archives the selected runs, or restores them when all are archived
    void editAlertRules();   // divergence factor, stall factor and floor (QSettings)

signals:
    void message(const QString& text, int ms = 5000);

public:
    // The selected runs side by side: config fields that differ (dotted
    // paths, one block per field) and each run's final metrics.
    QString runsDiff(const QList<qint64>& ids) const;

private:
    void updatePlots();
    void updateDetails();
    void showError(const QString& title, const QString& text);
    void loadAnnotations(qint64 id);                // the side panel's tags and notes editors
    void loadSharedTags(const QList<qint64>& ids);  // several runs: the tags they share, editable for all
    void saveNotes();
    void notify(qint64 id, const QString& title, const QString& text);
    RunManager* manager_;
    RunTableModel* model_;
    RunFilterProxy* proxy_;
    QLineEdit* filter_;
    QTableView* table_;
    MetricsPlot* plotA_;
    MetricsPlot* plotB_;
    QPlainTextEdit* log_;
    QLabel* detail_;
    QProgressBar* progress_;
    QAction *newAct_, *stopAct_, *resumeAct_, *cloneAct_, *importAct_, *fetchAct_, *hostsAct_, *archiveAct_;
    QAction* alertRulesAct_;
    DesktopNotifier* notifier_;
    QStringList notifications_;
    QCheckBox* showArchived_;
    QWidget* annotations_;
    QLineEdit* tagsEdit_;
    QPlainTextEdit* notesEdit_;
    QTimer* notesTimer_;
    qint64 annotId_ = -1;            // the run whose tags and notes the editors hold
    QList<qint64> multiIds_;         // or the runs whose shared tags the tags editor holds
    QStringList commonTags_;         // the tags those share
    QHash<qint64, double> lineage_;  // run id -> tokens of its ancestors
};

}  // namespace bimamba::ui
