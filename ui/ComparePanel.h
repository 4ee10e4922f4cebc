#pragma once
// The Compare tab: one prompt, several models, generations side by side as
// they stream (the layout of the paper's Figures 11–13). One
// `bimamba generate --stream` child process per model, run concurrently:
// its stdout is the generated text, written piece by piece as it is decoded,
// and appended to the model's column as it arrives; its stderr ends with a
// stats line (tokens, tok/s, J/token with the energy source) shown under it.
#include <QJsonObject>
#include <QWidget>

class QPlainTextEdit;
class QLineEdit;
class QSpinBox;
class QDoubleSpinBox;
class QHBoxLayout;
class QLabel;

namespace bimamba::ui {

class RunManager;
class CliJob;

class ComparePanel : public QWidget {
    Q_OBJECT
public:
    explicit ComparePanel(RunManager* manager, QWidget* parent = nullptr);
    void setModels(const QStringList& labelEqPath);
    void setPrompt(const QString& p);
    void setMaxTokens(int n);
    void generate();
    // Shows a generations file (`bimamba generate --out`, e.g. a study's
    // eval/generations.json) without running anything: a column per model,
    // each prompt with that model's continuation and speed.
    bool loadGenerations(const QString& path, QString* error = nullptr);
    bool isRunning() const;
    int columnCount() const { return columns_.size(); }
    QString columnText(int i) const;
    QString columnStatus(int i) const;
    QStringList exportCsv(const QString& path, QString* error);
    // The status line of a "stats" event of `generate --stream --json`
    // ("24 tokens · 51.2 tok/s · 0.0123 J/token (estimate) · stop: eos"); empty for other events.
    static QString generateStatsText(const QJsonObject& statsEvent);

signals:
    void allFinished();

private:
    QPlainTextEdit* addColumn(const QString& label, QLabel** status);
    void clearColumns();
    struct Column {
        QString label, path;
        QPlainTextEdit* text;
        QLabel* status;
        CliJob* job;
        QString err;
    };
    RunManager* manager_;
    QPlainTextEdit* prompt_;
    QPlainTextEdit* models_;
    QSpinBox* maxTokens_;
    QDoubleSpinBox* temperature_;
    QHBoxLayout* columnsLayout_;
    QLabel* hint_;
    QWidget* columnsHost_;
    QVector<Column> columns_;
};

}  // namespace bimamba::ui
