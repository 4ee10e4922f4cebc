#include "ui/TrainConfigCheck.h"

#include "core/base/Mamba2Config.h"

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

namespace bimamba::ui {

QStringList knownTrainFields() {
    return {"data",         "model",        "init_from",     "steps",         "seq_len",          "batch_size",
            "grad_accum",   "tokens_per_step", "lr",         "final_lr",      "warmup_steps",     "weight_decay",
            "beta1",        "beta2",        "eps",           "grad_clip",     "loss",             "ce_weight",
            "teacher",      "teacher_cache", "teacher_vocab_slice", "log_every", "eval_every",     "eval_batches",
            "checkpoint_every", "keep_checkpoints", "seed",   "deterministic", "device",           "precision",
            "threads"};
}

bool parseConfigText(const QString& text, QJsonObject* out, QString* error) {
    const QByteArray bytes = text.toUtf8();
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(bytes, &pe);
    if (pe.error != QJsonParseError::NoError) {
        int line = 1, col = 1;
        for (int i = 0; i < pe.offset && i < bytes.size(); ++i) {
            if (bytes[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        if (error) *error = QStringLiteral("The config is not valid JSON: %1 (line %2, column %3)").arg(pe.errorString()).arg(line).arg(col);
        return false;
    }
    if (!doc.isObject()) {
        if (error) *error = QStringLiteral("The config must be a JSON object ({...})");
        return false;
    }
    *out = doc.object();
    return true;
}

namespace {
nlohmann::json toNlohmann(const QJsonValue& v) {
    return nlohmann::json::parse(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact).toStdString())[0];
}

bool modelConfig(const QJsonValue& model, bimamba::Mamba2Config* out, QString* error) {
    try {
        if (model.isUndefined() || model.isNull()) {
            *out = bimamba::Mamba2Config::preset("small");
        } else if (model.isString()) {
            *out = bimamba::Mamba2Config::preset(model.toString().toStdString());
        } else if (model.isObject()) {
            QJsonObject o = model.toObject();
            const QString preset = o.value("preset").toString("small");
            if (o.contains("preset") && !o.value("preset").isString())
                throw std::invalid_argument("model field 'preset' must be a string");
            o.remove("preset");
            nlohmann::json base = bimamba::Mamba2Config::preset(preset.toStdString()).to_json();
            const nlohmann::json over = toNlohmann(o);
            for (auto it = over.begin(); it != over.end(); ++it) {
                if (it.key() == "ssm_cfg" && it->is_object() && base.contains("ssm_cfg") && base["ssm_cfg"].is_object()) {
                    for (auto s = it->begin(); s != it->end(); ++s) base["ssm_cfg"][s.key()] = *s;
                } else {
                    base[it.key()] = *it;
                }
            }
            *out = bimamba::Mamba2Config::from_json(base, true);
        } else {
            throw std::invalid_argument("'model' must be a preset name or an object");
        }
        out->validate();
        return true;
    } catch (const std::exception& e) {
        if (error) *error = QStringLiteral("model: %1").arg(e.what());
        return false;
    }
}
}  // namespace

long long modelParameters(const QJsonObject& config, QString* error) {
    bimamba::Mamba2Config m;
    if (!modelConfig(config.value("model"), &m, error)) return -1;
    return m.num_parameters();
}

QStringList validateTrainConfig(const QJsonObject& c, bool checkPaths) {
    QStringList errs;
    const QStringList known = knownTrainFields();
    for (auto it = c.begin(); it != c.end(); ++it)
        if (!known.contains(it.key())) errs << QStringLiteral("Unknown field '%1'").arg(it.key());

    auto isInt = [](const QJsonValue& v) { return v.isDouble() && std::floor(v.toDouble()) == v.toDouble(); };
    auto intField = [&](const char* k, long long min) {
        if (!c.contains(k)) return;
        const auto v = c.value(k);
        if (!isInt(v)) errs << QStringLiteral("'%1' must be an integer").arg(k);
        else if (v.toDouble() < min) errs << QStringLiteral("'%1' must be >= %2").arg(k).arg(min);
    };
    auto numField = [&](const char* k, double lo, double hi, bool loOpen, bool hiOpen) {
        if (!c.contains(k)) return;
        const auto v = c.value(k);
        if (!v.isDouble()) {
            errs << QStringLiteral("'%1' must be a number").arg(k);
            return;
        }
        const double d = v.toDouble();
        const bool bad = (loOpen ? d <= lo : d < lo) || (hiOpen ? d >= hi : d > hi);
        if (bad)
            errs << QStringLiteral("'%1' = %2 is out of range %3%4, %5%6")
                        .arg(k).arg(d).arg(loOpen ? "(" : "[").arg(lo).arg(std::isinf(hi) ? QStringLiteral("∞") : QString::number(hi)).arg(hiOpen ? ")" : "]");
    };
    auto strField = [&](const char* k) {
        if (c.contains(k) && !c.value(k).isString()) errs << QStringLiteral("'%1' must be a string").arg(k);
    };
    const double inf = std::numeric_limits<double>::infinity();

    if (!c.contains("data") || c.value("data").toString().isEmpty())
        errs << "'data' (a prepared corpus folder) is required";
    for (const char* k : {"data", "init_from", "teacher", "teacher_cache", "loss", "device", "precision"}) strField(k);
    intField("steps", 1);
    intField("seq_len", 1);
    intField("batch_size", 1);
    intField("grad_accum", 1);
    intField("tokens_per_step", 0);
    intField("warmup_steps", 0);
    intField("log_every", 1);
    intField("eval_every", 0);
    intField("eval_batches", 1);
    intField("checkpoint_every", 0);
    intField("keep_checkpoints", 1);
    intField("seed", 0);
    intField("threads", 0);
    numField("lr", 0, inf, true, false);
    numField("weight_decay", 0, inf, false, false);
    numField("beta1", 0, 1, false, true);
    numField("beta2", 0, 1, false, true);
    numField("eps", 0, inf, true, false);
    numField("grad_clip", 0, inf, false, false);
    numField("ce_weight", 0, 1, false, false);
    if (c.contains("teacher_vocab_slice") && !c.value("teacher_vocab_slice").isBool())
        errs << "'teacher_vocab_slice' must be true or false";
    if (c.contains("deterministic") && !c.value("deterministic").isBool())
        errs << "'deterministic' must be true or false";
    const double lr = c.value("lr").toDouble(2.5e-4);
    if (c.contains("final_lr")) numField("final_lr", 0, lr, false, false);

    const QString loss = c.value("loss").toString("ce");
    const QStringList losses{"ce", "soft_ce", "kd", "kl", "mix"};
    if (!losses.contains(loss)) errs << QStringLiteral("'loss' must be one of %1 (got '%2')").arg(losses.join(", "), loss);
    const bool hasTeacher = !c.value("teacher").toString().isEmpty();
    const bool hasCache = !c.value("teacher_cache").toString().isEmpty();
    if (loss != "ce" && !hasTeacher && !hasCache)
        errs << QStringLiteral("loss '%1' distils from a teacher: set 'teacher' (or 'teacher_cache')").arg(loss);
    if (hasTeacher && hasCache) errs << "'teacher' and 'teacher_cache' cannot both be set";
    if (hasCache && loss == "kl") errs << "'teacher_cache' works with soft_ce and mix, not kl";

    const QString dev = c.value("device").toString("auto");
    if (!(dev == "auto" || dev == "cpu" || dev == "cuda" || dev.startsWith("cuda:")))
        errs << QStringLiteral("'device' must be auto, cpu, cuda or cuda:N (got '%1')").arg(dev);
    const QString prec = c.value("precision").toString("auto");
    if (!(prec == "auto" || prec == "float32" || prec == "bf16"))
        errs << QStringLiteral("'precision' must be auto, float32 or bf16 (got '%1')").arg(prec);

    const long long tps = c.value("tokens_per_step").toVariant().toLongLong();
    if (tps > 0) {
        const long long per = c.value("batch_size").toVariant().toLongLong() > 0 ? c.value("batch_size").toVariant().toLongLong() : 8;
        const long long sl = c.value("seq_len").toVariant().toLongLong() > 0 ? c.value("seq_len").toVariant().toLongLong() : 256;
        if (tps % (per * sl) != 0)
            errs << QStringLiteral("'tokens_per_step' (%1) must be a multiple of batch_size × seq_len (%2)").arg(tps).arg(per * sl);
    }

    QString merr;
    bimamba::Mamba2Config m;
    if (!modelConfig(c.value("model"), &m, &merr)) errs << merr;

    if (checkPaths) {
        for (const char* k : {"data", "teacher", "teacher_cache", "init_from"}) {
            const QString p = c.value(k).toString();
            if (!p.isEmpty() && !QFileInfo::exists(p))
                errs << QStringLiteral("'%1': %2 does not exist").arg(k, p);
        }
    }
    return errs;
}

QStringList trainPresetNames() { return {"quickstart", "paper-780m", "paper-1.3b", "paper-2.7b", "custom"}; }

QString trainPresetLabel(const QString& n) {
    if (n == "quickstart") return "Quickstart (small model, CPU, minutes)";
    if (n == "paper-780m") return "Paper: Bi-Mamba 780M";
    if (n == "paper-1.3b") return "Paper: Bi-Mamba 1.3B";
    if (n == "paper-2.7b") return "Paper: Bi-Mamba 2.7B";
    return "Custom";
}

QJsonObject trainPreset(const QString& name, const QString& dataDir) {
    QJsonObject c;
    c["data"] = dataDir;
    if (name == "quickstart" || name == "custom") {
        c["model"] = QJsonObject{{"preset", "small"}, {"binarize", "in_proj+out_proj"}};
        c["steps"] = 300;
        c["seq_len"] = 128;
        c["batch_size"] = 8;
        c["lr"] = 1e-3;
        c["final_lr"] = 1e-4;
        c["warmup_steps"] = 30;
        c["loss"] = "ce";
        c["eval_every"] = 50;
        c["checkpoint_every"] = 50;
        c["seed"] = 0;
        c["device"] = "auto";
        return c;
    }
    const QString size = name.mid(QStringLiteral("paper-").size());
    // The paper: AdamW (0.9, 0.95), wd 0.1, lr 2.5e-4 → 2.5e-5 cosine after
    // 2000 warm-up steps, clip 1.0, bf16, seq 2048, ~0.5M tokens per step,
    // 105B tokens (≈ 200k steps), autoregressive distillation.
    c["model"] = QJsonObject{{"preset", size}, {"binarize", "in_proj+out_proj"}};
    c["steps"] = 200000;
    c["seq_len"] = 2048;
    c["batch_size"] = 8;
    c["tokens_per_step"] = 524288;
    c["lr"] = 2.5e-4;
    c["final_lr"] = 2.5e-5;
    c["warmup_steps"] = 2000;
    c["weight_decay"] = 0.1;
    c["beta1"] = 0.9;
    c["beta2"] = 0.95;
    c["grad_clip"] = 1.0;
    c["loss"] = "soft_ce";
    c["teacher"] = "";
    c["eval_every"] = 1000;
    c["checkpoint_every"] = 1000;
    c["precision"] = "auto";
    c["device"] = "cuda";
    return c;
}

}  // namespace bimamba::ui
