#pragma once
// Every run the workbench knows, in an embedded SQLite database (Qt SQL).
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include <limits>
#include <optional>

namespace bimamba::ui {

struct RunRecord {
    qint64 id = -1;
    QString name, group, preset, binarize, loss, teacher;
    QString status;  // starting | running | finished | stopped | failed | lost
    qint64 step = 0, totalSteps = 0, tokens = 0;
    double bestValPpl = std::numeric_limits<double>::quiet_NaN();
    QString started, ended;
    QString runDir;
    QString message;  // failure text (exit code + stderr tail) or status message
    QString axes;     // ablation axis values, JSON object text
    // A run on another machine (core/base/RemoteRun.h): the hosts.toml name
    // of its target ("" = this machine) and its RemoteRun record as JSON
    // text; runDir is then the local mirror folder.
    QString host;
    QString remote;
    bool isRemote() const { return !host.isEmpty(); }
    // What the researcher adds (never written by update(): setTags, setNotes,
    // setArchived, so a refresh from a record read earlier cannot undo an edit).
    QStringList tags;       // short labels, as typed (deduplicated, order kept)
    QString notes;          // free text
    bool archived = false;  // hidden from the table unless "Show archived"
    // The run's current alert (NaN, divergence, stall; RunManager), "" if none.
    QString alert;
};

// Tags as typed in the table or the side panel: split on commas and
// whitespace, empty and repeated ones (case-insensitively) dropped.
QStringList parseTags(const QString& text);

class RunStore : public QObject {
    Q_OBJECT
public:
    explicit RunStore(QObject* parent = nullptr);
    ~RunStore() override;
    // Opens (creating) the database file; ":memory:" for a private one.
    bool open(const QString& path, QString* error = nullptr);
    bool isOpen() const;
    QString path() const { return path_; }

    qint64 add(RunRecord r, QString* error = nullptr);  // returns id (-1 on error)
    bool update(const RunRecord& r, QString* error = nullptr);
    bool remove(qint64 id);
    QVector<RunRecord> all() const;
    std::optional<RunRecord> byId(qint64 id) const;
    std::optional<RunRecord> byDir(const QString& runDir) const;
    QVector<RunRecord> group(const QString& group) const;
    QStringList groups() const;
    // The researcher's annotations, each written alone (see RunRecord).
    bool setTags(qint64 id, const QStringList& tags);
    bool setNotes(qint64 id, const QString& notes);
    bool setArchived(qint64 id, bool archived);
    bool setAlert(qint64 id, const QString& alert);

signals:
    void runAdded(qint64 id);
    void runChanged(qint64 id);
    void runRemoved(qint64 id);

private:
    bool setColumn(qint64 id, const char* column, const QVariant& value);
    QVector<RunRecord> query(const QString& where, const QVariantList& binds) const;
    QString conn_;
    QString path_;
};

}  // namespace bimamba::ui
