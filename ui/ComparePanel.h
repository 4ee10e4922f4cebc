#pragma once
// The Compare tab: one prompt, several models, generations side by side as
// they stream (the layout of the paper's Figures 11–13). One
// `bimamba generate` child process per model, run concurrently.
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
    void generate();
    bool isRunning() const;
    int columnCount() const { return columns_.size(); }
    QString columnText(int i) const;
    QString columnStatus(int i) const;
    QStringList exportCsv(const QString& path, QString* error);

signals:
    void allFinished();

private:
    struct Column {
        QString label, path;
        QPlainTextEdit* text;
        QLabel* status;
        CliJob* job;
    };
    RunManager* manager_;
    QPlainTextEdit* prompt_;
    QPlainTextEdit* models_;
    QSpinBox* maxTokens_;
    QDoubleSpinBox* temperature_;
    QHBoxLayout* columnsLayout_;
    QWidget* columnsHost_;
    QVector<Column> columns_;
};

}  // namespace bimamba::ui
