#include "ui/TrainConfigJson.h"

#include "core/base/TrainConfig.h"
#include "ui/JsonFile.h"

#include <QJsonDocument>
#include <QRegularExpression>

#include <stdexcept>

namespace bimamba::ui {

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
        if (error)
            *error = QStringLiteral("The config is not valid JSON: %1 (line %2, column %3)")
                         .arg(pe.errorString())
                         .arg(line)
                         .arg(col);
        return false;
    }
    if (!doc.isObject()) {
        if (error) *error = QStringLiteral("The config must be a JSON object ({...})");
        return false;
    }
    *out = doc.object();
    return true;
}

long long modelParameters(const QJsonObject& config, QString* error) {
    bimamba::base::TrainConfig c;
    if (config.contains("model")) c.model = toNlohmann(QJsonObject{{"model", config.value("model")}})["model"];
    try {
        return c.model_config().num_parameters();
    } catch (const std::exception& e) {
        QString m = QString::fromStdString(e.what());
        m.remove(QRegularExpression("^train config: "));
        if (error) *error = m;
        return -1;
    }
}

QStringList trainConfigProblems(const QJsonObject& c, bool checkPaths) {
    QStringList out;
    for (const auto& p : bimamba::base::TrainConfig::problems(toNlohmann(c), checkPaths)) {
        QString m = QString::fromStdString(p);
        if (!m.isEmpty()) m[0] = m[0].toUpper();
        out << m;
    }
    return out;
}

QStringList trainPresetNames() {
    return {"quickstart", "paper-780m", "paper-1.3b", "paper-2.7b", "custom"};
}

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
