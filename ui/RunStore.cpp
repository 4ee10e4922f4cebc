#include "ui/RunStore.h"

#include <QDir>
#include <QFileInfo>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QSqlRecord>
#include <QRegularExpression>
#include <QUuid>
#include <QVariant>

#include <cmath>

namespace bimamba::ui {

namespace {
const char* kColumns =
    "name, grp, preset, binarize, loss, teacher, status, step, total_steps, tokens, best_val_ppl, "
    "started, ended, run_dir, message, axes, host, remote";
// Read with the record, written only by their own setters.
const char* kAnnotationColumns = "tags, notes, archived, alert";

void bindRecord(QSqlQuery& q, const RunRecord& r) {
    q.addBindValue(r.name);
    q.addBindValue(r.group);
    q.addBindValue(r.preset);
    q.addBindValue(r.binarize);
    q.addBindValue(r.loss);
    q.addBindValue(r.teacher);
    q.addBindValue(r.status);
    q.addBindValue(r.step);
    q.addBindValue(r.totalSteps);
    q.addBindValue(r.tokens);
    q.addBindValue(std::isfinite(r.bestValPpl) ? QVariant(r.bestValPpl) : QVariant(QMetaType(QMetaType::Double)));
    q.addBindValue(r.started);
    q.addBindValue(r.ended);
    q.addBindValue(r.runDir);
    q.addBindValue(r.message);
    q.addBindValue(r.axes);
    q.addBindValue(r.host);
    q.addBindValue(r.remote);
}
}  // namespace

RunStore::RunStore(QObject* parent)
    : QObject(parent), conn_("runstore-" + QUuid::createUuid().toString(QUuid::WithoutBraces)) {}

RunStore::~RunStore() {
    {
        auto db = QSqlDatabase::database(conn_, false);
        if (db.isValid()) db.close();
    }
    if (QSqlDatabase::contains(conn_)) QSqlDatabase::removeDatabase(conn_);
}

bool RunStore::isOpen() const {
    return QSqlDatabase::contains(conn_) && QSqlDatabase::database(conn_, false).isOpen();
}

bool RunStore::open(const QString& path, QString* error) {
    path_ = path;
    if (path != ":memory:") QDir().mkpath(QFileInfo(path).absolutePath());
    auto db = QSqlDatabase::contains(conn_) ? QSqlDatabase::database(conn_, false)
                                            : QSqlDatabase::addDatabase("QSQLITE", conn_);
    db.setDatabaseName(path);
    if (!db.open()) {
        if (error) *error = QStringLiteral("cannot open run database %1: %2").arg(path, db.lastError().text());
        return false;
    }
    QSqlQuery q(db);
    const bool ok = q.exec(
        "CREATE TABLE IF NOT EXISTS runs ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, grp TEXT, preset TEXT, binarize TEXT,"
        " loss TEXT, teacher TEXT, status TEXT, step INTEGER, total_steps INTEGER, tokens INTEGER,"
        " best_val_ppl REAL, started TEXT, ended TEXT, run_dir TEXT UNIQUE, message TEXT, axes TEXT)");
    if (!ok) {
        if (error) *error = q.lastError().text();
        return false;
    }
    // Columns added since the table was first made (a database of an older
    // workbench gains them; its rows keep everything they had).
    QStringList have;
    if (q.exec("PRAGMA table_info(runs)"))
        while (q.next()) have << q.value(1).toString();
    const struct {
        const char *name, *type;
    } added[] = {{"host", "TEXT"},
                 {"remote", "TEXT"},
                 {"tags", "TEXT"},
                 {"notes", "TEXT"},
                 {"archived", "INTEGER NOT NULL DEFAULT 0"},
                 {"alert", "TEXT"}};
    for (const auto& a : added) {
        const QString col = a.name;
        if (have.contains(col)) continue;
        if (!q.exec(QStringLiteral("ALTER TABLE runs ADD COLUMN %1 %2").arg(col, a.type))) {
            if (error) *error = QStringLiteral("cannot add column %1 to %2: %3").arg(col, path, q.lastError().text());
            return false;
        }
    }
    return true;
}

qint64 RunStore::add(RunRecord r, QString* error) {
    QSqlQuery q(QSqlDatabase::database(conn_));
    q.prepare(QStringLiteral("INSERT INTO runs (%1) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)").arg(kColumns));
    bindRecord(q, r);
    if (!q.exec()) {
        if (error) *error = q.lastError().text();
        return -1;
    }
    const qint64 id = q.lastInsertId().toLongLong();
    emit runAdded(id);
    return id;
}

bool RunStore::update(const RunRecord& r, QString* error) {
    QSqlQuery q(QSqlDatabase::database(conn_));
    q.prepare(
        "UPDATE runs SET name=?, grp=?, preset=?, binarize=?, loss=?, teacher=?, status=?, step=?, "
        "total_steps=?, tokens=?, best_val_ppl=?, started=?, ended=?, run_dir=?, message=?, axes=?, host=?, remote=? "
        "WHERE id=?");
    bindRecord(q, r);
    q.addBindValue(r.id);
    if (!q.exec()) {
        if (error) *error = q.lastError().text();
        return false;
    }
    emit runChanged(r.id);
    return true;
}

bool RunStore::remove(qint64 id) {
    QSqlQuery q(QSqlDatabase::database(conn_));
    q.prepare("DELETE FROM runs WHERE id=?");
    q.addBindValue(id);
    const bool ok = q.exec();
    if (ok) emit runRemoved(id);
    return ok;
}

QVector<RunRecord> RunStore::query(const QString& where, const QVariantList& binds) const {
    QVector<RunRecord> out;
    if (!isOpen()) return out;
    QSqlQuery q(QSqlDatabase::database(conn_));
    q.prepare(QStringLiteral("SELECT id, %1, %2 FROM runs %3 ORDER BY id").arg(kColumns, kAnnotationColumns, where));
    for (const auto& b : binds) q.addBindValue(b);
    if (!q.exec()) return out;
    while (q.next()) {
        RunRecord r;
        int i = 0;
        r.id = q.value(i++).toLongLong();
        r.name = q.value(i++).toString();
        r.group = q.value(i++).toString();
        r.preset = q.value(i++).toString();
        r.binarize = q.value(i++).toString();
        r.loss = q.value(i++).toString();
        r.teacher = q.value(i++).toString();
        r.status = q.value(i++).toString();
        r.step = q.value(i++).toLongLong();
        r.totalSteps = q.value(i++).toLongLong();
        r.tokens = q.value(i++).toLongLong();
        const QVariant ppl = q.value(i++);
        r.bestValPpl = ppl.isNull() ? std::numeric_limits<double>::quiet_NaN() : ppl.toDouble();
        r.started = q.value(i++).toString();
        r.ended = q.value(i++).toString();
        r.runDir = q.value(i++).toString();
        r.message = q.value(i++).toString();
        r.axes = q.value(i++).toString();
        r.host = q.value(i++).toString();
        r.remote = q.value(i++).toString();
        r.tags = parseTags(q.value(i++).toString());
        r.notes = q.value(i++).toString();
        r.archived = q.value(i++).toInt() != 0;
        r.alert = q.value(i++).toString();
        out.push_back(r);
    }
    return out;
}

QStringList parseTags(const QString& text) {
    QStringList out;
    for (const QString& t : text.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts))
        if (!out.contains(t, Qt::CaseInsensitive)) out << t;
    return out;
}

bool RunStore::setColumn(qint64 id, const char* column, const QVariant& value) {
    if (!isOpen()) return false;
    QSqlQuery q(QSqlDatabase::database(conn_));
    q.prepare(QStringLiteral("UPDATE runs SET %1=? WHERE id=?").arg(column));
    q.addBindValue(value);
    q.addBindValue(id);
    if (!q.exec() || q.numRowsAffected() != 1) return false;
    emit runChanged(id);
    return true;
}

bool RunStore::setTags(qint64 id, const QStringList& tags) {
    return setColumn(id, "tags", parseTags(tags.join(',')).join(','));
}

bool RunStore::setNotes(qint64 id, const QString& notes) {
    return setColumn(id, "notes", notes);
}

bool RunStore::setArchived(qint64 id, bool archived) {
    return setColumn(id, "archived", archived ? 1 : 0);
}

bool RunStore::setAlert(qint64 id, const QString& alert) {
    return setColumn(id, "alert", alert);
}

QVector<RunRecord> RunStore::all() const {
    return query({}, {});
}

std::optional<RunRecord> RunStore::byId(qint64 id) const {
    auto v = query("WHERE id=?", {id});
    if (v.isEmpty()) return std::nullopt;
    return v.first();
}

std::optional<RunRecord> RunStore::byDir(const QString& runDir) const {
    auto v = query("WHERE run_dir=?", {QFileInfo(runDir).absoluteFilePath()});
    if (v.isEmpty()) return std::nullopt;
    return v.first();
}

QVector<RunRecord> RunStore::group(const QString& g) const {
    return query("WHERE grp=?", {g});
}

QStringList RunStore::groups() const {
    QStringList out;
    if (!isOpen()) return out;
    QSqlQuery q(QSqlDatabase::database(conn_));
    if (!q.exec("SELECT DISTINCT grp FROM runs WHERE grp IS NOT NULL AND grp != '' ORDER BY grp")) return out;
    while (q.next()) out << q.value(0).toString();
    return out;
}

}  // namespace bimamba::ui
