#pragma once
// New-run dialog: a preset (quickstart, the paper's 780M/1.3B/2.7B, custom),
// the common fields as a form, and the full config as editable JSON. The
// config is validated before the dialog accepts; errors are listed in it.
#include <QDialog>
#include <QJsonObject>

class QCheckBox;
class QComboBox;
class QLineEdit;
class QSpinBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QLabel;
class QDialogButtonBox;

namespace bimamba::ui {

class NewRunDialog : public QDialog {
    Q_OBJECT
public:
    explicit NewRunDialog(const QString& workspace, QWidget* parent = nullptr);
    // Starts from an existing config (clone-and-edit).
    void setConfig(const QJsonObject& config, const QString& name, const QString& group);
    void setPreset(const QString& preset);
    QString preset() const;
    QString runName() const;
    QString group() const;
    QJsonObject config() const { return config_; }  // valid after accept()
    QString configText() const;
    void setConfigText(const QString& text);
    void setDataDir(const QString& dir);
    QStringList errors() const { return errors_; }
    // The target (a host name of hosts.toml; "local" = this machine), and
    // whether the data folder is copied there first.
    QString target() const;
    void setTarget(const QString& name);
    bool syncData() const;
    void reloadTargets();  // re-reads hosts.toml
    // Validates the current JSON; shows the result; true when valid.
    bool validate();

public slots:
    void accept() override;

private:
    void formToJson();
    void jsonToForm(const QJsonObject& c);
    QString absolutize(const QString& p) const;
    QString workspace_;
    QComboBox* preset_;
    QLineEdit* name_;
    QLineEdit* group_;
    QLineEdit* data_;
    QComboBox* size_;
    QComboBox* binarize_;
    QComboBox* loss_;
    QLineEdit* teacher_;
    QSpinBox* steps_;
    QSpinBox* seqLen_;
    QSpinBox* batch_;
    QDoubleSpinBox* lr_;
    QSpinBox* seed_;
    QComboBox* device_;
    QPlainTextEdit* json_;
    QLabel* status_;
    QLabel* params_;
    QDialogButtonBox* buttons_;
    QComboBox* target_;
    QCheckBox* syncData_;
    QString targetError_;  // hosts.toml could not be read
    QJsonObject config_;
    QStringList errors_;
    bool syncing_ = false;
};

}  // namespace bimamba::ui
