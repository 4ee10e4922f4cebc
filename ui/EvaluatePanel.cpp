#include "ui/EvaluatePanel.h"

#include "ui/RunPicker.h"

#include "ui/EmptyState.h"
#include "ui/Theme.h"

#include "ui/Ablation.h"
#include "ui/CliJob.h"
#include "ui/JsonFile.h"
#include "ui/ReportExporter.h"
#include "ui/RunManager.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QDir>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QValueAxis>
#include <QVBoxLayout>

#include <cmath>

namespace bimamba::ui {

QVector<EvalRow> parseEvalResults(const QJsonObject& o, QStringList* pplTasks, QStringList* mcTasks) {
    QVector<EvalRow> rows;
    QStringList ppl, mc;
    for (const auto& mv : o.value("models").toArray()) {
        const QJsonObject m = mv.toObject();
        EvalRow r;
        r.label = m.value("label").toString(m.value("path").toString());
        const QJsonObject res = m.value("results").toObject();
        for (auto it = res.begin(); it != res.end(); ++it) {
            const QJsonObject t = it.value().toObject();
            if (t.value("kind").toString() == "ppl") {
                r.values[it.key()] = t.value("ppl").toDouble(NAN);
                if (!ppl.contains(it.key())) ppl << it.key();
            } else {
                const QString h = t.value("headline").toString("acc");
                r.values[it.key()] = 100.0 * t.value(h).toDouble(t.value("acc").toDouble(NAN));
                r.stderrs[it.key()] = 100.0 * t.value(h + "_stderr").toDouble(NAN);
                if (!mc.contains(it.key())) mc << it.key();
            }
        }
        rows << r;
    }
    static const QStringList pplOrder{"wikitext2", "ptb", "c4"};
    const QStringList mcOrder = paperZeroShotTasks();
    auto byOrder = [](const QStringList& order) {
        return [order](const QString& a, const QString& b) {
            const int ia = order.indexOf(a), ib = order.indexOf(b);
            if (ia < 0 && ib < 0) return a < b;
            if (ia < 0) return false;
            if (ib < 0) return true;
            return ia < ib;
        };
    };
    std::sort(ppl.begin(), ppl.end(), byOrder(pplOrder));
    std::sort(mc.begin(), mc.end(), byOrder(mcOrder));
    if (pplTasks) *pplTasks = ppl;
    if (mcTasks) *mcTasks = mc;
    return rows;
}

EvaluatePanel::EvaluatePanel(RunManager* manager, QWidget* parent) : QWidget(parent), manager_(manager) {
    setObjectName("EvaluatePanel");
    QSettings s;
    auto* lay = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    auto* mBox = new QGroupBox("Models (LABEL=checkpoint or run folder)");
    auto* ml = new QVBoxLayout(mBox);
    models_ = new QPlainTextEdit(s.value("eval/models").toString());
    models_->setObjectName("evalModels");
    models_->setPlaceholderText("Mamba-2=runs/teacher\nBi-Mamba=runs/bi-kd");
    models_->setMaximumHeight(110);
    auto* pick = new QPushButton("Add runs…");
    pick->setObjectName("evalFromRuns");
    pick->setToolTip("Choose models from the run table (each run's latest checkpoint)");
    connect(pick, &QPushButton::clicked, this, [this] {
        const QStringList runs = RunPicker::choose(manager_, "Evaluate these runs.", this);
        if (!runs.isEmpty()) models_->setPlainText(RunPicker::merge(models_->toPlainText(), runs, "\n"));
    });
    auto* mrow = new QHBoxLayout;
    mrow->addWidget(models_, 1);
    mrow->addWidget(pick, 0, Qt::AlignTop);
    ml->addLayout(mrow);
    top->addWidget(mBox, 2);
    auto* tBox = new QGroupBox("Tasks (NAME=FILE, one per line)");
    tBox->setToolTip(
        "NAME is one of wikitext2, ptb, c4 (perplexity), boolq, piqa, hellaswag, winogrande, arc_easy, "
        "arc_challenge, openbookqa (zero-shot), or text:LABEL for any text file");
    auto* tl = new QVBoxLayout(tBox);
    tasks_ = new QPlainTextEdit(s.value("eval/tasks").toString());
    tasks_->setObjectName("evalTasks");
    tasks_->setPlaceholderText("wikitext2=data/wikitext-2/valid.txt\narc_easy=data/ARC-Easy/test.jsonl");
    tasks_->setMaximumHeight(110);
    tl->addWidget(tasks_);
    top->addWidget(tBox, 3);
    auto* opts = new QFormLayout;
    limit_ = new QSpinBox;
    limit_->setObjectName("evalLimit");
    limit_->setRange(0, 1000000);
    limit_->setSpecialValueText("all");
    limit_->setValue(s.value("eval/limit", 0).toInt());
    window_ = new QSpinBox;
    window_->setObjectName("pplWindow");
    window_->setRange(16, 65536);
    window_->setValue(s.value("eval/window", 2048).toInt());
    opts->addRow("Limit (docs)", limit_);
    opts->addRow("PPL window", window_);
    runBtn_ = new QPushButton("Evaluate");
    runBtn_->setObjectName("evaluate");
    runBtn_->setShortcut(QKeySequence("Ctrl+E"));
    runBtn_->setToolTip("Run bimamba eval in the background (Ctrl+E)");
    cancelBtn_ = new QPushButton("Cancel");
    cancelBtn_->setEnabled(false);
    auto* openBtn = new QPushButton("Open results…");
    auto* csvBtn = new QPushButton("Export CSV…");
    opts->addRow(runBtn_);
    opts->addRow(cancelBtn_);
    opts->addRow(openBtn);
    opts->addRow(csvBtn);
    top->addLayout(opts);
    lay->addLayout(top);
    progress_ = new QProgressBar;
    progress_->setObjectName("evalProgress");
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setFormat("idle");
    lay->addWidget(progress_);
    table_ = new QTableWidget;
    table_->setObjectName("evalTable");
    table_->verticalHeader()->hide();
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setAlternatingRowColors(true);
    auto* chart = new QChart;
    chart->setTitle("Zero-shot accuracy per task (%)");
    // The models' names in a column beside the bars: a row under them cuts
    // the names of a dozen models to "bi-…".
    chart->legend()->setAlignment(Qt::AlignRight);
    chart->legend()->setShowToolTips(true);
    chart_ = new QChartView(chart);
    chart_->setRenderHint(QPainter::Antialiasing);
    chart_->setObjectName("evalChart");
    chartBox_ = new EmptyState(chart_,
                               "Zero-shot accuracy per task appears here: evaluate models on multiple-choice "
                               "tasks (boolq, piqa, hellaswag, …) with Evaluate, or open a results file.");
    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    log_->setMaximumBlockCount(3000);
    auto* split = new QSplitter(Qt::Vertical);
    auto* upper = new QSplitter;
    upper->addWidget(table_);
    upper->addWidget(chartBox_);
    upper->setStretchFactor(0, 1);  // the chart needs room for seven task names and a column of models
    upper->setStretchFactor(1, 1);
    upper->setSizes({700, 700});
    split->addWidget(upper);
    split->addWidget(log_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    lay->addWidget(split, 1);
    info_ = new QLabel(
        "Results table in the layout of the paper's Table 3: perplexity (lower is better), then zero-shot "
        "accuracy (acc_norm for HellaSwag, ARC-c, OBQA; acc otherwise) and their average.");
    info_->setObjectName("evalInfo");
    info_->setWordWrap(true);
    lay->addWidget(info_);
    connect(runBtn_, &QPushButton::clicked, this, &EvaluatePanel::start);
    connect(cancelBtn_, &QPushButton::clicked, this, &EvaluatePanel::cancel);
    connect(openBtn, &QPushButton::clicked, this, [this] {
        const QString p =
            QFileDialog::getOpenFileName(this, "Open eval results", manager_->workspace(), "JSON (*.json)");
        if (!p.isEmpty()) loadResults(p);
    });
    connect(csvBtn, &QPushButton::clicked, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export CSV", "eval.csv", "CSV (*.csv)");
        QString err;
        QStringList header;
        for (int c = 0; c < table_->columnCount(); ++c) header << table_->horizontalHeaderItem(c)->text();
        QVector<QStringList> rows;
        for (int r = 0; r < table_->rowCount(); ++r) {
            QStringList row;
            for (int c = 0; c < table_->columnCount(); ++c)
                row << (table_->item(r, c) ? table_->item(r, c)->text() : QString());
            rows << row;
        }
        if (!p.isEmpty() && !ReportExporter::writeCsv(header, rows, p, &err)) info_->setText(err);
    });
    // The panel's own last results, else every results file a study or a
    // script left in eval/ (those whose models carry "results"), the largest
    // first so that its rows set the order.
    const QString last = QDir(manager_->workspace()).filePath("eval/eval_results.json");
    if (QFileInfo::exists(last)) {
        loadResults(last);
    } else {
        QVector<QPair<int, QString>> found;
        const auto files =
            QDir(QDir(manager_->workspace()).filePath("eval")).entryInfoList({"*.json"}, QDir::Files, QDir::Name);
        for (const auto& fi : files) {
            QFile f(fi.absoluteFilePath());
            if (!f.open(QIODevice::ReadOnly)) continue;
            const QJsonArray models = QJsonDocument::fromJson(f.readAll()).object().value("models").toArray();
            if (!models.isEmpty() && models.first().toObject().contains("results"))
                found.push_back({int(models.size()), fi.absoluteFilePath()});
        }
        std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        QStringList paths;
        for (const auto& f : found) paths << f.second;
        if (!paths.isEmpty()) loadResults(paths);
    }
}

void EvaluatePanel::setModels(const QStringList& m) {
    models_->setPlainText(m.join('\n'));
}
void EvaluatePanel::setTasks(const QStringList& t) {
    tasks_->setPlainText(t.join('\n'));
}
bool EvaluatePanel::isRunning() const {
    return job_ && job_->isRunning();
}

void EvaluatePanel::cancel() {
    if (job_) job_->cancel();
}

void EvaluatePanel::start() {
    if (isRunning()) return;
    QSettings s;
    s.setValue("eval/models", models_->toPlainText());
    s.setValue("eval/tasks", tasks_->toPlainText());
    s.setValue("eval/limit", limit_->value());
    s.setValue("eval/window", window_->value());
    auto lines = [](const QString& t) {
        QStringList out;
        for (const auto& l : t.split('\n', Qt::SkipEmptyParts))
            if (!l.trimmed().isEmpty()) out << l.trimmed();
        return out;
    };
    const QStringList models = lines(models_->toPlainText()), tasks = lines(tasks_->toPlainText());
    if (models.isEmpty() || tasks.isEmpty()) {
        lastError_ = "Pick at least one model and one task.";
        info_->setText("<span style='color:#c62828'>" + lastError_ + "</span>");
        emit finished(false);
        return;
    }
    outPath_ = QDir(manager_->workspace()).filePath("eval/eval_results.json");
    QDir().mkpath(QFileInfo(outPath_).absolutePath());
    QStringList args{"eval",    "--model",       models.join(','),
                     "--tasks", tasks.join(','), "--out",
                     outPath_,  "--window",      QString::number(window_->value())};
    if (limit_->value() > 0) args << "--limit" << QString::number(limit_->value());
    delete job_;
    job_ = new CliJob(manager_->cliPath(), args, this);
    log_->clear();
    log_->appendPlainText("$ " + job_->commandLine());
    progress_->setValue(0);
    progress_->setFormat("running… %p%");
    runBtn_->setEnabled(false);
    cancelBtn_->setEnabled(true);
    connect(job_, &CliJob::stdoutData, log_, [this](const QString& t) {
        log_->moveCursor(QTextCursor::End);
        log_->insertPlainText(t);
    });
    connect(job_, &CliJob::stderrData, log_, [this](const QString& t) {
        log_->moveCursor(QTextCursor::End);
        log_->insertPlainText(t);
    });
    connect(job_, &CliJob::progress, this, [this](double f, double left) {
        progress_->setValue(int(1000 * f));
        progress_->setFormat(left >= 0 ? QStringLiteral("%p% — about %1 s left").arg(int(left))
                                       : QStringLiteral("%p%"));
    });
    connect(job_, &CliJob::finished, this, [this](bool ok, const QString& msg) {
        runBtn_->setEnabled(true);
        cancelBtn_->setEnabled(false);
        if (!ok) {
            lastError_ = msg;
            progress_->setFormat("failed");
            info_->setText("<span style='color:#c62828'>" + msg.toHtmlEscaped().replace('\n', "<br>") + "</span>");
            emit finished(false);
            return;
        }
        progress_->setValue(1000);
        progress_->setFormat("done");
        QString err;
        const bool loaded = loadResults(outPath_, &err);
        if (!loaded) lastError_ = err;
        emit finished(loaded);
    });
    job_->start();
}

bool EvaluatePanel::loadResults(const QString& path, QString* error) {
    return loadResults(QStringList{path}, error);
}

bool EvaluatePanel::loadResults(const QStringList& paths, QString* error) {
    QString err;
    QJsonArray models;  // merged by label
    QHash<QString, int> rowOf;
    for (const QString& path : paths) {
        const QJsonObject file = readJsonFile(path, &err);
        if (file.isEmpty()) {
            info_->setText("<span style='color:#c62828'>" + err.toHtmlEscaped() + "</span>");
            if (error) *error = err;
            return false;
        }
        for (const auto& v : file.value("models").toArray()) {
            const QJsonObject m = v.toObject();
            const QString label = m.value("label").toString();
            if (!rowOf.contains(label)) {
                rowOf[label] = models.size();
                models.append(m);
                continue;
            }
            QJsonObject merged = models[rowOf[label]].toObject();
            QJsonObject results = merged.value("results").toObject();
            const QJsonObject more = m.value("results").toObject();
            for (auto it = more.begin(); it != more.end(); ++it) results.insert(it.key(), it.value());
            merged.insert("results", results);
            models[rowOf[label]] = merged;
        }
    }
    const QJsonObject o{{"models", models}};
    // What was evaluated, shown in the input boxes (not the placeholders).
    QStringList modelLines, taskLines;
    for (const auto& v : models) {
        const QJsonObject m = v.toObject();
        if (!m.value("path").toString().isEmpty())
            modelLines << m.value("label").toString() + "=" + m.value("path").toString();
        const QJsonObject res = m.value("results").toObject();
        for (auto it = res.begin(); it != res.end(); ++it) {
            const QString file = it.value().toObject().value("file").toString();
            const QString line = file.isEmpty() ? it.key() : it.key() + "=" + file;
            if (!taskLines.contains(line)) taskLines << line;
        }
    }
    if (!modelLines.isEmpty()) models_->setPlainText(modelLines.join('\n'));
    if (!taskLines.isEmpty()) tasks_->setPlainText(taskLines.join('\n'));
    const QString path = paths.size() == 1 ? paths.first() : QStringLiteral("%1 files").arg(paths.size());
    QStringList ppl, mc;
    const auto rows = parseEvalResults(o, &ppl, &mc);
    QStringList header{"Model"};
    for (const auto& t : ppl) header << taskLabel(t) + " ↓";
    for (const auto& t : mc) header << taskLabel(t) + " ↑";
    if (!mc.isEmpty()) header << "Avg ↑";
    table_->clear();
    table_->setColumnCount(header.size());
    table_->setHorizontalHeaderLabels(header);
    table_->setRowCount(rows.size());
    for (int r = 0; r < rows.size(); ++r) {
        int c = 0;
        table_->setItem(r, c++, new QTableWidgetItem(rows[r].label));
        auto cell = [&](double v, int prec, double se = NAN) {
            QString text =
                std::isfinite(v) ? (v >= 1e4 ? QString::number(v, 'e', 1) : QString::number(v, 'f', prec)) : "–";
            if (std::isfinite(v) && std::isfinite(se)) text += QStringLiteral(" ± ") + QString::number(se, 'f', prec);
            auto* it = new QTableWidgetItem(text);
            it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            table_->setItem(r, c++, it);
        };
        for (const auto& t : ppl) cell(rows[r].values.value(t, NAN), 2);
        double sum = 0;
        int n = 0;
        for (const auto& t : mc) {
            const double v = rows[r].values.value(t, NAN);
            cell(v, 1, rows[r].stderrs.value(t, NAN));
            if (std::isfinite(v)) {
                sum += v;
                ++n;
            }
        }
        if (!mc.isEmpty()) cell(n ? sum / n : NAN, 1);
    }
    table_->resizeColumnsToContents();
    fillChart(rows, mc);
    info_->setText(QStringLiteral("Loaded %1 (%2 models)").arg(path).arg(rows.size()));
    return true;
}

void EvaluatePanel::fillChart(const QVector<EvalRow>& rows, const QStringList& mc) {
    QChart* chart = chart_->chart();
    chart->removeAllSeries();
    for (auto* a : chart->axes()) {
        chart->removeAxis(a);
        delete a;
    }
    chartBox_->setEmpty(mc.isEmpty() || rows.isEmpty());
    if (mc.isEmpty()) return;
    auto* series = new QBarSeries;
    for (const auto& r : rows) {
        auto* set = new QBarSet(r.label);
        for (const auto& t : mc) set->append(std::isfinite(r.values.value(t, NAN)) ? r.values.value(t) : 0.0);
        series->append(set);
    }
    chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    QStringList cats;
    for (const auto& t : mc) cats << taskLabel(t);
    x->append(cats);
    // Room for every task name under its bars (Qt Charts would cut them to
    // "Bo…"), beside the legend's column of model names.
    const QFontMetrics fm(x->labelsFont());
    int widest = 0, legend = 0;
    for (const auto& c : cats) widest = std::max(widest, fm.horizontalAdvance(c));
    for (const auto& r : rows) legend = std::max(legend, fm.horizontalAdvance(r.label));
    chartBox_->setMinimumWidth(std::min(900, int(cats.size()) * (widest + 18) + legend + 140));
    auto* y = new QValueAxis;
    y->setRange(0, 100);
    y->setTitleText("accuracy (%)");
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    Theme::styleChart(chart);
}

}  // namespace bimamba::ui
