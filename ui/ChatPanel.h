#pragma once
// The Chat & energy tab: the bit-packed CPU engine (`bimamba chat --json`,
// driven through its stdin, read as JSON lines from its stdout) beside the
// fp16 baseline, same prompt, streaming replies; live tokens/s, resident
// memory (the engine's rss_mb, or /proc) and energy per token as the engine
// reports it (energy_source "RAPL": measured, "estimate"), shown with that label.
#include <QElapsedTimer>
#include <QJsonObject>
#include <QWidget>

#include "ui/CliEvents.h"

class QLineEdit;
class QPlainTextEdit;
class QLabel;
class QSpinBox;
class QComboBox;
class QChartView;
class QTimer;

namespace bimamba::ui {

class RunManager;
class CliJob;

struct ChatStats {
    double tokPerS = -1, memMb = -1, joulesPerToken = -1;
    double weightsMb = -1;  // the model's weight bytes (the "ready" event): what RSS is compared with
    qint64 tokens = -1;
    // How the energy was obtained, as the engine labels it (its energy_source):
    // "estimate" or "RAPL". Empty if unlabelled.
    QString energySource;
    bool energyMeasured() const {
        return !energySource.isEmpty() && !energySource.contains("estimate", Qt::CaseInsensitive);
    }
    // "0.123 J/token (RAPL, measured)", "0.123 J/token (estimate)" or "–".
    QString energyText() const;
};
// The figures of one event of `bimamba chat --json` (a "stats" event: tokens,
// tok_per_s, rss_mb, joules_per_token, energy_source; the "ready" event:
// weights_mb); fields the event lacks
// keep their value from `prev`; other events leave `prev` as it is.
ChatStats chatStatsFromEvent(const QJsonObject& event, ChatStats prev = {});

class ChatPanel : public QWidget {
    Q_OBJECT
public:
    explicit ChatPanel(RunManager* manager, QWidget* parent = nullptr);
    void setModels(const QString& binary, const QString& baseline);
    // Prompt format: true = plain text continued by the model (`chat --template
    // text`), false = the User/Assistant chat template.
    void setPlainText(bool plain);
    bool startEngines(QString* error = nullptr);
    void stopEngines();
    void send(const QString& prompt);
    QString transcript(int side) const;  // 0 = Bi-Mamba engine, 1 = baseline
    QString lastError() const { return lastError_; }
    ChatStats stats(int side) const { return sides_[side].stats; }
    QString statsText(int side) const;  // the stats line under a side

private:
    struct Side {
        QString title;
        QLineEdit* model = nullptr;
        QPlainTextEdit* text = nullptr;
        QLabel* statLabel = nullptr;
        CliJob* job = nullptr;
        ChatStats stats;
        JsonLineReader events;
        QElapsedTimer since;
        qint64 chars = 0;
    };
    void updateStats();
    void updateChart();
    RunManager* manager_;
    Side sides_[2];
    QLineEdit* input_;
    QSpinBox* threads_;
    QComboBox* format_;
    QChartView* chart_;
    class EmptyState* chartBox_;  // the chart, or what to do while nothing has been measured
    QLabel* info_;
    QTimer* timer_;
    QString lastError_;
};

}  // namespace bimamba::ui
