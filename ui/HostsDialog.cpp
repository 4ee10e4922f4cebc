#include "ui/HostsDialog.h"

#include "core/base/FileUtil.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace bimamba::ui {

using base::Host;
using base::HostKind;
using base::host_problems;
using base::hosts_path;
using base::hosts_to_toml;
using base::load_hosts;
using base::parse_hosts;
using base::read_file;
using base::write_file_atomic;

HostsDialog::HostsDialog(const QString& workspace, const QString& cliPath, QWidget* parent)
    : QDialog(parent), workspace_(workspace), cli_(cliPath) {
    setWindowTitle("Hosts");
    setObjectName("HostsDialog");
    try {
        for (const auto& h : load_hosts(hosts_path(workspace.toStdString())).hosts)
            if (h.kind != HostKind::Local) hosts_.push_back(h);
    } catch (const std::exception& e) {
        // Shown, and saving is refused, so a file with a typo is never overwritten by an empty list.
        loadError_ = QString::fromStdString(e.what());
    }

    list_ = new QListWidget;
    list_->setObjectName("hostList");
    auto* add = new QPushButton("Add");
    auto* remove = new QPushButton("Remove");
    auto* check = new QPushButton("Check");
    check->setObjectName("checkHost");
    check->setToolTip("Save, then run `bimamba hosts check` on the selected host");
    auto* left = new QVBoxLayout;
    left->addWidget(list_, 1);
    auto* lb = new QHBoxLayout;
    for (auto* b : {add, remove, check}) lb->addWidget(b);
    left->addLayout(lb);

    auto* form = new QFormLayout;
    auto line = [](const char* obj, const QString& placeholder = {}) {
        auto* e = new QLineEdit;
        e->setObjectName(obj);
        e->setPlaceholderText(placeholder);
        return e;
    };
    name_ = line("hostName");
    kind_ = new QComboBox;
    kind_->setObjectName("hostKind");
    kind_->addItem("SSH host", "ssh");
    kind_->addItem("Slurm cluster", "slurm");
    host_ = line("hostAddress", "gpu1.example.org (empty for Slurm: this machine)");
    user_ = line("hostUser", "ssh's default");
    port_ = new QSpinBox;
    port_->setObjectName("hostPort");
    port_->setRange(0, 65535);
    port_->setSpecialValueText("default");
    identity_ = line("hostIdentity", "ssh's default keys / agent");
    knownHosts_ = line("hostKnownHosts", "~/.ssh/known_hosts");
    bimamba_ = line("hostBimamba");
    workdir_ = line("hostWorkdir");
    partition_ = line("hostPartition");
    account_ = line("hostAccount");
    time_ = line("hostTime", "e.g. 12:00:00");
    nodes_ = new QSpinBox;
    nodes_->setRange(1, 4096);
    gpus_ = new QSpinBox;
    gpus_->setRange(0, 64);
    gpus_->setSpecialValueText("0 (CPU)");
    sbatch_ = new QPlainTextEdit;
    sbatch_->setObjectName("hostSbatch");
    sbatch_->setPlaceholderText("one sbatch option per line, e.g. --qos=high");
    sbatch_->setMaximumHeight(70);
    form->addRow("Name", name_);
    form->addRow("Kind", kind_);
    form->addRow("Host", host_);
    form->addRow("User", user_);
    form->addRow("Port", port_);
    form->addRow("Identity file", identity_);
    form->addRow("Known hosts file", knownHosts_);
    form->addRow("bimamba there", bimamba_);
    form->addRow("Work folder there", workdir_);
    form->addRow("Partition", partition_);
    form->addRow("Account", account_);
    form->addRow("Time limit", time_);
    form->addRow("Nodes", nodes_);
    form->addRow("GPUs per node", gpus_);
    form->addRow("More #SBATCH", sbatch_);

    auto* top = new QHBoxLayout;
    top->addLayout(left, 1);
    top->addLayout(form, 2);
    output_ = new QPlainTextEdit;
    output_->setObjectName("checkOutput");
    output_->setReadOnly(true);
    output_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    output_->setMaximumHeight(110);
    status_ = new QLabel;
    status_->setObjectName("hostsStatus");
    status_->setWordWrap(true);
    auto* note =
        new QLabel(QStringLiteral("Saved in %1. No passwords: ssh uses your keys, ssh-agent and ~/.ssh/config; "
                                  "a host key must already be in known_hosts.")
                       .arg(QString::fromStdString(hosts_path(workspace.toStdString()))));
    note->setWordWrap(true);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    auto* lay = new QVBoxLayout(this);
    lay->addLayout(top, 1);
    lay->addWidget(note);
    lay->addWidget(output_);
    lay->addWidget(status_);
    lay->addWidget(buttons);

    connect(buttons, &QDialogButtonBox::accepted, this, &HostsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &HostsDialog::reject);
    connect(list_, &QListWidget::currentRowChanged, this, [this](int row) {
        if (syncing_) return;
        formToHost();
        current_ = row;
        hostToForm();
    });
    connect(add, &QPushButton::clicked, this, [this] {
        Host h;
        h.kind = HostKind::Ssh;
        h.name = "host" + std::to_string(hosts_.size() + 1);
        addHost(h);
    });
    connect(remove, &QPushButton::clicked, this, [this] {
        if (current_ < 0 || current_ >= int(hosts_.size())) return;
        hosts_.erase(hosts_.begin() + current_);
        current_ = -1;
        refreshList();
    });
    connect(check, &QPushButton::clicked, this, &HostsDialog::checkSelected);
    for (auto* e : {name_, host_, user_, identity_, knownHosts_, bimamba_, workdir_, partition_, account_, time_})
        connect(e, &QLineEdit::textEdited, this, [this] { formToHost(); });
    for (auto* sb : {port_, nodes_, gpus_}) connect(sb, &QSpinBox::valueChanged, this, [this] { formToHost(); });
    connect(kind_, &QComboBox::currentIndexChanged, this, [this] {
        if (syncing_) return;
        formToHost();
        hostToForm();
    });
    connect(sbatch_, &QPlainTextEdit::textChanged, this, [this] { formToHost(); });
    refreshList();
    if (!loadError_.isEmpty()) {
        status_->setStyleSheet("color: #c62828;");
        status_->setText("hosts.toml cannot be read, so it will not be overwritten: " + loadError_);
    }
    resize(860, 620);
}

void HostsDialog::refreshList() {
    const bool was = syncing_;
    syncing_ = true;
    list_->clear();
    for (const auto& h : hosts_) list_->addItem(QString::fromStdString(h.name));
    if (current_ >= int(hosts_.size())) current_ = -1;
    if (current_ < 0 && !hosts_.empty()) current_ = 0;
    list_->setCurrentRow(current_);
    syncing_ = was;
    hostToForm();
}

void HostsDialog::addHost(const Host& h) {
    formToHost();
    hosts_.push_back(h);
    current_ = int(hosts_.size()) - 1;
    refreshList();
}

void HostsDialog::selectHost(int row) {
    list_->setCurrentRow(row);
}

void HostsDialog::hostToForm() {
    const bool was = syncing_;
    syncing_ = true;
    const bool have = current_ >= 0 && current_ < int(hosts_.size());
    const Host h = have ? hosts_[current_] : Host();
    for (QWidget* w :
         std::initializer_list<QWidget*>{name_, kind_, host_, user_, port_, identity_, knownHosts_, bimamba_, workdir_,
                                         partition_, account_, time_, nodes_, gpus_, sbatch_})
        w->setEnabled(have);
    name_->setText(QString::fromStdString(h.name));
    kind_->setCurrentIndex(h.kind == HostKind::Slurm ? 1 : 0);
    host_->setText(QString::fromStdString(h.host));
    user_->setText(QString::fromStdString(h.user));
    port_->setValue(h.port);
    identity_->setText(QString::fromStdString(h.identity_file));
    knownHosts_->setText(QString::fromStdString(h.known_hosts));
    bimamba_->setText(QString::fromStdString(h.bimamba));
    workdir_->setText(QString::fromStdString(h.workdir));
    partition_->setText(QString::fromStdString(h.partition));
    account_->setText(QString::fromStdString(h.account));
    time_->setText(QString::fromStdString(h.time_limit));
    nodes_->setValue(h.nodes);
    gpus_->setValue(h.gpus_per_node);
    QStringList extra;
    for (const auto& s : h.sbatch_extra) extra << QString::fromStdString(s);
    sbatch_->setPlainText(extra.join('\n'));
    const bool slurm = h.kind == HostKind::Slurm;
    for (QWidget* w : std::initializer_list<QWidget*>{partition_, account_, time_, nodes_, gpus_, sbatch_})
        w->setEnabled(have && slurm);
    syncing_ = was;
}

void HostsDialog::formToHost() {
    if (syncing_ || current_ < 0 || current_ >= int(hosts_.size())) return;
    Host& h = hosts_[current_];
    h.name = name_->text().trimmed().toStdString();
    h.kind = kind_->currentData().toString() == "slurm" ? HostKind::Slurm : HostKind::Ssh;
    h.host = host_->text().trimmed().toStdString();
    h.user = user_->text().trimmed().toStdString();
    h.port = port_->value();
    h.identity_file = identity_->text().trimmed().toStdString();
    h.known_hosts = knownHosts_->text().trimmed().toStdString();
    h.bimamba = bimamba_->text().trimmed().toStdString();
    h.workdir = workdir_->text().trimmed().toStdString();
    const bool slurm = h.kind == HostKind::Slurm;
    h.partition = slurm ? partition_->text().trimmed().toStdString() : "";
    h.account = slurm ? account_->text().trimmed().toStdString() : "";
    h.time_limit = slurm ? time_->text().trimmed().toStdString() : "";
    h.nodes = nodes_->value();
    h.gpus_per_node = gpus_->value();
    h.sbatch_extra.clear();
    if (slurm)
        for (const QString& l : sbatch_->toPlainText().split('\n', Qt::SkipEmptyParts))
            if (!l.trimmed().isEmpty()) h.sbatch_extra.push_back(l.trimmed().toStdString());
    if (auto* item = list_->item(current_)) item->setText(QString::fromStdString(h.name));
}

QStringList HostsDialog::problems() const {
    QStringList out;
    if (!loadError_.isEmpty()) out << "hosts.toml cannot be read (fix it by hand first): " + loadError_;
    QStringList names{"local"};
    for (const auto& h : hosts_) {
        for (const auto& p : host_problems(h)) out << QString::fromStdString(p);
        const QString n = QString::fromStdString(h.name);
        if (names.contains(n)) out << QStringLiteral("host '%1': the name is taken").arg(n);
        names << n;
    }
    return out;
}

bool HostsDialog::save(QString* error) {
    formToHost();
    const QStringList p = problems();
    if (!p.isEmpty()) {
        if (error) *error = p.join('\n');
        return false;
    }
    const std::string path = hosts_path(workspace_.toStdString());
    const std::string text = hosts_to_toml(hosts_);
    try {
        parse_hosts(text, path);  // what is written reads back
        std::string old;
        if (QFileInfo::exists(QString::fromStdString(path))) old = read_file(path);
        if (old == text) return true;
        if (!old.empty()) write_file_atomic(path + ".bak", old);  // comments and all, kept
        write_file_atomic(path, text);
    } catch (const std::exception& e) {
        if (error) *error = QString::fromStdString(e.what());
        return false;
    }
    return true;
}

void HostsDialog::accept() {
    QString err;
    if (!save(&err)) {
        status_->setStyleSheet("color: #c62828;");
        status_->setText("Not saved:\n• " + err.split('\n').join("\n• "));
        return;
    }
    QDialog::accept();
}

void HostsDialog::checkSelected() {
    if (current_ < 0 || current_ >= int(hosts_.size()) || check_) return;
    QString err;
    if (!save(&err)) {
        status_->setStyleSheet("color: #c62828;");
        status_->setText("Not saved:\n• " + err.split('\n').join("\n• "));
        return;
    }
    const QString name = QString::fromStdString(hosts_[current_].name);
    output_->setPlainText(QStringLiteral("checking %1…").arg(name));
    check_ = new QProcess(this);
    check_->setProcessChannelMode(QProcess::MergedChannels);
    connect(check_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus) {
        output_->setPlainText(QString::fromUtf8(check_->readAll()).trimmed());
        status_->setStyleSheet(code == 0 ? "color: #2e7d32;" : "color: #c62828;");
        status_->setText(code == 0 ? "✓ The host answers and has bimamba." : "✗ The check failed (see above).");
        check_->deleteLater();
        check_ = nullptr;
    });
    connect(check_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e != QProcess::FailedToStart || !check_) return;
        output_->setPlainText("cannot run " + cli_ + ": " + check_->errorString());
        check_->deleteLater();
        check_ = nullptr;
    });
    check_->start(cli_, {"hosts", "check", name, "--workspace", workspace_});
}

QString HostsDialog::checkOutput() const {
    return output_->toPlainText();
}

}  // namespace bimamba::ui
