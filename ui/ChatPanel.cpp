#include "ui/ChatPanel.h"

#include "ui/EmptyState.h"
#include "ui/Theme.h"

#include "core/base/Process.h"
#include "ui/CliJob.h"
#include "ui/RunManager.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <algorithm>

#include <QComboBox>
#include <QSpinBox>
#include <QSplitter>
#include <QTimer>
#include <QValueAxis>
#include <QVBoxLayout>

namespace bimamba::ui {

using base::rss_mib;

ChatStats chatStatsFromEvent(const QJsonObject& e, ChatStats s) {
    auto num = [&e](const char* key, double& into) {
        if (e.value(key).isDouble()) into = e.value(key).toDouble();
    };
    if (eventName(e) == QLatin1String("ready")) {
        num("weights_mb", s.weightsMb);
        return s;
    }
    if (eventName(e) != QLatin1String("stats")) return s;
    num("tok_per_s", s.tokPerS);
    num("rss_mb", s.memMb);
    num("joules_per_token", s.joulesPerToken);
    if (e.value("tokens").isDouble()) s.tokens = qint64(e.value("tokens").toDouble());
    if (e.contains("energy_source")) s.energySource = e.value("energy_source").toString();
    return s;
}

QString ChatStats::energyText() const {
    if (joulesPerToken < 0) return QStringLiteral("–");
    QString t = QString::number(joulesPerToken, 'g', 3) + " J/token";
    if (energySource.isEmpty()) return t;
    return t + " (" + energySource + (energyMeasured() ? ", measured)" : ")");
}

ChatPanel::ChatPanel(RunManager* manager, QWidget* parent)
    : QWidget(parent), manager_(manager), timer_(new QTimer(this)) {
    setObjectName("ChatPanel");
    QSettings s;
    auto* lay = new QVBoxLayout(this);
    auto* top = new QFormLayout;
    sides_[0].title = "Bi-Mamba (bit-packed CPU engine)";
    sides_[1].title = "Baseline (fp16)";
    for (int i = 0; i < 2; ++i) {
        sides_[i].model = new QLineEdit(s.value(i == 0 ? "chat/model" : "chat/baseline").toString());
        sides_[i].model->setPlaceholderText(i == 0 ? "bit-packed deployment file (bimamba export)"
                                                   : "fp16 deployment file of the full-precision model (optional)");
    }
    threads_ = new QSpinBox;
    threads_->setRange(0, 256);
    threads_->setSpecialValueText("auto");
    threads_->setValue(s.value("chat/threads", 0).toInt());
    top->addRow("Bi-Mamba model", sides_[0].model);
    top->addRow("Baseline model", sides_[1].model);
    format_ = new QComboBox;
    format_->setObjectName("chatFormat");
    format_->addItem("Chat (User: … / Assistant:)", "chat");
    format_->addItem("Plain text, continued", "text");
    format_->setToolTip(
        "How a prompt reaches the model. A base language model (the paper's, the quickstart's) was never taught "
        "the User/Assistant format and often ends a chat reply at once: plain text lets it continue your words.");
    format_->setCurrentIndex(std::max(0, format_->findData(s.value("chat/format", "chat").toString())));
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel("Threads"));
    row->addWidget(threads_);
    row->addWidget(new QLabel("Prompt format"));
    row->addWidget(format_);
    auto* startBtn = new QPushButton("Start engines");
    startBtn->setObjectName("startChat");
    auto* stopBtn = new QPushButton("Stop");
    row->addWidget(startBtn);
    row->addWidget(stopBtn);
    row->addStretch();
    top->addRow(row);
    lay->addLayout(top);
    auto* split = new QSplitter;
    for (int i = 0; i < 2; ++i) {
        auto* box = new QGroupBox(sides_[i].title);
        auto* bl = new QVBoxLayout(box);
        sides_[i].text = new QPlainTextEdit;
        sides_[i].text->setReadOnly(true);
        sides_[i].statLabel = new QLabel("tokens/s –   memory –   energy –");
        sides_[i].statLabel->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
        bl->addWidget(sides_[i].text, 1);
        bl->addWidget(sides_[i].statLabel);
        split->addWidget(box);
    }
    auto* chart = new QChart;
    chart->setTitle("Decode tokens / s");
    chart->legend()->setAlignment(Qt::AlignBottom);
    chart->legend()->setShowToolTips(true);
    chart_ = new QChartView(chart);
    chart_->setObjectName("chatChart");
    chart_->setRenderHint(QPainter::Antialiasing);
    chartBox_ = new EmptyState(chart_,
                               "Decode speed of both engines appears here: choose the deployment files "
                               "(bimamba export), press Start engines and send a prompt.");
    chartBox_->setMinimumWidth(260);
    split->addWidget(chartBox_);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 2);
    split->setStretchFactor(2, 1);
    lay->addWidget(split, 1);
    auto* inRow = new QHBoxLayout;
    input_ = new QLineEdit;
    input_->setObjectName("chatInput");
    input_->setPlaceholderText("Type a prompt and press Enter: it goes to both engines");
    auto* sendBtn = new QPushButton("Send");
    inRow->addWidget(input_, 1);
    inRow->addWidget(sendBtn);
    lay->addLayout(inRow);
    info_ = new QLabel(
        "The paper's Table 8: Bi-Mamba-2.7B runs 3.16× faster than fp16 Mamba-2-2.7B on CPU with 5× less memory.");
    info_->setObjectName("chatInfo");
    info_->setWordWrap(true);
    lay->addWidget(info_);
    connect(startBtn, &QPushButton::clicked, this, [this] { startEngines(); });
    connect(stopBtn, &QPushButton::clicked, this, &ChatPanel::stopEngines);
    auto doSend = [this] {
        const QString p = input_->text();
        if (p.trimmed().isEmpty()) return;
        input_->clear();
        send(p);
    };
    connect(input_, &QLineEdit::returnPressed, this, doSend);
    connect(sendBtn, &QPushButton::clicked, this, doSend);
    connect(timer_, &QTimer::timeout, this, &ChatPanel::updateStats);
    timer_->start(1000);
    updateChart();
}

void ChatPanel::setModels(const QString& a, const QString& b) {
    sides_[0].model->setText(a);
    sides_[1].model->setText(b);
}

bool ChatPanel::startEngines(QString* error) {
    stopEngines();
    QSettings s;
    s.setValue("chat/model", sides_[0].model->text());
    s.setValue("chat/baseline", sides_[1].model->text());
    s.setValue("chat/threads", threads_->value());
    s.setValue("chat/format", format_->currentData().toString());
    if (sides_[0].model->text().trimmed().isEmpty()) {
        lastError_ = "Choose a Bi-Mamba model first.";
        info_->setText("<span style='color:#c62828'>" + lastError_ + "</span>");
        if (error) *error = lastError_;
        return false;
    }
    for (int i = 0; i < 2; ++i) {
        Side& sd = sides_[i];
        const QString model = sd.model->text().trimmed();
        if (model.isEmpty()) continue;
        QStringList args{"chat", "--model", model, "--json"};
        if (threads_->value() > 0) args << "--threads" << QString::number(threads_->value());
        if (format_->currentData().toString() == "text")
            args << "--template"
                 << "text";
        sd.job = new CliJob(manager_->cliPath(), args, this);
        sd.stats = {};
        sd.text->clear();
        auto* text = sd.text;
        sd.events = {};
        // `chat --json`: the reply arrives as "token" events, the figures as a
        // "stats" event after it (docs/cli-events.md); stderr carries errors only.
        connect(sd.job, &CliJob::stdoutData, this, [this, i, text](const QString& t) {
            for (const QJsonObject& e : sides_[i].events.feed(t)) {
                const QString ev = eventName(e);
                if (ev == QLatin1String("token")) {
                    const QString piece = e.value("text").toString();
                    text->moveCursor(QTextCursor::End);
                    text->insertPlainText(piece);
                    sides_[i].chars += piece.size();
                } else if (ev == QLatin1String("ready")) {
                    sides_[i].stats = chatStatsFromEvent(e, sides_[i].stats);
                } else if (ev == QLatin1String("stats")) {
                    sides_[i].stats = chatStatsFromEvent(e, sides_[i].stats);
                    text->moveCursor(QTextCursor::End);
                    if (e.value("tokens").toInt(-1) == 0 && e.value("stop").toString() == "eos")
                        text->insertPlainText(
                            format_->currentData().toString() == "chat"
                                ? " [the model ended its reply at once: a base model may not follow the chat "
                                  "format; try Prompt format: Plain text]"
                                : " [the model ended at once]");
                    text->insertPlainText("\n");
                }
            }
        });
        connect(sd.job, &CliJob::finished, this, [this, i](bool ok, const QString& msg) {
            if (!ok) {
                lastError_ = msg;
                sides_[i].text->appendPlainText("\n[engine stopped] " + msg);
                info_->setText("<span style='color:#c62828'>" + msg.toHtmlEscaped().replace('\n', "<br>") + "</span>");
            }
        });
        sd.job->start();
    }
    return true;
}

void ChatPanel::stopEngines() {
    for (auto& sd : sides_) {
        if (sd.job) {
            // Stopped on purpose: its end is no error, and its late output or
            // exit must not reach the transcript of engines started after it.
            sd.job->disconnect(this);
            sd.job->cancel();
            sd.job->deleteLater();
            sd.job = nullptr;
        }
    }
}

void ChatPanel::send(const QString& prompt) {
    for (auto& sd : sides_) {
        if (!sd.job || !sd.job->isRunning()) continue;
        sd.text->appendPlainText("\n> " + prompt + "\n");
        sd.text->moveCursor(QTextCursor::End);
        if (format_->currentData().toString() == "chat")
            sd.text->insertPlainText("Assistant:");  // as the text mode of `bimamba chat` labels a reply
        else
            sd.text->insertPlainText(prompt);  // the model continues the prompt's text
        sd.since.start();
        sd.job->write(prompt.toUtf8() + "\n");
    }
    if (!sides_[0].job && !sides_[1].job) info_->setText("Start the engines first.");
}

void ChatPanel::setPlainText(bool plain) {
    format_->setCurrentIndex(format_->findData(plain ? "text" : "chat"));
}

QString ChatPanel::statsText(int side) const {
    return sides_[side].statLabel->text();
}

QString ChatPanel::transcript(int side) const {
    return sides_[side].text->toPlainText();
}

void ChatPanel::updateStats() {
    for (auto& sd : sides_) {
        if (sd.job && sd.job->isRunning()) {
            const double rss = rss_mib(pid_t(sd.job->process()->processId()));
            if (rss > 0 && sd.stats.memMb < 0)
                sd.stats.memMb = rss;
            else if (rss > 0)
                sd.stats.memMb = std::max(sd.stats.memMb, rss);
        }
        auto fmt = [](double v, const char* unit, int prec) {
            return v >= 0 ? QString::number(v, 'f', prec) + unit : QStringLiteral("–");
        };
        sd.statLabel->setText(
            QStringLiteral("tokens/s %1   memory %2   energy %3")
                .arg(fmt(sd.stats.tokPerS, "", 1),
                     fmt(sd.stats.memMb, " MB", 0) +
                         (sd.stats.weightsMb >= 0
                              ? " (weights " +
                                    QString::number(sd.stats.weightsMb, 'f', sd.stats.weightsMb < 10 ? 1 : 0) + " MB)"
                              : QString()),
                     sd.stats.energyText()));
        sd.statLabel->setToolTip(
            sd.stats.energyMeasured()
                ? QStringLiteral("Energy per token measured by a hardware counter (%1).").arg(sd.stats.energySource)
            : sd.stats.joulesPerToken >= 0
                ? QStringLiteral("Energy per token is an ESTIMATE (%1): no readable energy counter, "
                                 "CPU-seconds × an assumed power per busy core.")
                      .arg(sd.stats.energySource.isEmpty() ? "unlabelled" : sd.stats.energySource)
                : QStringLiteral("The engine has not reported energy yet."));
    }
    updateChart();
}

void ChatPanel::updateChart() {
    QChart* c = chart_->chart();
    c->removeAllSeries();
    for (auto* a : c->axes()) {
        c->removeAxis(a);
        delete a;
    }
    const bool measured = sides_[0].stats.tokPerS > 0 || sides_[1].stats.tokPerS > 0;
    chartBox_->setEmpty(!measured);
    if (!measured) return;
    // One bar per engine, each its own colour and legend entry (the category
    // axis would cut the names of a narrow chart).
    auto* series = new QBarSeries;
    const QColor colours[2] = {QColor(0xd6, 0x27, 0x28), QColor(0x1f, 0x77, 0xb4)};
    const QString names[2] = {"Bi-Mamba (1-bit)", "fp16 baseline"};
    double top = 1.0;
    for (int i = 0; i < 2; ++i) {
        if (i == 1 && sides_[1].model->text().trimmed().isEmpty() && sides_[1].stats.tokPerS <= 0) continue;
        auto* set = new QBarSet(names[i]);
        set->append(std::max(0.0, sides_[i].stats.tokPerS));
        set->setColor(colours[i]);
        series->append(set);
        top = std::max(top, sides_[i].stats.tokPerS);
    }
    c->addSeries(series);
    auto* x = new QBarCategoryAxis;
    x->append(QStringList{"decode"});
    x->setLabelsVisible(false);
    auto* y = new QValueAxis;
    y->setRange(0, top * 1.15);
    y->applyNiceNumbers();  // round ticks (0, 500, 1000 …), not 807.6 / 1615.1
    y->setLabelFormat("%.0f");
    y->setTitleText("tokens / s");
    c->addAxis(x, Qt::AlignBottom);
    c->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    Theme::styleChart(c);
}

}  // namespace bimamba::ui
