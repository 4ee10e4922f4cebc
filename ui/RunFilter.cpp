#include "ui/RunFilter.h"

#include "core/base/RunDir.h"
#include "ui/JsonFile.h"
#include "ui/RunTableModel.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace bimamba::ui {

using base::read_run_config;

namespace {
void flatten(const QJsonValue& v, const QString& key, QMap<QString, QString>& out) {
    if (v.isObject()) {
        const QJsonObject o = v.toObject();
        for (auto it = o.begin(); it != o.end(); ++it)
            flatten(it.value(), key.isEmpty() ? it.key() : key + "." + it.key(), out);
    } else if (v.isArray()) {
        out[key] = QString::fromUtf8(QJsonDocument(v.toArray()).toJson(QJsonDocument::Compact));
    } else if (v.isDouble()) {
        out[key] = QString::number(v.toDouble(), 'g', 10);
    } else if (v.isBool()) {
        out[key] = v.toBool() ? "true" : "false";
    } else {
        out[key] = v.toString();
    }
}
}  // namespace

QMap<QString, QString> flattenConfig(const QJsonObject& config) {
    QMap<QString, QString> out;
    flatten(config, {}, out);
    return out;
}

bool runMatchesQuery(const RunRecord& r, const QString& query, const QMap<QString, QString>& config) {
    const QHash<QString, QString> fields{
        {"name", r.name},     {"group", r.group},
        {"preset", r.preset}, {"binarize", r.binarize},
        {"loss", r.loss},     {"teacher", r.teacher},
        {"status", r.status}, {"host", r.isRemote() ? r.host : QStringLiteral("local")},
        {"notes", r.notes},   {"alert", r.alert}};
    for (const QString& word : query.split(' ', Qt::SkipEmptyParts)) {
        const int colon = word.indexOf(':');
        if (colon > 0) {
            const QString key = word.left(colon).toLower(), want = word.mid(colon + 1);
            if (key == "tag" || key == "tags") {  // a tag equal to the value (case-insensitive)
                if (!r.tags.contains(want, Qt::CaseInsensitive)) return false;
                continue;
            }
            QString have;
            if (fields.contains(key))
                have = fields.value(key);
            else if (config.contains(key))
                have = config.value(key);
            else
                return false;  // a field this run does not have
            if (!have.contains(want, Qt::CaseInsensitive)) return false;
        } else {
            bool any = false;
            for (const QString& v : fields)
                if (v.contains(word, Qt::CaseInsensitive)) any = true;
            for (const QString& t : r.tags)
                if (t.contains(word, Qt::CaseInsensitive)) any = true;
            if (!any) return false;
        }
    }
    return true;
}

RunFilterProxy::RunFilterProxy(RunTableModel* source, QObject* parent)
    : QSortFilterProxyModel(parent), source_(source) {
    setSourceModel(source);
    setDynamicSortFilter(true);
    setSortCaseSensitivity(Qt::CaseInsensitive);
}

void RunFilterProxy::setShowArchived(bool on) {
    showArchived_ = on;
    invalidateFilter();
}

void RunFilterProxy::setQuery(const QString& query) {
    query_ = query.trimmed();
    configs_.clear();  // configs can change between queries (a resumed run)
    invalidateFilter();
}

bool RunFilterProxy::filterAcceptsRow(int row, const QModelIndex&) const {
    const RunRecord* r = source_->record(row);
    if (!r) return false;
    if (r->archived && !showArchived_) return false;
    if (query_.isEmpty()) return true;
    auto it = configs_.find(r->id);
    if (it == configs_.end())
        it = configs_.insert(r->id, flattenConfig(toQJsonObject(read_run_config(r->runDir.toStdString()))));
    return runMatchesQuery(*r, query_, *it);
}

bool RunFilterProxy::lessThan(const QModelIndex& a, const QModelIndex& b) const {
    // Numbers as numbers (steps, tokens, perplexity), the rest as text.
    const RunRecord* ra = source_->record(a.row());
    const RunRecord* rb = source_->record(b.row());
    if (ra && rb) {
        switch (a.column()) {
            case RunTableModel::Steps:
                return ra->step < rb->step;
            case RunTableModel::Tokens:
                return ra->tokens < rb->tokens;
            case RunTableModel::BestPpl: {
                const bool fa = std::isfinite(ra->bestValPpl), fb = std::isfinite(rb->bestValPpl);
                return fa != fb ? fa : (fa && ra->bestValPpl < rb->bestValPpl);  // unevaluated runs last
            }
            default:
                break;
        }
    }
    return QSortFilterProxyModel::lessThan(a, b);
}

}  // namespace bimamba::ui
