#pragma once
// Hosts dialog: the execution targets of the workspace's hosts.toml (SSH
// hosts, Slurm clusters), edited as a list and a form, checked with
// `bimamba hosts check`, saved back to hosts.toml (the previous file is kept
// as hosts.toml.bak). No passwords: keys, ssh-agent and ~/.ssh/config.
#include <QDialog>

#include <vector>

#include "core/base/Hosts.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QSpinBox;
class QProcess;

namespace bimamba::ui {

class HostsDialog : public QDialog {
    Q_OBJECT
public:
    HostsDialog(const QString& workspace, const QString& cliPath, QWidget* parent = nullptr);
    const std::vector<base::Host>& hosts() const { return hosts_; }
    QString loadError() const { return loadError_; }
    // Every problem of the hosts being edited; empty when they can be saved.
    QStringList problems() const;
    // Writes hosts.toml; false (with *error) when a host is invalid or the file cannot be written.
    bool save(QString* error);
    void addHost(const base::Host& h);  // appends and selects it
    void selectHost(int row);
    QString checkOutput() const;

public slots:
    void accept() override;
    void checkSelected();  // `bimamba hosts check NAME` on the saved file

private:
    void formToHost();
    void hostToForm();
    void refreshList();
    QString workspace_, cli_, loadError_;
    std::vector<base::Host> hosts_;  // without `local`
    int current_ = -1;
    bool syncing_ = false;
    QListWidget* list_;
    QLineEdit *name_, *host_, *user_, *identity_, *knownHosts_, *bimamba_, *workdir_, *partition_, *account_, *time_;
    QComboBox* kind_;
    QSpinBox *port_, *nodes_, *gpus_;
    QPlainTextEdit* sbatch_;
    QPlainTextEdit* output_;
    QLabel* status_;
    QProcess* check_ = nullptr;
};

}  // namespace bimamba::ui
