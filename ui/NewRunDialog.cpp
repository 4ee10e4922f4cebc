#include "ui/NewRunDialog.h"

#include "ui/RunTableModel.h"
#include "ui/TrainConfigJson.h"

#include "core/base/Hosts.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

namespace bimamba::ui {

using base::Host;
using base::hosts_path;
using base::load_hosts;

namespace {
QWidget* withBrowse(QLineEdit* edit, QWidget* parent, const QString& title) {
    auto* w = new QWidget(parent);
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    h->addWidget(edit, 1);
    auto* b = new QToolButton(w);
    b->setText("…");
    QObject::connect(b, &QToolButton::clicked, w, [edit, w, title] {
        const QString d = QFileDialog::getExistingDirectory(w, title, edit->text());
        if (!d.isEmpty()) edit->setText(d);
    });
    h->addWidget(b);
    return w;
}
}  // namespace

NewRunDialog::NewRunDialog(const QString& workspace, QWidget* parent) : QDialog(parent), workspace_(workspace) {
    setWindowTitle("New training run");
    setObjectName("NewRunDialog");
    auto* top = new QHBoxLayout;
    auto* formBox = new QGroupBox("Run");
    auto* form = new QFormLayout(formBox);
    preset_ = new QComboBox;
    preset_->setObjectName("preset");
    for (const auto& p : trainPresetNames()) preset_->addItem(trainPresetLabel(p), p);
    name_ = new QLineEdit("run");
    name_->setObjectName("name");
    group_ = new QLineEdit;
    group_->setObjectName("group");
    group_->setPlaceholderText("optional, e.g. ablation-loss");
    data_ = new QLineEdit;
    data_->setObjectName("data");
    data_->setPlaceholderText("prepared corpus folder (bimamba prepare)");
    size_ = new QComboBox;
    size_->setObjectName("modelSize");
    size_->addItems({"tiny", "small", "130m", "370m", "780m", "1.3b", "2.7b"});
    binarize_ = new QComboBox;
    binarize_->setObjectName("binarize");
    binarize_->addItems({"none", "in_proj", "in_proj+out_proj"});
    loss_ = new QComboBox;
    loss_->setObjectName("loss");
    loss_->addItem("CE (no distillation)", "ce");
    loss_->addItem("AR-KD (soft CE, paper eq. 6)", "soft_ce");
    loss_->addItem("KL divergence", "kl");
    loss_->addItem("Mix (50% CE + 50% KD)", "mix");
    teacher_ = new QLineEdit;
    teacher_->setObjectName("teacher");
    teacher_->setPlaceholderText("full-precision checkpoint folder");
    steps_ = new QSpinBox;
    steps_->setObjectName("steps");
    steps_->setRange(1, 100000000);
    seqLen_ = new QSpinBox;
    seqLen_->setRange(1, 1 << 20);
    batch_ = new QSpinBox;
    batch_->setRange(1, 1 << 16);
    lr_ = new QDoubleSpinBox;
    lr_->setDecimals(6);
    lr_->setRange(1e-6, 1.0);
    lr_->setSingleStep(1e-4);
    seed_ = new QSpinBox;
    seed_->setRange(0, 1 << 30);
    device_ = new QComboBox;
    device_->addItems({"auto", "cpu", "cuda"});
    params_ = new QLabel;
    form->addRow("Preset", preset_);
    form->addRow("Name", name_);
    form->addRow("Group", group_);
    form->addRow("Data", withBrowse(data_, this, "Prepared corpus"));
    form->addRow("Model size", size_);
    form->addRow("Binarization", binarize_);
    form->addRow("Loss", loss_);
    form->addRow("Teacher", withBrowse(teacher_, this, "Teacher checkpoint"));
    form->addRow("Steps", steps_);
    form->addRow("Sequence length", seqLen_);
    form->addRow("Batch size", batch_);
    form->addRow("Peak lr", lr_);
    form->addRow("Seed", seed_);
    form->addRow("Device", device_);
    form->addRow("Parameters", params_);
    // Where the run trains: this machine or a target of the workspace's hosts.toml.
    target_ = new QComboBox;
    target_->setObjectName("target");
    syncData_ = new QCheckBox("Copy the data folder to the target (rsync)");
    syncData_->setObjectName("syncData");
    syncData_->setToolTip("Without it the data path must exist on the target (relative: to the home folder there)");
    reloadTargets();
    form->addRow("Target", target_);
    form->addRow("", syncData_);
    connect(target_, &QComboBox::currentIndexChanged, this, [this] {
        syncData_->setEnabled(target() != "local");
        validate();
    });
    connect(syncData_, &QCheckBox::toggled, this, [this] { validate(); });
    top->addWidget(formBox, 0);

    auto* jsonBox = new QGroupBox("Config (JSON, docs/train-config.md)");
    auto* jl = new QVBoxLayout(jsonBox);
    json_ = new QPlainTextEdit;
    json_->setObjectName("configJson");
    json_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    json_->setMinimumWidth(380);
    jl->addWidget(json_);
    top->addWidget(jsonBox, 1);

    status_ = new QLabel;
    status_->setObjectName("validation");
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    buttons_->button(QDialogButtonBox::Ok)->setText("Launch");
    auto* validateBtn = buttons_->addButton("Validate", QDialogButtonBox::ActionRole);
    connect(validateBtn, &QPushButton::clicked, this, [this] { validate(); });
    connect(buttons_, &QDialogButtonBox::accepted, this, &NewRunDialog::accept);
    connect(buttons_, &QDialogButtonBox::rejected, this, &NewRunDialog::reject);

    auto* lay = new QVBoxLayout(this);
    lay->addLayout(top, 1);
    lay->addWidget(status_);
    lay->addWidget(buttons_);

    for (auto* e : {name_, group_, data_, teacher_})
        connect(e, &QLineEdit::textEdited, this, &NewRunDialog::formToJson);
    connect(data_, &QLineEdit::textChanged, this, &NewRunDialog::formToJson);
    connect(teacher_, &QLineEdit::textChanged, this, &NewRunDialog::formToJson);
    for (auto* b : {size_, binarize_, loss_, device_})
        connect(b, &QComboBox::currentIndexChanged, this, &NewRunDialog::formToJson);
    for (auto* s : {steps_, seqLen_, batch_, seed_})
        connect(s, &QSpinBox::valueChanged, this, &NewRunDialog::formToJson);
    connect(lr_, &QDoubleSpinBox::valueChanged, this, &NewRunDialog::formToJson);
    connect(preset_, &QComboBox::currentIndexChanged, this, [this] { setPreset(preset()); });
    connect(json_, &QPlainTextEdit::textChanged, this, [this] {
        if (syncing_) return;
        QJsonObject c;
        if (parseConfigText(json_->toPlainText(), &c, nullptr)) {
            syncing_ = true;
            jsonToForm(c);
            syncing_ = false;
        }
    });

    QSettings s;
    const QString data = s.value("newRun/data", QDir(workspace_).filePath("quickstart/data/fortunes")).toString();
    data_->setText(data);
    setPreset(s.value("newRun/preset", "quickstart").toString());
    resize(980, 600);
}

QString NewRunDialog::preset() const {
    return preset_->currentData().toString();
}
QString NewRunDialog::runName() const {
    return name_->text().trimmed();
}
QString NewRunDialog::group() const {
    return group_->text().trimmed();
}
QString NewRunDialog::configText() const {
    return json_->toPlainText();
}
void NewRunDialog::setConfigText(const QString& t) {
    json_->setPlainText(t);
}
void NewRunDialog::setDataDir(const QString& d) {
    data_->setText(d);
    formToJson();
}

void NewRunDialog::setPreset(const QString& p) {
    const int i = preset_->findData(p);
    if (i >= 0 && i != preset_->currentIndex()) {
        preset_->setCurrentIndex(i);  // re-enters through the signal
        return;
    }
    if (p == "custom") return;  // keep what is there
    const QJsonObject c = trainPreset(p, absolutize(data_->text()));
    syncing_ = true;
    json_->setPlainText(QString::fromUtf8(QJsonDocument(c).toJson(QJsonDocument::Indented)));
    jsonToForm(c);
    if (name_->text().isEmpty() || name_->text() == "run" || name_->text().startsWith("quickstart") ||
        name_->text().startsWith("paper-"))
        name_->setText(p);
    syncing_ = false;
    validate();
}

void NewRunDialog::setConfig(const QJsonObject& c, const QString& name, const QString& group) {
    const int i = preset_->findData("custom");
    syncing_ = true;
    preset_->setCurrentIndex(i);
    json_->setPlainText(QString::fromUtf8(QJsonDocument(c).toJson(QJsonDocument::Indented)));
    jsonToForm(c);
    name_->setText(name);
    group_->setText(group);
    syncing_ = false;
    validate();
}

QString NewRunDialog::absolutize(const QString& p) const {
    if (p.isEmpty() || QDir::isAbsolutePath(p)) return p;
    return QDir(workspace_).absoluteFilePath(p);
}

void NewRunDialog::jsonToForm(const QJsonObject& c) {
    const QSignalBlocker b1(data_), b2(size_), b3(binarize_), b4(loss_), b5(teacher_), b6(steps_), b7(seqLen_),
        b8(batch_), b9(lr_), b10(seed_), b11(device_);
    data_->setText(c.value("data").toString());
    const QJsonValue m = c.value("model");
    const QString size = m.isString() ? m.toString() : m.toObject().value("preset").toString("small");
    size_->setCurrentText(size);
    binarize_->setCurrentText(m.isObject() ? m.toObject().value("binarize").toString("none") : "none");
    const int li = loss_->findData(c.value("loss").toString("ce") == "kd" ? "soft_ce" : c.value("loss").toString("ce"));
    if (li >= 0) loss_->setCurrentIndex(li);
    teacher_->setText(c.value("teacher").toString());
    steps_->setValue(c.value("steps").toInt(1000));
    seqLen_->setValue(c.value("seq_len").toInt(256));
    batch_->setValue(c.value("batch_size").toInt(8));
    lr_->setValue(c.value("lr").toDouble(2.5e-4));
    seed_->setValue(c.value("seed").toInt(0));
    device_->setCurrentText(c.value("device").toString("auto"));
    QString err;
    const long long n = modelParameters(c, &err);
    params_->setText(n > 0 ? formatCount(double(n)) : QStringLiteral("–"));
}

void NewRunDialog::formToJson() {
    if (syncing_) return;
    QJsonObject c;
    if (!parseConfigText(json_->toPlainText(), &c, nullptr)) c = QJsonObject{};
    c["data"] = absolutize(data_->text().trimmed());
    QJsonObject m = c.value("model").isObject() ? c.value("model").toObject() : QJsonObject{};
    m["preset"] = size_->currentText();
    m["binarize"] = binarize_->currentText();
    c["model"] = m;
    c["loss"] = loss_->currentData().toString();
    const QString t = absolutize(teacher_->text().trimmed());
    if (t.isEmpty())
        c.remove("teacher");
    else
        c["teacher"] = t;
    c["steps"] = steps_->value();
    c["seq_len"] = seqLen_->value();
    c["batch_size"] = batch_->value();
    c["lr"] = lr_->value();
    if (c.value("final_lr").toDouble(0) > lr_->value()) c["final_lr"] = lr_->value() / 10;
    c["seed"] = seed_->value();
    c["device"] = device_->currentText();
    syncing_ = true;
    json_->setPlainText(QString::fromUtf8(QJsonDocument(c).toJson(QJsonDocument::Indented)));
    syncing_ = false;
    QString err;
    const long long n = modelParameters(c, &err);
    params_->setText(n > 0 ? formatCount(double(n)) : QStringLiteral("–"));
    validate();
}

bool NewRunDialog::validate() {
    errors_.clear();
    QJsonObject c;
    QString perr;
    if (!parseConfigText(json_->toPlainText(), &c, &perr)) {
        errors_ << perr;
    } else {
        // Paths are checked here for this machine, or when the data is copied
        // from here; on a target the trainer checks them.
        const bool here = target() == "local";
        errors_ = trainConfigProblems(c, here);
        if (!here && syncData() && !QFileInfo(c.value("data").toString()).isDir())
            errors_ << QStringLiteral("data: '%1' is not a folder here, so it cannot be copied to the target")
                           .arg(c.value("data").toString());
        if (runName().isEmpty()) errors_ << "The run needs a name";
    }
    if (errors_.isEmpty()) {
        config_ = c;
        status_->setStyleSheet("color: #2e7d32;");
        // A broken hosts.toml never blocks a run on this machine; it is named here.
        status_->setText(targetError_.isEmpty()
                             ? QStringLiteral("✓ Config is valid.")
                             : "✓ Config is valid. (Only this machine is offered as target: " + targetError_ + ")");
        return true;
    }
    status_->setStyleSheet("color: #c62828;");
    status_->setText("The config cannot be launched:\n• " + errors_.join("\n• "));
    return false;
}

void NewRunDialog::reloadTargets() {
    const QString keep = target_->currentData().toString();
    target_->clear();
    targetError_.clear();
    std::vector<Host> hosts;
    try {
        hosts = load_hosts(hosts_path(workspace_.toStdString())).hosts;
    } catch (const std::exception& e) {
        targetError_ = QString::fromStdString(e.what());
        Host local;
        local.name = "local";
        hosts = {local};
    }
    for (const auto& h : hosts)
        target_->addItem(QString::fromStdString(h.name + "  —  " + h.describe()), QString::fromStdString(h.name));
    const int i = target_->findData(keep);
    target_->setCurrentIndex(i >= 0 ? i : 0);
    syncData_->setEnabled(target() != "local");
}

QString NewRunDialog::target() const {
    const QString t = target_->currentData().toString();
    return t.isEmpty() ? QStringLiteral("local") : t;
}

void NewRunDialog::setTarget(const QString& name) {
    const int i = target_->findData(name);
    if (i >= 0) target_->setCurrentIndex(i);
}

bool NewRunDialog::syncData() const {
    return target() != "local" && syncData_->isChecked();
}

void NewRunDialog::accept() {
    if (!validate()) return;  // stays open, errors listed
    QSettings s;
    s.setValue("newRun/data", config_.value("data").toString());
    s.setValue("newRun/preset", preset());
    QDialog::accept();
}

}  // namespace bimamba::ui
