#include "ui/AblationPanel.h"

#include "ui/ReportExporter.h"
#include "ui/RunManager.h"
#include "ui/TrainConfigJson.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

namespace bimamba::ui {

AblationPanel::AblationPanel(RunManager* manager, QWidget* parent) : QWidget(parent), manager_(manager) {
    setObjectName("AblationPanel");
    auto* left = new QWidget;
    auto* ll = new QVBoxLayout(left);
    auto* form = new QFormLayout;
    group_ = new QLineEdit("ablation");
    group_->setObjectName("groupName");
    form->addRow("Group", group_);
    ll->addLayout(form);
    auto* baseBox = new QGroupBox("Base config (JSON)");
    auto* bl = new QVBoxLayout(baseBox);
    base_ = new QPlainTextEdit;
    base_->setObjectName("baseConfig");
    base_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    base_->setPlainText(QString::fromUtf8(
        QJsonDocument(trainPreset("quickstart", QDir(manager_->workspace()).filePath("quickstart/data/fortunes")))
            .toJson(QJsonDocument::Indented)));
    bl->addWidget(base_);
    ll->addWidget(baseBox, 1);

    auto* axesBox = new QGroupBox("Axes (each non-empty axis multiplies the group)");
    auto* al = new QFormLayout(axesBox);
    auto* lossRow = new QHBoxLayout;
    for (const auto& l : QStringList{"ce", "soft_ce", "kl", "mix"}) {
        auto* cb = new QCheckBox(lossLabel(l));
        cb->setObjectName("loss_" + l);
        lossBoxes_[l] = cb;
        lossRow->addWidget(cb);
    }
    al->addRow("Loss", lossRow);
    auto* binRow = new QHBoxLayout;
    for (const auto& b : QStringList{"none", "in_proj", "in_proj+out_proj"}) {
        auto* cb = new QCheckBox(b);
        cb->setObjectName("bin_" + b);
        binBoxes_[b] = cb;
        binRow->addWidget(cb);
    }
    al->addRow("Binarization", binRow);
    teachers_ = new QLineEdit;
    teachers_->setPlaceholderText("teacher checkpoint folders, comma-separated");
    sizes_ = new QLineEdit;
    sizes_->setPlaceholderText("e.g. 780m, 2.7b");
    seeds_ = new QLineEdit;
    seeds_->setPlaceholderText("e.g. 0, 1, 2");
    al->addRow("Teachers", teachers_);
    al->addRow("Model sizes", sizes_);
    al->addRow("Seeds", seeds_);
    ll->addWidget(axesBox);
    auto* btns = new QHBoxLayout;
    auto* previewBtn = new QPushButton("Preview");
    auto* launchBtn = new QPushButton("Launch group");
    launchBtn->setObjectName("launchGroup");
    btns->addWidget(previewBtn);
    btns->addWidget(launchBtn);
    btns->addStretch();
    ll->addLayout(btns);
    previewList_ = new QListWidget;
    previewList_->setObjectName("preview");
    ll->addWidget(previewList_, 1);
    info_ = new QLabel;
    info_->setWordWrap(true);
    info_->setObjectName("ablationInfo");
    ll->addWidget(info_);

    auto* right = new QWidget;
    auto* rl = new QVBoxLayout(right);
    auto* top = new QHBoxLayout;
    groupBox_ = new QComboBox;
    groupBox_->setObjectName("groupBox");
    groupBox_->setMinimumWidth(200);
    top->addWidget(new QLabel("Group"));
    top->addWidget(groupBox_, 1);
    auto* csvBtn = new QPushButton("Export CSV…");
    auto* texBtn = new QPushButton("Export LaTeX…");
    top->addWidget(csvBtn);
    top->addWidget(texBtn);
    rl->addLayout(top);
    auto* caption = new QLabel(
        "Results in the layout of the paper's Tables 5 and 10: zero-shot accuracy (%) per task, "
        "average, Wiki2 perplexity (from each run's eval_results.json) and best validation perplexity.");
    caption->setWordWrap(true);
    rl->addWidget(caption);
    table_ = new QTableWidget;
    table_->setObjectName("resultsTable");
    table_->verticalHeader()->hide();
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setAlternatingRowColors(true);
    rl->addWidget(table_, 1);

    auto* split = new QSplitter;
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(1, 2);
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(split);

    connect(previewBtn, &QPushButton::clicked, this, [this] { preview(); });
    connect(launchBtn, &QPushButton::clicked, this, [this] {
        QString err;
        const auto ids = launchGroup(&err);
        if (!err.isEmpty())
            info_->setText("<span style='color:#c62828'>" + err.toHtmlEscaped().replace('\n', "<br>") + "</span>");
        else
            info_->setText(QStringLiteral("Launched %1 runs in group %2").arg(ids.size()).arg(group_->text()));
    });
    connect(groupBox_, &QComboBox::currentTextChanged, this, &AblationPanel::showGroup);
    connect(csvBtn, &QPushButton::clicked, this, [this] {
        const QString p =
            QFileDialog::getSaveFileName(this, "Export CSV", groupBox_->currentText() + ".csv", "CSV (*.csv)");
        QString err;
        if (!p.isEmpty() && !exportCsv(p, &err)) info_->setText(err);
    });
    connect(texBtn, &QPushButton::clicked, this, [this] {
        const QString p =
            QFileDialog::getSaveFileName(this, "Export LaTeX", groupBox_->currentText() + ".tex", "LaTeX (*.tex)");
        QString err;
        if (!p.isEmpty() && !exportLatex(p, &err)) info_->setText(err);
    });
    connect(manager_, &RunManager::runUpdated, this, [this](qint64 id) {
        auto r = manager_->store()->byId(id);
        if (r && r->group == groupBox_->currentText()) showGroup(r->group);
    });
    connect(manager_->store(), &RunStore::runAdded, this, &AblationPanel::refreshGroups);
    refreshGroups();
}

void AblationPanel::refreshGroups() {
    const QString cur = groupBox_->currentText();
    const QSignalBlocker b(groupBox_);
    groupBox_->clear();
    groupBox_->addItems(manager_->store()->groups());
    const int i = groupBox_->findText(cur);
    groupBox_->setCurrentIndex(i >= 0 ? i : 0);
    showGroup(groupBox_->currentText());
}

AblationAxes AblationPanel::axes() const {
    AblationAxes a;
    for (auto it = lossBoxes_.begin(); it != lossBoxes_.end(); ++it)
        if (it.value()->isChecked()) a.losses << it.key();
    for (const auto& b : QStringList{"none", "in_proj", "in_proj+out_proj"})
        if (binBoxes_[b]->isChecked()) a.binarizations << b;
    auto split = [](const QString& s) {
        QStringList out;
        for (const auto& p : s.split(',', Qt::SkipEmptyParts))
            if (!p.trimmed().isEmpty()) out << p.trimmed();
        return out;
    };
    a.teachers = split(teachers_->text());
    a.sizes = split(sizes_->text());
    for (const auto& s : split(seeds_->text())) a.seeds << s.toInt();
    // keep the paper's loss order
    QStringList ordered;
    for (const auto& l : QStringList{"ce", "soft_ce", "kl", "mix"})
        if (a.losses.contains(l)) ordered << l;
    a.losses = ordered;
    return a;
}

void AblationPanel::setAxes(const AblationAxes& a) {
    for (auto it = lossBoxes_.begin(); it != lossBoxes_.end(); ++it)
        it.value()->setChecked(a.losses.contains(it.key()));
    for (auto it = binBoxes_.begin(); it != binBoxes_.end(); ++it)
        it.value()->setChecked(a.binarizations.contains(it.key()));
    teachers_->setText(a.teachers.join(", "));
    sizes_->setText(a.sizes.join(", "));
    QStringList s;
    for (int v : a.seeds) s << QString::number(v);
    seeds_->setText(s.join(", "));
}

void AblationPanel::setBaseConfig(const QJsonObject& c) {
    base_->setPlainText(QString::fromUtf8(QJsonDocument(c).toJson(QJsonDocument::Indented)));
}
void AblationPanel::setGroupName(const QString& g) {
    group_->setText(g);
}

QVector<AblationRun> AblationPanel::preview() {
    previewList_->clear();
    QJsonObject base;
    QString err;
    if (!parseConfigText(base_->toPlainText(), &base, &err)) {
        info_->setText(err);
        return {};
    }
    const auto runs = expandAblation(group_->text().trimmed(), base, axes());
    for (const auto& r : runs) {
        QStringList ax;
        for (auto it = r.axes.begin(); it != r.axes.end(); ++it)
            ax << it.key() + "=" +
                      (it.value().isDouble() ? QString::number(it.value().toInt()) : it.value().toString());
        previewList_->addItem(r.name + (ax.isEmpty() ? QString() : "   (" + ax.join(", ") + ")"));
    }
    info_->setText(runs.size() == 1 ? QStringLiteral("1 run") : QStringLiteral("%1 runs").arg(runs.size()));
    return runs;
}

QVector<qint64> AblationPanel::launchGroup(QString* error) {
    QVector<qint64> ids;
    const auto runs = preview();
    if (runs.isEmpty()) {
        if (error) *error = info_->text().isEmpty() ? "nothing to launch" : info_->text();
        return ids;
    }
    QStringList problems;
    for (const auto& r : runs) {
        const QStringList e = trainConfigProblems(r.config, true);
        for (const auto& m : e) problems << r.name + ": " + m;
    }
    if (!problems.isEmpty()) {
        if (error) *error = "The group was not launched:\n" + problems.join('\n');
        return ids;
    }
    for (const auto& r : runs) {
        QString err;
        const qint64 id = manager_->launch(r.name, group_->text().trimmed(), "ablation", r.config, &err, r.axes);
        if (id >= 0) ids << id;
        if (!err.isEmpty() && error) *error += r.name + ": " + err + "\n";
    }
    refreshGroups();
    groupBox_->setCurrentText(group_->text().trimmed());
    return ids;
}

void AblationPanel::showGroup(const QString& group) {
    QVector<RunRecord> runs;
    int archived = 0;
    for (const RunRecord& r : manager_->store()->group(group)) {
        if (r.archived)
            ++archived;
        else
            runs << r;
    }
    results_ = ablationResults(runs);
    if (archived)
        info_->setText(QStringLiteral("%1 archived run(s) of group %2 left out of the table (Runs tab: tick Show "
                                      "archived, select them, Unarchive)")
                           .arg(archived)
                           .arg(group));
    table_->clear();
    table_->setColumnCount(results_.header.size());
    table_->setRowCount(results_.rows.size());
    table_->setHorizontalHeaderLabels(results_.header);
    for (int r = 0; r < results_.rows.size(); ++r)
        for (int c = 0; c < results_.rows[r].size(); ++c) {
            // A seed group's "mean ± sd" on two lines keeps its columns as narrow as the others.
            const bool seedGroup = results_.seedGroupRows.contains(r);
            auto* it = new QTableWidgetItem(seedGroup && c > 0 ? QString(results_.rows[r][c]).replace(" ± ", "\n± ")
                                                               : results_.rows[r][c]);
            if (c >= results_.firstNumeric) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if (c == 0) it->setToolTip(results_.rows[r][c]);  // the column may be elided
            if (results_.seedGroupRows.contains(r)) {
                QFont f = it->font();
                f.setBold(true);
                it->setFont(f);
                it->setToolTip((c == 0 ? results_.rows[r][c] + "\n\n" : QString()) +
                               "Runs whose training configs differ only in the seed: mean ± sample standard "
                               "deviation over them. A difference between two rows smaller than this spread is "
                               "within run-to-run noise.");
            }
            table_->setItem(r, c, it);
        }
    table_->resizeColumnsToContents();
    // A seed group's label lists its runs: elided (full text in its tooltip)
    // rather than pushing the results off to the right.
    const int runWidth = 2 * table_->fontMetrics().horizontalAdvance("bi-mamba-seed2");
    if (table_->columnCount() > 0 && table_->columnWidth(0) > runWidth) table_->setColumnWidth(0, runWidth);
    table_->resizeRowsToContents();
}

bool AblationPanel::exportCsv(const QString& path, QString* error) {
    return ReportExporter::writeCsv(results_.header, results_.rows, path, error);
}

bool AblationPanel::exportLatex(const QString& path, QString* error) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) {
        if (error) *error = "cannot write " + path;
        return false;
    }
    f.write(toLatex(results_, "Ablation " + groupBox_->currentText()).toUtf8());
    return f.commit();
}

}  // namespace bimamba::ui
