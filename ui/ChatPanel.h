#pragma once
// The Chat & energy tab: the bit-packed CPU engine (`bimamba chat`, driven
// through its stdin/stdout) beside the fp16 baseline, same prompt, streaming
// replies; live tokens/s, resident memory (from /proc) and energy per token
// as the engine reports it ("0.123 J/token (RAPL)" measured, or
// "(estimate)"), shown with that label.
#include <QElapsedTimer>
#include <QWidget>

class QLineEdit;
class QPlainTextEdit;
class QLabel;
class QSpinBox;
class QChartView;
class QTimer;

namespace bimamba::ui {

class RunManager;
class CliJob;

struct ChatStats {
    double tokPerS = -1, memMb = -1, joulesPerToken = -1;
    qint64 tokens = -1;
    // How the energy was obtained, as the engine labels it after the number:
    // "0.123 J/token (estimate)" -> "estimate", "(RAPL)" -> "RAPL". Empty if unlabelled.
    QString energySource;
    bool energyMeasured() const { return !energySource.isEmpty() && !energySource.contains("estimate", Qt::CaseInsensitive); }
    // "0.123 J/token (RAPL, measured)", "0.123 J/token (estimate)" or "–".
    QString energyText() const;
};
// Picks numbers out of an engine status line ("... 12.3 tok/s ... 45 MB ... 0.8 J/token (RAPL) ...").
ChatStats parseChatStats(const QString& text, ChatStats prev = {});

class ChatPanel : public QWidget {
    Q_OBJECT
public:
    explicit ChatPanel(RunManager* manager, QWidget* parent = nullptr);
    void setModels(const QString& binary, const QString& baseline);
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
        QElapsedTimer since;
        qint64 chars = 0;
    };
    void updateStats();
    void updateChart();
    RunManager* manager_;
    Side sides_[2];
    QLineEdit* input_;
    QSpinBox* threads_;
    QChartView* chart_;
    QLabel* info_;
    QTimer* timer_;
    QString lastError_;
};

}  // namespace bimamba::ui
