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
        Tags,  // editable
        Group,
        Preset,
        Binarize,
        Loss,
        Teacher,
        Status,
        Alert,  // NaN / diverged / stalled (RunManager's alerts)
        Steps,
        Tokens,
        BestPpl,
        Started,
        Ended,
        Host,
        Notes,  // editable (first line shown; the side panel edits all of it)
        ColumnCount
    };
    enum Roles { RunIdRole = Qt::UserRole + 1, ProgressRole };
    explicit RunTableModel(RunStore* store, QObject* parent = nullptr);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role) override;
    qint64 runId(int row) const;
    int rowOf(qint64 id) const;
    const RunRecord* record(int row) const;
    void reload();

    // The short form of an alert shown in the Alert column ("⚠ NaN loss").
    static QString alertShort(const QString& alert);

private:
    void onChanged(qint64 id);
    RunStore* store_;
    QVector<RunRecord> rows_;
};

QString formatCount(double v);  // 1.2k, 3.4M, 5.6B

}  // namespace bimamba::ui
