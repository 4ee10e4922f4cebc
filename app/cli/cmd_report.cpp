// `bimamba report`: one HDF5 file (docs/report-format.md) with a run's config
// and metric series, evaluation tables, weight histograms and generations.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli/Command.h"
#include "core/eval/CliText.h"
#include "core/base/FileUtil.h"
#include "core/base/ModelSource.h"
#include "core/model/Checkpoint.h"
#include "core/quant/Ptq.h"
#include "core/report/Report.h"
#include "core/report/WeightHistograms.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::model;
using namespace bimamba::cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kHelp =
    "usage: bimamba report --out FILE.h5 [--run DIR] [--eval FILE.json] [--generations FILE.json] [--hist LIST]\n"
    "  --run DIR          run directory: train_config.json as attributes, metrics.jsonl as series,\n"
    "                     and (without --hist) the histograms of its latest checkpoint\n"
    "  --eval FILE        results of `bimamba eval`\n"
    "  --generations FILE generations of `bimamba generate --out`\n"
    "  --hist LIST        LABEL=CHECKPOINT,...: weight histograms of each (Bi-Mamba: α·sign(W)+β)\n"
    "  --bins N           histogram bins                         (default 100)\n"
    "  --layers L         all | fml (first, middle, last) | 0,3,7 (default fml)\n"
    "With two or more --hist models, the Wasserstein-1 distance of each model's effective weights from the\n"
    "first model's is printed per layer and module (and in units of the first model's std)\n"
    "  --distances-out FILE   also write those distances as JSON\n";

json read_json(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open");
    try {
        return json::parse(f);
    } catch (const json::parse_error& e) {
        throw std::runtime_error(path + ": not valid JSON: " + e.what());
    }
}

std::vector<int> chosen_layers(const Mamba2LM& model, const std::string& layers_arg) {
    std::vector<int> layers;
    if (layers_arg == "fml")
        layers = report::first_middle_last(model->config().n_layer);
    else if (layers_arg != "all")
        for (auto& s : eval::split_list(layers_arg)) layers.push_back(std::stoi(s));
    else
        for (int i = 0; i < model->config().n_layer; ++i) layers.push_back(i);
    return layers;
}

report::HistogramSet histograms_of(const std::string& label, const std::string& ckpt, const Mamba2LM& model, int bins,
                                   const std::string& layers_arg) {
    const std::vector<int> layers = chosen_layers(model, layers_arg);
    report::HistogramSet h;
    h.name = label;
    h.checkpoint = ckpt;
    h.quantization = quant::read_quantization_metadata(ckpt);
    h.kind = !h.quantization.is_null()                    ? "ptq"
             : model->config().binarize != Binarize::None ? "bi-mamba"
                                                          : "full-precision";
    h.modules = report::model_weight_histograms(model, bins, layers);
    return h;
}

int run_report(const Args& args) {
    Options o(args, {"help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"out", "run", "eval", "generations", "hist", "bins", "layers", "distances-out", "help"});
    const std::string out = o.require("out");
    const int bins = (int)o.get_int("bins", 100);
    const std::string layers = o.get("layers", "fml");
    report::ReportContent c;
    if (o.has("run")) {
        c.run_dir = fs::absolute(o.get("run")).string();
        if (fs::exists(c.run_dir + "/train_config.json")) c.run_config = read_json(c.run_dir + "/train_config.json");
        if (fs::exists(c.run_dir + "/metrics.jsonl")) c.metrics_jsonl = c.run_dir + "/metrics.jsonl";
        if (!o.has("hist")) {
            const std::string ckpt = resolve_checkpoint(c.run_dir);
            c.histograms.push_back(
                histograms_of(fs::path(c.run_dir).filename().string(), ckpt, load_model(ckpt), bins, layers));
        }
    }
    if (o.has("eval")) c.eval = read_json(o.get("eval"));
    if (o.has("generations")) c.generations = read_json(o.get("generations"));
    // Histograms of each --hist model, and the distance of each from the first
    // (the reference: the full-precision model in the paper's Figure 2).
    Mamba2LM reference{nullptr};
    std::string ref_label;
    json distances = json::array();
    std::string table;
    for (auto& spec : eval::split_list(o.get("hist", ""))) {
        auto [label, path] = eval::label_and_path(spec);
        const std::string ckpt = resolve_checkpoint(path);
        if (label.empty()) label = model_label(ckpt);
        Mamba2LM model = load_model(ckpt);
        c.histograms.push_back(histograms_of(label, ckpt, model, bins, layers));
        if (!reference) {
            reference = model, ref_label = label;
            continue;
        }
        double sum = 0;
        json rows = json::array();
        for (const auto& d : report::weight_distances(reference, model, chosen_layers(model, layers))) {
            rows.push_back({{"layer", d.layer}, {"module", d.module}, {"w1", d.w1}, {"reference_std", d.ref_std}});
            sum += d.w1 / d.ref_std;
            char buf[160];
            std::snprintf(buf, sizeof buf, "| %s | %d | %s | %.3g | %.3f |\n", label.c_str(), d.layer, d.module.c_str(),
                          d.w1, d.w1 / d.ref_std);
            table += buf;
        }
        distances.push_back({{"label", label},
                             {"reference", ref_label},
                             {"modules", rows},
                             {"mean_w1_over_reference_std", rows.empty() ? 0.0 : sum / rows.size()}});
    }
    report::write_report(out, c);
    std::printf("wrote %s\n", out.c_str());
    if (!distances.empty()) {
        std::printf(
            "\nWeight distance from %s (Wasserstein-1 of the effective weights; /std: in units of %s's std):\n\n"
            "| model | layer | module | W1 | W1/std |\n|---|---:|---|---:|---:|\n%s",
            ref_label.c_str(), ref_label.c_str(), table.c_str());
        for (const auto& d : distances)
            std::printf("mean W1/std of %s: %.3f\n", d["label"].get<std::string>().c_str(),
                        d["mean_w1_over_reference_std"].get<double>());
        if (o.has("distances-out")) {
            write_file_atomic(o.get("distances-out"),
                              json{{"reference", ref_label}, {"models", distances}}.dump(2) + "\n");
            std::printf("wrote %s\n", o.get("distances-out").c_str());
        }
    }
    return 0;
}

CommandRegistrar reg{"report", "write an HDF5 report (config, metrics, eval tables, histograms, generations)",
                     run_report};

}  // namespace
