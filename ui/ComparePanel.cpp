#include "ui/ComparePanel.h"

#include "ui/RunPicker.h"

#include "ui/CliEvents.h"
#include "ui/CliJob.h"
#include "ui/ReportExporter.h"
#include "ui/JsonFile.h"
#include "ui/RunManager.h"

#include <QDir>
#include <QDoubleSpinBox>
#include <QJsonArray>
#include <QJsonObject>
#include <QFileInfo>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include <memory>

namespace bimamba::ui {

ComparePanel::ComparePanel(RunManager* manager, QWidget* parent) : QWidget(parent), manager_(manager) {
    setObjectName("ComparePanel");
    auto* lay = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    auto* promptBox = new QGroupBox("Prompt");
    auto* pl = new QVBoxLayout(promptBox);
    prompt_ = new QPlainTextEdit("Who is the world's most famous painter?\nAnswer:");
    prompt_->setObjectName("prompt");
    prompt_->setMaximumHeight(90);
    pl->addWidget(prompt_);
    top->addWidget(promptBox, 2);
    auto* modelBox = new QGroupBox("Models (LABEL=checkpoint or run folder, one per line)");
    auto* ml = new QVBoxLayout(modelBox);
    models_ = new QPlainTextEdit(QSettings().value("compare/models").toString());
    models_->setObjectName("models");
    models_->setPlaceholderText("Mamba-2=runs/teacher\nBi-Mamba=runs/bi-kd\nGPTQ-2bit=quant/gptq2");
    models_->setMaximumHeight(90);
    auto* pick = new QPushButton("Add runs…");
    pick->setObjectName("compareFromRuns");
    pick->setToolTip("Choose models from the run table (each run's latest checkpoint)");
    connect(pick, &QPushButton::clicked, this, [this] {
        const QStringList runs = RunPicker::choose(manager_, "Generate with these runs side by side.", this);
        if (!runs.isEmpty()) models_->setPlainText(RunPicker::merge(models_->toPlainText(), runs, "\n"));
    });
    auto* mrow = new QHBoxLayout;
    mrow->addWidget(models_, 1);
    mrow->addWidget(pick, 0, Qt::AlignTop);
    ml->addLayout(mrow);
    top->addWidget(modelBox, 2);
    auto* opts = new QFormLayout;
    maxTokens_ = new QSpinBox;
    maxTokens_->setRange(1, 4096);
    maxTokens_->setValue(64);
    temperature_ = new QDoubleSpinBox;
    temperature_->setRange(0, 5);
    temperature_->setSingleStep(0.1);
    temperature_->setValue(0);
    opts->addRow("Max tokens", maxTokens_);
    opts->addRow("Temperature", temperature_);
    auto* go = new QPushButton("Generate");
    go->setObjectName("generate");
    go->setShortcut(QKeySequence("Ctrl+Return"));
    go->setToolTip("Generate with every model (Ctrl+Enter)");
    auto* save = new QPushButton("Save CSV…");
    opts->addRow(go);
    opts->addRow(save);
    top->addLayout(opts);
    lay->addLayout(top);
    columnsHost_ = new QWidget;
    columnsLayout_ = new QHBoxLayout(columnsHost_);
    auto* scroll = new QScrollArea;
    scroll->setWidgetResizable(true);
    scroll->setWidget(columnsHost_);
    lay->addWidget(scroll, 1);
    hint_ = new QLabel(
        "Each model runs as its own `bimamba generate --stream` process; text appears token by token as it is decoded. "
        "Greedy decoding at temperature 0, as in the paper's Figures 11–13.");
    hint_->setWordWrap(true);
    lay->addWidget(hint_);
    connect(go, &QPushButton::clicked, this, &ComparePanel::generate);
    connect(save, &QPushButton::clicked, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Save generations", "generations.csv", "CSV (*.csv)");
        QString err;
        if (!p.isEmpty()) exportCsv(p, &err);
    });
}

void ComparePanel::setModels(const QStringList& m) {
    models_->setPlainText(m.join('\n'));
}
void ComparePanel::setPrompt(const QString& p) {
    prompt_->setPlainText(p);
}
void ComparePanel::setMaxTokens(int n) {
    maxTokens_->setValue(n);
}

bool ComparePanel::isRunning() const {
    for (const auto& c : columns_)
        if (c.job && c.job->isRunning()) return true;
    return false;
}

QString ComparePanel::columnText(int i) const {
    return i >= 0 && i < columns_.size() ? columns_[i].text->toPlainText() : QString();
}
QString ComparePanel::columnStatus(int i) const {
    return i >= 0 && i < columns_.size() ? columns_[i].status->text() : QString();
}

void ComparePanel::clearColumns() {
    for (auto& c : columns_) {
        delete c.job;
        c.text->parentWidget()->deleteLater();
    }
    columns_.clear();
    for (auto* l : columnsHost_->findChildren<QLabel*>("compareEmpty", Qt::FindDirectChildrenOnly)) l->deleteLater();
}

QPlainTextEdit* ComparePanel::addColumn(const QString& label, QLabel** status) {
    auto* box = new QGroupBox(label);
    auto* bl = new QVBoxLayout(box);
    auto* text = new QPlainTextEdit;
    text->setReadOnly(true);
    text->setMinimumWidth(260);
    *status = new QLabel;
    (*status)->setWordWrap(true);
    bl->addWidget(text, 1);
    bl->addWidget(*status);
    columnsLayout_->addWidget(box);
    return text;
}

bool ComparePanel::loadGenerations(const QString& path, QString* error) {
    QString err;
    const QJsonObject o = readJsonFile(path, &err);
    const QJsonArray gens = o.value("generations").toArray();
    if (gens.isEmpty()) {
        if (error) *error = err.isEmpty() ? path + ": no \"generations\" in the file" : err;
        return false;
    }
    clearColumns();
    QStringList labels, prompts, modelLines;
    QHash<QString, QString> text, stats;
    for (const auto& g : gens) {
        const QString prompt = g.toObject().value("prompt").toString();
        prompts << prompt;
        for (const auto& v : g.toObject().value("outputs").toArray()) {
            const QJsonObject out = v.toObject();
            const QString label = out.value("label").toString();
            if (!labels.contains(label)) {
                labels << label;
                modelLines << label + "=" + out.value("model").toString();
            }
            text[label] += "▸ " + prompt.simplified() + "\n" + out.value("text").toString().trimmed() + "\n\n";
            if (stats[label].isEmpty())
                stats[label] =
                    QStringLiteral("%1 tok/s (first prompt)").arg(out.value("tok_per_s").toDouble(), 0, 'f', 1);
        }
    }
    for (const QString& label : labels) {
        Column c;
        c.label = label;
        c.job = nullptr;
        c.text = addColumn(label, &c.status);
        c.text->setPlainText(text[label].trimmed());
        c.status->setText(stats[label]);
        columns_.push_back(c);
    }
    prompt_->setPlainText(prompts.join("\n\n"));
    models_->setPlainText(modelLines.join('\n'));
    hint_->setText(QStringLiteral("Generations read from %1 (%2 prompts × %3 models), not run here. "
                                  "Generate runs the models listed above again.")
                       .arg(QDir::toNativeSeparators(path))
                       .arg(prompts.size())
                       .arg(labels.size()));
    return true;
}

void ComparePanel::generate() {
    clearColumns();
    QSettings().setValue("compare/models", models_->toPlainText());
    const QStringList lines = models_->toPlainText().split('\n', Qt::SkipEmptyParts);
    for (const QString& raw : lines) {
        const QString line = raw.trimmed();
        if (line.isEmpty()) continue;
        Column c;
        c.label = line.contains('=') ? line.section('=', 0, 0) : QFileInfo(line).fileName();
        c.path = line.contains('=') ? line.section('=', 1) : line;
        c.text = addColumn(c.label, &c.status);
        c.status->setText("starting…");
        QStringList args{"generate",
                         "--models",
                         c.label + "=" + c.path,
                         "--prompt",
                         prompt_->toPlainText(),
                         "--max-tokens",
                         QString::number(maxTokens_->value())};
        if (temperature_->value() > 0) args << "--temperature" << QString::number(temperature_->value());
        args << "--stream"
             << "--json";
        c.job = new CliJob(manager_->cliPath(), args, this);
        auto* text = c.text;
        auto* status = c.status;
        // `generate --stream --json` (docs/cli-events.md): "token" events carry
        // the text as decoded, a "stats" event the figures of the generation.
        auto reader = std::make_shared<JsonLineReader>();
        auto stats = std::make_shared<QString>();
        connect(c.job, &CliJob::stdoutData, text, [text, status, reader, stats](const QString& s) {
            for (const QJsonObject& e : reader->feed(s)) {
                const QString ev = eventName(e);
                if (ev == QLatin1String("token")) {
                    text->moveCursor(QTextCursor::End);
                    text->insertPlainText(e.value("text").toString());
                    text->ensureCursorVisible();
                    if (status->text() != QLatin1String("streaming…")) status->setText("streaming…");
                } else if (ev == QLatin1String("stats")) {
                    *stats = generateStatsText(e);
                }
            }
        });
        connect(c.job, &CliJob::finished, this, [this, status, stats](bool ok, const QString& msg) {
            const QString stats_text = *stats;
            status->setText(
                ok ? (stats_text.isEmpty() ? QStringLiteral("done") : QStringLiteral("done — ") + stats_text) : msg);
            status->setToolTip(ok ? QStringLiteral("Energy: NVML = GPU board energy, RAPL = CPU package energy "
                                                   "(measured); estimate = CPU-seconds × 5 W per busy core.")
                                  : QString());
            status->setStyleSheet(ok ? "color:#2e7d32" : "color:#c62828");
            if (!isRunning()) emit allFinished();
        });
        columns_.push_back(c);
        c.job->start();
    }
    if (columns_.isEmpty()) {
        auto* l = new QLabel("Add at least one model (LABEL=PATH).");
        l->setObjectName("compareEmpty");
        columnsLayout_->addWidget(l);
    }
}

QString ComparePanel::generateStatsText(const QJsonObject& e) {
    if (eventName(e) != QLatin1String("stats")) return {};
    QString s = QStringLiteral("%1 tokens · %2 tok/s")
                    .arg(qint64(e.value("tokens").toDouble()))
                    .arg(e.value("tok_per_s").toDouble(), 0, 'f', 1);
    if (e.value("joules_per_token").isDouble())
        s += QStringLiteral(" · %1 J/token (%2)")
                 .arg(QString::number(e.value("joules_per_token").toDouble(), 'g', 4),
                      e.value("energy_source").toString());
    const QString stop = e.value("stop").toString();
    if (!stop.isEmpty() && stop != QLatin1String("max_tokens")) s += QStringLiteral(" · stop: %1").arg(stop);
    return s;
}

QStringList ComparePanel::exportCsv(const QString& path, QString* error) {
    QVector<QStringList> rows;
    for (const auto& c : columns_) rows << QStringList{prompt_->toPlainText(), c.label, c.path, c.text->toPlainText()};
    if (ReportExporter::writeCsv({"prompt", "label", "model", "output"}, rows, path, error)) return {path};
    return {};
}

}  // namespace bimamba::ui
