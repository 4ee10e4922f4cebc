#include "ui/CliJob.h"

#include <QFileInfo>
#include <QRegularExpression>
#include <QTimer>

namespace bimamba::ui {

CliJob::CliJob(QString cli, QStringList args, QObject* parent)
    : QObject(parent), cli_(std::move(cli)), args_(std::move(args)) {
    connect(&proc_, &QProcess::readyReadStandardOutput, this, [this] {
        const QByteArray d = proc_.readAllStandardOutput();
        out_ += d;
        const QString text = outDecoder_.decode(d);
        if (!text.isEmpty()) emit stdoutData(text);
    });
    connect(&proc_, &QProcess::readyReadStandardError, this, [this] {
        const QByteArray d = proc_.readAllStandardError();
        err_ += d;
        const QString text = errDecoder_.decode(d);
        if (text.isEmpty()) return;
        emit stderrData(text);
        for (const QString& line : text.split(QRegularExpression("[\r\n]"), Qt::SkipEmptyParts)) {
            const double f = parseProgress(line);
            if (f >= 0) {
                const double el = clock_.elapsed() / 1000.0;
                emit progress(f, f > 0.001 ? el * (1 - f) / f : -1);
            }
        }
    });
    connect(&proc_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart && !done_) {
            done_ = true;
            error_ = QStringLiteral("could not start %1: %2").arg(cli_, proc_.errorString());
            emit finished(false, error_);
        }
    });
    connect(&proc_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus st) {
        if (done_) return;
        done_ = true;
        exitCode_ = code;
        if (st == QProcess::CrashExit) {
            error_ = QStringLiteral("%1 was terminated (signal)").arg(commandLine());
        } else if (code != 0) {
            QStringList lines = QString::fromUtf8(err_).split('\n', Qt::SkipEmptyParts);
            if (lines.size() > 15) lines = lines.mid(lines.size() - 15);
            error_ = QStringLiteral("`%1` failed with exit code %2%3")
                         .arg(commandLine())
                         .arg(code)
                         .arg(lines.isEmpty() ? QString() : ":\n" + lines.join('\n'));
        }
        emit finished(code == 0 && st == QProcess::NormalExit, error_);
    });
}

CliJob::~CliJob() {
    if (proc_.state() != QProcess::NotRunning) {
        done_ = true;
        proc_.kill();
        proc_.waitForFinished(2000);
    }
}

QString CliJob::commandLine() const {
    return "bimamba " + args_.join(' ');
}

void CliJob::start() {
    clock_.start();
    if (cli_.isEmpty() || !QFileInfo(cli_).isExecutable()) {
        done_ = true;
        error_ = QStringLiteral("the bimamba CLI was not found (%1); set its path in Settings")
                     .arg(cli_.isEmpty() ? QStringLiteral("no path set") : cli_);
        QTimer::singleShot(0, this, [this] { emit finished(false, error_); });
        return;
    }
    proc_.start(cli_, args_);
}

void CliJob::cancel() {
    if (proc_.state() == QProcess::NotRunning) return;
    proc_.terminate();
    QTimer::singleShot(3000, this, [this] {
        if (proc_.state() != QProcess::NotRunning) proc_.kill();
    });
}

void CliJob::write(const QByteArray& d) {
    proc_.write(d);
}

double CliJob::parseProgress(const QString& line) {
    static const QRegularExpression frac(R"((\d+)\s*/\s*(\d+))");
    static const QRegularExpression pct(R"((\d+(?:\.\d+)?)\s*%)");
    auto m = pct.match(line);
    if (m.hasMatch()) return std::min(1.0, m.captured(1).toDouble() / 100.0);
    m = frac.match(line);
    if (m.hasMatch()) {
        const double a = m.captured(1).toDouble(), b = m.captured(2).toDouble();
        if (b > 0 && a <= b) return a / b;
    }
    return -1;
}

}  // namespace bimamba::ui
