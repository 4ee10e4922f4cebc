#pragma once
// The Ablations tab: a base config plus axes expand into a group of runs;
// the group view shows the results in the layout of the paper's Tables 5
// and 10 and exports them as CSV / LaTeX.
#include "ui/Ablation.h"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QLineEdit;
class QPlainTextEdit;
class QListWidget;
class QTableWidget;
class QLabel;

namespace bimamba::ui {

class RunManager;

class AblationPanel : public QWidget {
    Q_OBJECT
public:
    explicit AblationPanel(RunManager* manager, QWidget* parent = nullptr);
    AblationAxes axes() const;
    void setAxes(const AblationAxes& a);
    void setBaseConfig(const QJsonObject& c);
    void setGroupName(const QString& g);
    QVector<AblationRun> preview();               // expands and lists the runs; errors shown
    QVector<qint64> launchGroup(QString* error);  // validates every run, then launches them
    void showGroup(const QString& group);
    ResultsTable currentResults() const { return results_; }
    bool exportCsv(const QString& path, QString* error);
    bool exportLatex(const QString& path, QString* error);

private:
    void refreshGroups();
    RunManager* manager_;
    QLineEdit* group_;
    QPlainTextEdit* base_;
    QMap<QString, QCheckBox*> lossBoxes_, binBoxes_;
    QLineEdit* teachers_;
    QLineEdit* sizes_;
    QLineEdit* seeds_;
    QListWidget* previewList_;
    QLabel* info_;
    QComboBox* groupBox_;
    QTableWidget* table_;
    ResultsTable results_;
};

}  // namespace bimamba::ui
