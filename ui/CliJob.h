#pragma once
// One `bimamba` CLI child process run from the UI (QProcess, asynchronous):
// streams its stdout/stderr, parses "N/M" or "NN%" progress from stderr, and
// turns failures (missing binary, unknown command, non-zero exit) into one
// readable message.
#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QStringDecoder>
#include <QStringList>

namespace bimamba::ui {

class CliJob : public QObject {
    Q_OBJECT
public:
    CliJob(QString cli, QStringList args, QObject* parent = nullptr);
    ~CliJob() override;
    void start();
    void cancel();  // SIGTERM, then kill after 3 s
    void write(const QByteArray& data);
    bool isRunning() const { return proc_.state() != QProcess::NotRunning; }
    QString stdoutText() const { return QString::fromUtf8(out_); }
    QString stderrText() const { return QString::fromUtf8(err_); }
    int exitCode() const { return exitCode_; }
    QString errorMessage() const { return error_; }
    QString commandLine() const;
    QProcess* process() { return &proc_; }
    // Parses progress from a line: "12/40", "[12/40]" or "37%". Returns
    // fraction in [0,1] or -1.
    static double parseProgress(const QString& line);

signals:
    void stdoutData(const QString& text);
    void stderrData(const QString& text);
    void progress(double fraction, double secondsLeft);
    void finished(bool ok, const QString& message);

private:
    QString cli_;
    QStringList args_;
    QProcess proc_;
    QByteArray out_, err_;
    // Stateful: a UTF-8 character split across two reads is decoded whole.
    QStringDecoder outDecoder_{QStringDecoder::Utf8}, errDecoder_{QStringDecoder::Utf8};
    int exitCode_ = -1;
    QString error_;
    QElapsedTimer clock_;
    bool done_ = false;
};

}  // namespace bimamba::ui
