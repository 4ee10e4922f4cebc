#pragma once
// Sorting and filtering of the run table. The filter is a query of words:
// `key:value` matches a run field (name, group, preset, binarize, loss,
// teacher, status) or a field of the run's resolved config by dotted path
// (`lr:0.001`, `model.d_model:768`, `seed:2`), as a case-insensitive
// substring; `tag:X` a run that has the tag X (the whole tag, any case),
// `notes:word` its notes, `alert:nan` its alert; a bare word matches any of
// the run fields, its tags or notes. All words must match. Archived runs are
// hidden unless shown (setShowArchived).
#include "ui/RunStore.h"

#include <QHash>
#include <QMap>
#include <QSortFilterProxyModel>
#include <QStringList>

namespace bimamba::ui {

class RunTableModel;

// True when `r` (and its flattened config, loaded on demand) matches `query`.
bool runMatchesQuery(const RunRecord& r, const QString& query, const QMap<QString, QString>& config);
// A config's leaves by dotted path ("model.binarize" -> "in_proj").
QMap<QString, QString> flattenConfig(const QJsonObject& config);

class RunFilterProxy : public QSortFilterProxyModel {
    // No Q_OBJECT: no signals or slots of its own.
public:
    explicit RunFilterProxy(RunTableModel* source, QObject* parent = nullptr);
    void setQuery(const QString& query);
    QString query() const { return query_; }
    void setShowArchived(bool on);
    bool showArchived() const { return showArchived_; }

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;
    bool lessThan(const QModelIndex& a, const QModelIndex& b) const override;

private:
    RunTableModel* source_;
    QString query_;
    bool showArchived_ = false;
    mutable QHash<qint64, QMap<QString, QString>> configs_;  // run id -> flattened config
};

}  // namespace bimamba::ui
