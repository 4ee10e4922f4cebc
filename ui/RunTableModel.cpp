#include "ui/RunTableModel.h"

#include <QBrush>
#include <QApplication>
#include <QColor>
#include <QFont>
#include <QStyle>

#include <cmath>

namespace bimamba::ui {

QString formatCount(double v) {
    if (!std::isfinite(v)) return QStringLiteral("–");
    const double a = std::fabs(v);
    if (a >= 1e9) return QString::number(v / 1e9, 'f', 2) + "B";
    if (a >= 1e6) return QString::number(v / 1e6, 'f', 2) + "M";
    if (a >= 1e3) return QString::number(v / 1e3, 'f', 1) + "k";
    return QString::number(v, 'g', 4);
}

RunTableModel::RunTableModel(RunStore* store, QObject* parent) : QAbstractTableModel(parent), store_(store) {
    connect(store_, &RunStore::runAdded, this, [this](qint64) { reload(); });
    connect(store_, &RunStore::runRemoved, this, [this](qint64) { reload(); });
    connect(store_, &RunStore::runChanged, this, &RunTableModel::onChanged);
    reload();
}

void RunTableModel::reload() {
    beginResetModel();
    rows_ = store_->all();
    endResetModel();
}

void RunTableModel::onChanged(qint64 id) {
    const int row = rowOf(id);
    if (row < 0) return reload();
    if (auto r = store_->byId(id)) {
        rows_[row] = *r;
        emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
    }
}

int RunTableModel::rowCount(const QModelIndex& p) const {
    return p.isValid() ? 0 : rows_.size();
}
int RunTableModel::columnCount(const QModelIndex& p) const {
    return p.isValid() ? 0 : ColumnCount;
}
qint64 RunTableModel::runId(int row) const {
    return row >= 0 && row < rows_.size() ? rows_[row].id : -1;
}
const RunRecord* RunTableModel::record(int row) const {
    return row >= 0 && row < rows_.size() ? &rows_[row] : nullptr;
}

int RunTableModel::rowOf(qint64 id) const {
    for (int i = 0; i < rows_.size(); ++i)
        if (rows_[i].id == id) return i;
    return -1;
}

QVariant RunTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* names[] = {"Name",    "Tags",   "Group", "Preset", "Binarization", "Loss",
                                  "Teacher", "Status", "Alert", "Steps",  "Tokens",       "Best val ppl",
                                  "Started", "Ended",  "Host",  "Notes"};
    static_assert(sizeof(names) / sizeof(names[0]) == ColumnCount);
    return section >= 0 && section < ColumnCount ? QString(names[section]) : QVariant();
}

QString RunTableModel::alertShort(const QString& alert) {
    if (alert.isEmpty()) return {};
    return QString::fromUtf8("\u26a0 ") + alert.section(':', 0, 0);  // "⚠ NaN loss" of "NaN loss: ..."
}

Qt::ItemFlags RunTableModel::flags(const QModelIndex& idx) const {
    Qt::ItemFlags f = QAbstractTableModel::flags(idx);
    if (idx.isValid() && (idx.column() == Tags || idx.column() == Notes)) f |= Qt::ItemIsEditable;
    return f;
}

bool RunTableModel::setData(const QModelIndex& idx, const QVariant& value, int role) {
    if (!idx.isValid() || role != Qt::EditRole || idx.row() >= rows_.size()) return false;
    const qint64 id = rows_[idx.row()].id;
    if (idx.column() == Tags) return store_->setTags(id, parseTags(value.toString()));
    if (idx.column() == Notes) {
        // The table edits the first line; the rest (written in the side panel) stays.
        const QString rest = rows_[idx.row()].notes.section('\n', 1);
        const QString first = value.toString().section('\n', 0, 0);
        return store_->setNotes(id,
                                rest.isEmpty() && !rows_[idx.row()].notes.contains('\n') ? first : first + "\n" + rest);
    }
    return false;
}

QVariant RunTableModel::data(const QModelIndex& idx, int role) const {
    if (!idx.isValid() || idx.row() >= rows_.size()) return {};
    const RunRecord& r = rows_[idx.row()];
    if (role == RunIdRole) return r.id;
    if (role == ProgressRole) return r.totalSteps > 0 ? double(r.step) / r.totalSteps : 0.0;
    if (role == Qt::ToolTipRole) {
        if (idx.column() == Alert && !r.alert.isEmpty()) return r.alert;
        if (idx.column() == Notes && !r.notes.isEmpty()) return r.notes;
        if (idx.column() == Tags) return QStringLiteral("Tags, separated by commas or spaces (double-click to edit)");
        return r.message.isEmpty() ? r.runDir : r.runDir + "\n\n" + r.message;
    }
    if (role == Qt::ForegroundRole && idx.column() == Alert && !r.alert.isEmpty())
        return QBrush(QColor(0xc6, 0x28, 0x28));
    if (role == Qt::DecorationRole && idx.column() == Name && !r.alert.isEmpty())
        return QApplication::style()->standardIcon(QStyle::SP_MessageBoxWarning);
    if (role == Qt::FontRole && r.archived) {
        QFont f;
        f.setItalic(true);
        return f;
    }
    if (role == Qt::ForegroundRole && r.archived) return QBrush(QColor(0x80, 0x80, 0x80));
    if (role == Qt::ForegroundRole && idx.column() == Status) {
        if (r.status == "failed" || r.status == "lost") return QBrush(QColor(0xc6, 0x28, 0x28));
        if (r.status == "finished") return QBrush(QColor(0x2e, 0x7d, 0x32));
        if (r.status == "running" || r.status == "starting") return QBrush(QColor(0x15, 0x65, 0xc0));
        if (r.status == "unreachable" || r.status == "pending") return QBrush(QColor(0xef, 0x6c, 0x00));
        return {};
    }
    if (role == Qt::TextAlignmentRole && (idx.column() == Steps || idx.column() == Tokens || idx.column() == BestPpl))
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole && role != Qt::EditRole) return {};
    switch (idx.column()) {
        case Name:
            return r.archived && role == Qt::DisplayRole ? r.name + " (archived)" : r.name;
        case Tags:
            return r.tags.join(", ");
        case Notes:
            return r.notes.section('\n', 0, 0);
        case Alert:
            return alertShort(r.alert);
        case Group:
            return r.group;
        case Preset:
            return r.preset;
        case Binarize:
            return r.binarize;
        case Loss:
            return r.loss;
        case Teacher:
            return r.teacher.isEmpty() ? QStringLiteral("–") : r.teacher.section('/', -3);
        case Status:
            return r.status;
        case Steps:
            return r.totalSteps > 0 ? QStringLiteral("%1 / %2").arg(r.step).arg(r.totalSteps) : QString::number(r.step);
        case Tokens:
            return formatCount(double(r.tokens));
        case BestPpl:
            return std::isfinite(r.bestValPpl) ? QString::number(r.bestValPpl, 'f', 2) : QStringLiteral("–");
        case Started:
            return r.started;
        case Ended:
            return r.ended;
        case Host:
            return r.isRemote() ? r.host : QStringLiteral("local");
    }
    return {};
}

}  // namespace bimamba::ui
