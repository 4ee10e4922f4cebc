#pragma once
// Choosing models from the run table instead of typing paths: a dialog that
// lists the workspace's runs (name, group, status, binarization, loss), the
// Runs tab's selection checked, the runs without a checkpoint yet disabled.
// Each chosen run becomes "NAME=RUN_FOLDER", which every --model / --hist of
// the CLI takes (a run folder means its latest checkpoint:
// core/base/ModelSource.h). Weights, Compare and Evaluate use it.
#include <QDialog>
#include <QList>
#include <functional>

class QListWidget;

namespace bimamba::ui {

class RunManager;

class RunPicker : public QDialog {
    Q_OBJECT
public:
    RunPicker(RunManager* manager, const QString& purpose, QWidget* parent = nullptr);
    QStringList specs() const;  // "NAME=RUN_FOLDER" of the checked runs, in table order
    QListWidget* list() const { return list_; }

    // Shows the dialog; the chosen specs, or nothing when cancelled.
    static QStringList choose(RunManager* manager, const QString& purpose, QWidget* parent);
    // `existing` (specs separated by `sep`) with the `added` specs appended;
    // one whose label is there already replaces that entry.
    static QString merge(const QString& existing, const QStringList& added, const QString& sep);
    // What the Runs tab has selected (set by the main window; may be empty).
    static void setSelectionSource(std::function<QList<qint64>()> source);

private:
    RunManager* manager_;
    QListWidget* list_;
};

}  // namespace bimamba::ui
