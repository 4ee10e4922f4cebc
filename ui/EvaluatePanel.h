#pragma once
// The Evaluate tab: pick models and tasks, run `bimamba eval` in the
// background with a progress bar, show the results in the layout of the
// paper's Table 3 and a per-task accuracy bar chart (Qt Charts).
#include <QJsonObject>
#include <QWidget>

class QPlainTextEdit;
class QSpinBox;
class QProgressBar;
class QTableWidget;
class QLabel;
class QPushButton;
class QChartView;

namespace bimamba::ui {

class RunManager;
class CliJob;

struct EvalRow {
    QString label;
    QMap<QString, double> values;   // task → ppl or 100·headline accuracy
    QMap<QString, double> stderrs;  // zero-shot task → 100·standard error of its headline metric
};
// Parses eval_results.json (core/eval/EvalTable.h layout).
QVector<EvalRow> parseEvalResults(const QJsonObject& o, QStringList* pplTasks, QStringList* mcTasks);

class EvaluatePanel : public QWidget {
    Q_OBJECT
public:
    explicit EvaluatePanel(RunManager* manager, QWidget* parent = nullptr);
    void setModels(const QStringList& m);
    void setTasks(const QStringList& t);
    void start();
    void cancel();
    bool isRunning() const;
    bool loadResults(const QString& jsonPath, QString* error = nullptr);
    // Several results files (a study writes one per protocol: perplexity,
    // zero-shot, ...) shown as one table, rows merged by model label in the
    // order they first appear.
    bool loadResults(const QStringList& jsonPaths, QString* error = nullptr);
    QTableWidget* table() const { return table_; }
    QChartView* chart() const { return chart_; }
    class EmptyState* chartBox() const {
        return chartBox_;
    }
    QString lastError() const { return lastError_; }

signals:
    void finished(bool ok);

private:
    void fillChart(const QVector<EvalRow>& rows, const QStringList& mcTasks);
    RunManager* manager_;
    QPlainTextEdit* models_;
    QPlainTextEdit* tasks_;
    QSpinBox* limit_;
    QSpinBox* window_;
    QProgressBar* progress_;
    QPlainTextEdit* log_;
    QTableWidget* table_;
    QChartView* chart_;
    class EmptyState* chartBox_;  // the chart, or what to do while no accuracy is loaded
    QLabel* info_;
    QPushButton* runBtn_;
    QPushButton* cancelBtn_;
    CliJob* job_ = nullptr;
    QString lastError_;
    QString outPath_;
};

}  // namespace bimamba::ui
