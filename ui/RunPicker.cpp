#include "ui/RunPicker.h"

#include "core/base/RunDir.h"
#include "ui/RunManager.h"
#include "ui/RunStore.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>

namespace bimamba::ui {

using base::latest_checkpoint;

namespace {
std::function<QList<qint64>()>& selectionSource() {
    static std::function<QList<qint64>()> f;
    return f;
}
QString labelOf(const QString& spec) {
    return spec.section('=', 0, 0).trimmed();
}
}  // namespace

void RunPicker::setSelectionSource(std::function<QList<qint64>()> source) {
    selectionSource() = std::move(source);
}

RunPicker::RunPicker(RunManager* manager, const QString& purpose, QWidget* parent)
    : QDialog(parent), manager_(manager) {
    setObjectName("RunPicker");
    setWindowTitle("Choose runs");
    auto* lay = new QVBoxLayout(this);
    auto* intro = new QLabel(purpose + " Each run stands for its latest checkpoint.");
    intro->setWordWrap(true);
    lay->addWidget(intro);
    list_ = new QListWidget;
    list_->setObjectName("runPickerList");
    const QList<qint64> selected = selectionSource() ? selectionSource()() : QList<qint64>{};
    for (const RunRecord& r : manager_->store()->all()) {
        if (r.archived && !selected.contains(r.id)) continue;  // archived runs only when picked in the Runs tab
        const bool hasCheckpoint = !latest_checkpoint(r.runDir.toStdString()).empty();
        QStringList facts;
        for (const QString& f : {r.group, r.status, r.binarize, r.loss})
            if (!f.isEmpty()) facts << f;
        auto* item = new QListWidgetItem(r.name + (facts.isEmpty() ? "" : "   (" + facts.join(" · ") + ")"));
        item->setData(Qt::UserRole, r.name + "=" + QDir::cleanPath(r.runDir));
        item->setToolTip(hasCheckpoint ? r.runDir : r.runDir + "\nno checkpoint yet");
        item->setFlags(hasCheckpoint ? Qt::ItemIsEnabled | Qt::ItemIsUserCheckable : Qt::ItemIsUserCheckable);
        item->setCheckState(hasCheckpoint && selected.contains(r.id) ? Qt::Checked : Qt::Unchecked);
        list_->addItem(item);
    }
    lay->addWidget(list_, 1);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    buttons->button(QDialogButtonBox::Ok)->setText("Add");
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    lay->addWidget(buttons);
    resize(520, 420);
}

QStringList RunPicker::specs() const {
    QStringList out;
    for (int i = 0; i < list_->count(); ++i)
        if (list_->item(i)->checkState() == Qt::Checked && (list_->item(i)->flags() & Qt::ItemIsEnabled))
            out << list_->item(i)->data(Qt::UserRole).toString();
    return out;
}

QStringList RunPicker::choose(RunManager* manager, const QString& purpose, QWidget* parent) {
    RunPicker p(manager, purpose, parent);
    return p.exec() == QDialog::Accepted ? p.specs() : QStringList{};
}

QString RunPicker::merge(const QString& existing, const QStringList& added, const QString& sep) {
    QStringList specs;
    for (const QString& s : existing.split(sep.trimmed().isEmpty() ? QString("\n") : sep.trimmed()))
        if (!s.trimmed().isEmpty()) specs << s.trimmed();
    QStringList labels;
    for (const QString& s : specs) labels << labelOf(s);
    for (const QString& s : added) {
        const int at = labels.indexOf(labelOf(s));
        if (at >= 0) {
            specs[at] = s;  // the run just chosen replaces an older path under its name
        } else {
            specs << s;
            labels << labelOf(s);
        }
    }
    return specs.join(sep);
}

}  // namespace bimamba::ui
