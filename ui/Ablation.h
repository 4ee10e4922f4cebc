#pragma once
// Ablation grids: a base training config plus axes (loss, binarization
// scope, teacher, model size, seed) expand into a group of runs; the group's
// results form a table in the layout of the paper's Tables 5 and 10.
#include "ui/RunStore.h"

#include <QJsonObject>
#include <QStringList>
#include <QVector>

namespace bimamba::ui {

struct AblationAxes {
    QStringList losses;         // ce | soft_ce | kl | mix
    QStringList binarizations;  // none | in_proj | in_proj+out_proj
    QStringList teachers;       // checkpoint folders
    QStringList sizes;          // model presets
    QList<int> seeds;
};

struct AblationRun {
    QString name;
    QJsonObject config;
    QJsonObject axes;  // the axis values of this run (only the axes that vary)
};

QString lossLabel(const QString& loss);  // CE, AR-KD, KL, mix
// Cartesian product of the non-empty axes over `base`. A CE run uses no
// teacher, so the teacher axis collapses for it (no duplicate runs).
QVector<AblationRun> expandAblation(const QString& group, const QJsonObject& base, const AblationAxes& axes);

struct ResultsTable {
    QStringList header;
    QVector<QStringList> rows;
    int firstNumeric = 0;        // columns before this are labels
    QVector<int> seedGroupRows;  // rows that are a seed group's mean ± sd, after the runs
};
// Rows: runs of the group (axis values first), then the zero-shot tasks in the
// paper's order, Avg, Wiki2 perplexity (from <run>/eval_results.json, or the
// rows labelled with the run's name in the workspace's eval/*.json, as a study
// writes them) and the best validation perplexity. Then one row per seed group
// (runs whose train_config.json differ at most in the seed): mean ± sd and n.
ResultsTable ablationResults(const QVector<RunRecord>& runs);
QString toLatex(const ResultsTable& t, const QString& caption);
QStringList paperZeroShotTasks();  // boolq, piqa, hellaswag, winogrande, arc_easy, arc_challenge, openbookqa
QString taskLabel(const QString& task);

}  // namespace bimamba::ui
