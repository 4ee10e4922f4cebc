#include "ui/RunDir.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QSaveFile>
#include <QStringList>

#include <cerrno>
#include <exception>
#include <signal.h>

#include "core/base/RunDir.h"

namespace bimamba::ui::rundir {

QJsonObject readJsonFile(const QString& path, QString* error) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        if (error) *error = QStringLiteral("cannot open %1: %2").arg(path, f.errorString());
        return {};
    }
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(f.readAll(), &pe);
    if (pe.error != QJsonParseError::NoError || !doc.isObject()) {
        if (error)
            *error = QStringLiteral("%1: invalid JSON at offset %2: %3")
                         .arg(path).arg(pe.offset).arg(pe.errorString());
        return {};
    }
    return doc.object();
}

bool writeJsonFile(const QString& path, const QJsonObject& o, QString* error) {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) {
        if (error) *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    f.write(QJsonDocument(o).toJson(QJsonDocument::Indented));
    if (!f.commit()) {
        if (error) *error = QStringLiteral("cannot write %1: %2").arg(path, f.errorString());
        return false;
    }
    return true;
}

RunStatus readStatus(const QString& dir) {
    RunStatus s;
    const QString path = QDir(dir).filePath(kStatus);
    if (!QFileInfo::exists(path)) return s;
    QString err;
    const auto o = readJsonFile(path, &err);
    if (o.isEmpty()) return s;
    s.valid = true;
    s.state = o.value("state").toString();
    s.pid = o.value("pid").toVariant().toLongLong();
    s.step = o.value("step").toVariant().toLongLong();
    s.totalSteps = o.value("total_steps").toVariant().toLongLong();
    s.started = o.value("started").toString();
    s.ended = o.value("ended").toString();
    s.message = o.value("message").toString();
    return s;
}

QJsonObject readConfig(const QString& dir) {
    QDir d(dir);
    if (QFileInfo::exists(d.filePath(kTrainConfig))) {
        auto o = readJsonFile(d.filePath(kTrainConfig));
        if (!o.isEmpty()) return o;
    }
    return readJsonFile(d.filePath(kLaunchConfig));
}

QString latestCheckpoint(const QString& dir) {
    // The CLI's reader of checkpoints/latest (core/base/RunDir.h), so both agree.
    try {
        const std::string p = bimamba::latest_checkpoint(dir.toStdString());
        return p.empty() ? QString() : QFileInfo(QString::fromStdString(p)).absoluteFilePath();
    } catch (const std::exception&) {
        return {};  // `latest` names a folder that is gone: no checkpoint to offer
    }
}

static qint64 readInt(const QString& path, bool* ok) {
    QFile f(path);
    *ok = false;
    if (!f.open(QIODevice::ReadOnly)) return 0;
    return QString::fromUtf8(f.readAll()).trimmed().toLongLong(ok);
}

qint64 readLauncherPid(const QString& dir) {
    bool ok;
    const qint64 v = readInt(QDir(dir).filePath(kLauncherPid), &ok);
    return ok ? v : 0;
}

int readExitCode(const QString& dir) {
    bool ok;
    const qint64 v = readInt(QDir(dir).filePath(kExitCode), &ok);
    return ok ? int(v) : -1;
}

bool pidAlive(qint64 pid) {
    if (pid <= 0) return false;
    if (::kill(pid_t(pid), 0) == 0 || errno == EPERM) {
        // A zombie still answers kill(0); /proc tells it apart.
        QFile st(QStringLiteral("/proc/%1/stat").arg(pid));
        if (st.open(QIODevice::ReadOnly)) {
            const QByteArray line = st.readAll();
            const int rp = line.lastIndexOf(')');
            if (rp > 0 && rp + 2 < line.size() && line.at(rp + 2) == 'Z') return false;
        }
        return true;
    }
    return false;
}

QString tail(const QString& path, int maxLines) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    const qint64 size = f.size();
    const qint64 chunk = 64 * 1024;
    if (size > chunk) f.seek(size - chunk);
    QStringList lines = QString::fromUtf8(f.readAll()).split('\n');
    while (!lines.isEmpty() && lines.last().trimmed().isEmpty()) lines.removeLast();
    if (lines.size() > maxLines) lines = lines.mid(lines.size() - maxLines);
    return lines.join('\n');
}

bool looksLikeRunDir(const QString& dir) {
    QDir d(dir);
    return QFileInfo::exists(d.filePath(kStatus)) || QFileInfo::exists(d.filePath(kMetrics)) ||
           QFileInfo::exists(d.filePath(kTrainConfig)) || QFileInfo::exists(d.filePath(kLaunchConfig));
}

}  // namespace bimamba::ui::rundir
