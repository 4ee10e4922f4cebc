#include "ui/Ablation.h"

#include "ui/JsonFile.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QSet>

#include <cmath>

namespace bimamba::ui {

QString lossLabel(const QString& l) {
    if (l == "ce") return "CE";
    if (l == "soft_ce" || l == "kd") return "AR-KD";
    if (l == "kl") return "KL";
    if (l == "mix") return "mix";
    return l;
}

QStringList paperZeroShotTasks() {
    return {"boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"};
}

QString taskLabel(const QString& t) {
    static const QHash<QString, QString> names = {{"boolq", "BoolQ"},     {"piqa", "PIQA"},
                                                  {"hellaswag", "HS"},    {"winogrande", "WG"},
                                                  {"arc_easy", "ARC-e"},  {"arc_challenge", "ARC-c"},
                                                  {"openbookqa", "OBQA"}, {"wikitext2", "Wiki2"},
                                                  {"ptb", "PTB"},         {"c4", "C4"}};
    return names.value(t, t);
}

static QString shortName(const QString& v) {
    QString s = QFileInfo(v).fileName().isEmpty() ? v : QFileInfo(v).fileName();
    if (s.startsWith("step_")) s = QFileInfo(QFileInfo(QFileInfo(v).absolutePath()).absolutePath()).fileName();
    s.replace(QRegularExpression("[^A-Za-z0-9.+]+"), "_");
    return s;
}

QVector<AblationRun> expandAblation(const QString& group, const QJsonObject& base, const AblationAxes& axes) {
    struct Axis {
        QString key;
        QStringList values;
    };
    QVector<Axis> dims;
    if (!axes.sizes.isEmpty()) dims.push_back({"size", axes.sizes});
    if (!axes.binarizations.isEmpty()) dims.push_back({"binarize", axes.binarizations});
    if (!axes.losses.isEmpty()) dims.push_back({"loss", axes.losses});
    if (!axes.teachers.isEmpty()) dims.push_back({"teacher", axes.teachers});
    if (!axes.seeds.isEmpty()) {
        QStringList s;
        for (int v : axes.seeds) s << QString::number(v);
        dims.push_back({"seed", s});
    }
    QVector<AblationRun> out;
    QSet<QString> seen;
    QVector<int> idx(dims.size(), 0);
    for (;;) {
        QJsonObject cfg = base;
        QJsonObject ax;
        QStringList nameParts;
        QJsonObject model = cfg.value("model").isObject()
                                ? cfg.value("model").toObject()
                                : QJsonObject{{"preset", cfg.value("model").toString("small")}};
        QString loss = cfg.value("loss").toString("ce");
        for (int d = 0; d < dims.size(); ++d)
            if (dims[d].key == "loss") loss = dims[d].values[idx[d]];
        for (int d = 0; d < dims.size(); ++d) {
            const QString& v = dims[d].values[idx[d]];
            const QString& k = dims[d].key;
            if (k == "size") {
                model["preset"] = v;
                nameParts << v;
            } else if (k == "binarize") {
                model["binarize"] = v;
                nameParts << (v == "none" ? "fp" : v == "in_proj" ? "inproj" : "inout");
            } else if (k == "loss") {
                cfg["loss"] = v;
                nameParts << lossLabel(v).toLower().remove('-');
            } else if (k == "teacher") {
                if (loss == "ce") continue;  // no teacher for plain CE
                cfg["teacher"] = v;
                nameParts << "t-" + shortName(v);
            } else if (k == "seed") {
                cfg["seed"] = v.toInt();
                nameParts << "s" + v;
            }
            ax[k] = k == "seed" ? QJsonValue(v.toInt()) : QJsonValue(v);
        }
        if (loss == "ce") {
            cfg.remove("teacher");
            ax.remove("teacher");
        }
        cfg["model"] = model;
        const QString key = QString::fromUtf8(QJsonDocument(cfg).toJson(QJsonDocument::Compact));
        if (!seen.contains(key)) {
            seen.insert(key);
            QString name = group;
            if (!nameParts.isEmpty()) name += "-" + nameParts.join('-');
            out.push_back({name, cfg, ax});
        }
        int d = dims.size() - 1;
        while (d >= 0 && ++idx[d] == dims[d].values.size()) idx[d--] = 0;
        if (d < 0) break;
    }
    return out;
}

namespace {
// One model's results from an eval results file (EvalTable layout):
// perplexities as they are, accuracies in percent by the task's headline.
QHash<QString, double> resultsOf(const QJsonObject& model) {
    QHash<QString, double> out;
    const QJsonObject res = model.value("results").toObject();
    for (auto it = res.begin(); it != res.end(); ++it) {
        const QJsonObject t = it.value().toObject();
        if (t.value("kind").toString() == "ppl") {
            out[it.key()] = t.value("ppl").toDouble(NAN);
        } else {
            const QString headline = t.value("headline").toString("acc");
            out[it.key()] = 100.0 * t.value(headline).toDouble(t.value("acc").toDouble(NAN));
        }
    }
    return out;
}

// A run's evaluation: <run>/eval_results.json (its first model), else the
// rows labelled with the run's name in the workspace's eval/*.json (a study
// evaluates all its models in one file per protocol, labelled by stage).
// `workspaceEval` caches those files' rows by eval folder, so that a table of
// many runs reads each file once.
using LabelledResults = QHash<QString, QHash<QString, double>>;
QHash<QString, double> evalResults(const QString& runDir, QHash<QString, LabelledResults>& workspaceEval) {
    const QString own = QDir(runDir).filePath("eval_results.json");
    if (QFileInfo::exists(own)) {
        const QJsonArray models = readJsonFile(own).value("models").toArray();
        return models.isEmpty() ? QHash<QString, double>{} : resultsOf(models.first().toObject());
    }
    const QString evalDir = QDir::cleanPath(QDir(runDir).absoluteFilePath("../../eval"));
    auto it = workspaceEval.find(evalDir);
    if (it == workspaceEval.end()) {
        LabelledResults byLabel;
        for (const auto& f : QDir(evalDir).entryInfoList({"*.json"}, QDir::Files, QDir::Name))
            for (const auto& m : readJsonFile(f.absoluteFilePath()).value("models").toArray()) {
                const auto r = resultsOf(m.toObject());
                auto& into = byLabel[m.toObject().value("label").toString()];
                for (auto rit = r.begin(); rit != r.end(); ++rit) into.insert(rit.key(), rit.value());
            }
        it = workspaceEval.insert(evalDir, byLabel);
    }
    return it->value(QFileInfo(runDir).fileName());
}

// Runs whose training configs differ at most in the seed form a seed group
// (the same seed twice too: a GPU run outside deterministic mode differs from
// its rerun). Empty when the run has no config.
QString seedGroupKey(const QString& runDir) {
    QJsonObject cfg = readJsonFile(QDir(runDir).filePath("train_config.json"));
    if (cfg.isEmpty()) return {};
    cfg.remove("seed");
    return QString::fromUtf8(QJsonDocument(cfg).toJson(QJsonDocument::Compact));
}

QString num(double v, int prec) {
    return std::isfinite(v) ? QString::number(v, 'f', prec) : QStringLiteral("–");
}

// "mean ± sd" over the finite values (sample standard deviation), "–" when none.
QString meanSd(const QVector<double>& xs, int prec) {
    double sum = 0;
    int n = 0;
    for (double x : xs)
        if (std::isfinite(x)) sum += x, ++n;
    if (n == 0) return QStringLiteral("–");
    const double mean = sum / n;
    if (n == 1) return num(mean, prec);
    double ss = 0;
    for (double x : xs)
        if (std::isfinite(x)) ss += (x - mean) * (x - mean);
    return num(mean, prec) + " ± " + num(std::sqrt(ss / (n - 1)), prec);
}
}  // namespace

ResultsTable ablationResults(const QVector<RunRecord>& runs) {
    ResultsTable t;
    QStringList axisKeys;
    QVector<QJsonObject> axes;
    for (const auto& r : runs) {
        QJsonObject a = QJsonDocument::fromJson(r.axes.toUtf8()).object();
        if (a.isEmpty()) a = QJsonObject{{"loss", r.loss}, {"binarize", r.binarize}};
        for (auto it = a.begin(); it != a.end(); ++it)
            if (!axisKeys.contains(it.key())) axisKeys << it.key();
        axes << a;
    }
    static const QStringList order{"size", "binarize", "loss", "teacher", "seed"};
    std::sort(axisKeys.begin(), axisKeys.end(),
              [](const QString& a, const QString& b) { return order.indexOf(a) < order.indexOf(b); });
    t.header << "Run";
    for (const auto& k : axisKeys)
        t.header << (k == "size"       ? "Size"
                     : k == "binarize" ? "Binarized"
                     : k == "loss"     ? "Loss"
                     : k == "teacher"  ? "Teacher"
                                       : "Seed");
    t.firstNumeric = t.header.size();
    for (const auto& task : paperZeroShotTasks()) t.header << taskLabel(task);
    t.header << "Avg"
             << "Wiki2 ppl"
             << "Best val ppl"
             << "Status";
    const int nValues = paperZeroShotTasks().size() + 3;  // tasks, Avg, Wiki2 ppl, best val ppl
    QVector<QVector<double>> values;                      // per run, the numeric columns
    QHash<QString, LabelledResults> workspaceEval;
    for (int i = 0; i < runs.size(); ++i) {
        QStringList row{runs[i].name};
        for (const auto& k : axisKeys) {
            const QJsonValue v = axes[i].value(k);
            QString s = v.isDouble() ? QString::number(v.toInt()) : v.toString();
            if (k == "loss") s = lossLabel(s);
            if (k == "teacher") s = s.isEmpty() ? "–" : shortName(s);
            if (k == "binarize" && s.isEmpty()) s = "–";
            row << s;
        }
        const auto res = evalResults(runs[i].runDir, workspaceEval);
        QVector<double> v;
        double sum = 0;
        int n = 0;
        for (const auto& task : paperZeroShotTasks()) {
            v << res.value(task, NAN);
            if (std::isfinite(v.back())) sum += v.back(), ++n;
        }
        v << (n ? sum / n : NAN) << res.value("wikitext2", NAN) << runs[i].bestValPpl;
        for (int c = 0; c < nValues; ++c) row << num(v[c], c >= nValues - 2 ? 2 : 1);
        row << runs[i].status;
        t.rows << row;
        values << v;
    }
    // A row per seed group of two or more runs: mean ± sd over its runs.
    QStringList keys;
    QHash<QString, QVector<int>> members;
    for (int i = 0; i < runs.size(); ++i) {
        const QString key = seedGroupKey(runs[i].runDir);
        if (key.isEmpty()) continue;
        if (!members.contains(key)) keys << key;
        members[key] << i;
    }
    QVector<int> firstGroup;  // the members of the first seed group of two or more
    for (const auto& key : keys) {
        const auto& idx = members[key];
        if (idx.size() < 2) continue;
        QStringList names;
        for (int i : idx) names << runs[i].name;
        QStringList row{QString("mean ± sd, n=%1: %2").arg(idx.size()).arg(names.join(", "))};
        for (int k = 0; k < axisKeys.size(); ++k) {
            const QString first = t.rows[idx[0]][1 + k];
            bool same = true;
            for (int i : idx) same = same && t.rows[i][1 + k] == first;
            row << (same ? first : QStringLiteral("*"));
        }
        for (int c = 0; c < nValues; ++c) {
            QVector<double> xs;
            for (int i : idx) xs << values[i][c];
            row << meanSd(xs, c >= nValues - 2 ? 2 : 1);
        }
        row << QString();
        t.rows << row;
        t.seedGroupRows << t.rows.size() - 1;
        if (firstGroup.isEmpty()) firstGroup = idx;
    }
    // Each other run against the first seed group, by best validation
    // perplexity: a difference larger than the group's spread (max - min, as
    // the study summary uses it) is beyond run-to-run noise.
    if (!t.seedGroupRows.isEmpty()) {
        const QVector<int>& idx = firstGroup;
        const int val = nValues - 1;
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        int n = 0;
        for (int i : idx)
            if (std::isfinite(values[i][val]))
                lo = std::min(lo, values[i][val]), hi = std::max(hi, values[i][val]), sum += values[i][val], ++n;
        t.header << "Val ppl vs seed group";
        for (int r = 0; r < t.rows.size(); ++r) {
            QString cell;
            if (n >= 2 && r == t.seedGroupRows.first()) {
                cell = "spread " + num(hi - lo, 2);
            } else if (n >= 2 && r < runs.size() && !idx.contains(r) && std::isfinite(values[r][val])) {
                const double d = values[r][val] - sum / n;
                cell =
                    (d > 0 ? "+" : "") + num(d, 2) + (std::fabs(d) > hi - lo ? ", beyond spread" : ", within spread");
            }
            t.rows[r] << cell;
        }
    }
    return t;
}

QString toLatex(const ResultsTable& t, const QString& caption) {
    auto esc = [](QString s) {
        s.replace('\\', "\\textbackslash{}");
        for (const char* c : {"&", "%", "$", "#", "_", "{", "}"}) s.replace(c, QString("\\") + c);
        s.replace("–", "--");
        return s;
    };
    QString cols;
    for (int i = 0; i < t.header.size(); ++i) cols += i < t.firstNumeric ? 'l' : 'r';
    QString out =
        "\\begin{table}[t]\n\\centering\n\\caption{" + esc(caption) + "}\n\\begin{tabular}{" + cols + "}\n\\toprule\n";
    QStringList h;
    for (const auto& c : t.header) h << esc(c);
    out += h.join(" & ") + " \\\\\n\\midrule\n";
    for (const auto& r : t.rows) {
        QStringList cells;
        for (const auto& c : r) cells << esc(c);
        out += cells.join(" & ") + " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
    return out;
}

}  // namespace bimamba::ui
