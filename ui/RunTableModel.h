#pragma once
// Table model over the run store: one row per run.
#include "ui/RunStore.h"

#include <QAbstractTableModel>

namespace bimamba::ui {

class RunTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Name,
        Group,
        Preset,
        Binarize,
        Loss,
        Teacher,
        Status,
        Steps,
        Tokens,
        BestPpl,
        Started,
        Ended,
        Host,
        ColumnCount
    };
    enum Roles { RunIdRole = Qt::UserRole + 1, ProgressRole };
    explicit RunTableModel(RunStore* store, QObject* parent = nullptr);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;
    qint64 runId(int row) const;
    int rowOf(qint64 id) const;
    const RunRecord* record(int row) const;
    void reload();

private:
    void onChanged(qint64 id);
    RunStore* store_;
    QVector<RunRecord> rows_;
};

QString formatCount(double v);  // 1.2k, 3.4M, 5.6B

}  // namespace bimamba::ui
