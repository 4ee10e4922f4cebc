#pragma once
// The workbench's main window: one tab per job (Runs, Ablations, Weights,
// Compare, Evaluate, Chat & energy, Reports) over one workspace folder.
#include <QJsonObject>
#include <QMainWindow>

class QTabWidget;
class QLabel;

namespace bimamba::ui {

class RunStore;
class RunManager;
class RunsPanel;
class AblationPanel;
class WeightsPanel;
class ComparePanel;
class EvaluatePanel;
class ChatPanel;
class ReportsPanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    // `workspace`: the run-dir root (runs go to <workspace>/runs, the run
    // database is <workspace>/workbench.sqlite). `cli`: the bimamba binary.
    MainWindow(const QString& workspace, const QString& cli, QWidget* parent = nullptr);
    ~MainWindow() override;
    RunManager* manager() const { return manager_; }
    RunStore* store() const { return store_; }
    RunsPanel* runsPanel() const { return runs_; }
    AblationPanel* ablationPanel() const { return ablation_; }
    WeightsPanel* weightsPanel() const { return weights_; }
    ComparePanel* comparePanel() const { return compare_; }
    EvaluatePanel* evaluatePanel() const { return evaluate_; }
    ChatPanel* chatPanel() const { return chat_; }
    ReportsPanel* reportsPanel() const { return reports_; }
    QTabWidget* tabs() const { return tabs_; }
    QString workspace() const { return workspace_; }
    // Saves a PNG of every tab into `dir` (README screenshots).
    // One PNG per tab. `setup` (optional; see docs/gui.md, "Screenshots")
    // drives the panels first with the real CLI: selects runs, previews an
    // ablation, opens a report, generates in Compare, chats, picks a run in
    // Reports; each step waits until its processes have finished.
    QStringList saveScreenshots(const QString& dir, const QSize& size = QSize(1400, 860),
                                const QJsonObject& setup = {});
    static QString defaultCli();

protected:
    void closeEvent(QCloseEvent* e) override;

private:
    void buildMenus();
    void openWorkspaceDialog();
    void setCliDialog();
    QString workspace_;
    RunStore* store_;
    RunManager* manager_;
    QTabWidget* tabs_;
    RunsPanel* runs_;
    AblationPanel* ablation_ = nullptr;
    WeightsPanel* weights_ = nullptr;
    ComparePanel* compare_ = nullptr;
    EvaluatePanel* evaluate_ = nullptr;
    ChatPanel* chat_ = nullptr;
    ReportsPanel* reports_ = nullptr;
    QLabel* statusRuns_;
};

}  // namespace bimamba::ui
