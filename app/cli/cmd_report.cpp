// `bimamba report`: one HDF5 file (docs/report-format.md) with a run's config
// and metric series, evaluation tables, weight histograms and generations.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli/Command.h"
#include "core/eval/CliText.h"
#include "core/base/ModelSource.h"
#include "core/model/Checkpoint.h"
#include "core/quant/Ptq.h"
#include "core/report/Report.h"

using namespace bimamba;
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
    "  --layers L         all | fml (first, middle, last) | 0,3,7 (default fml)\n";

json read_json(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open");
    try {
        return json::parse(f);
    } catch (const json::parse_error& e) {
        throw std::runtime_error(path + ": not valid JSON: " + e.what());
    }
}

report::HistogramSet histograms_of(const std::string& label, const std::string& path, int bins, const std::string& layers_arg) {
    const std::string ckpt = resolve_checkpoint(path);
    auto model = load_model(ckpt);
    std::vector<int> layers;
    if (layers_arg == "fml") layers = report::first_middle_last(model->config().n_layer);
    else if (layers_arg != "all")
        for (auto& s : eval::split_list(layers_arg)) layers.push_back(std::stoi(s));
    report::HistogramSet h;
    h.name = label;
    h.checkpoint = ckpt;
    h.quantization = quant::read_quantization_metadata(ckpt);
    h.kind = !h.quantization.is_null() ? "ptq" : model->config().binarize != Binarize::None ? "bi-mamba" : "full-precision";
    h.modules = report::model_weight_histograms(model, bins, layers);
    return h;
}

int run_report(const Args& args) {
    Options o(args, {"help"});
    if (o.has("help")) {
        std::printf("%s", kHelp);
        return 0;
    }
    o.check_known({"out", "run", "eval", "generations", "hist", "bins", "layers", "help"});
    const std::string out = o.require("out");
    const int bins = (int)o.get_int("bins", 100);
    const std::string layers = o.get("layers", "fml");
    report::ReportContent c;
    if (o.has("run")) {
        c.run_dir = fs::absolute(o.get("run")).string();
        if (fs::exists(c.run_dir + "/train_config.json")) c.run_config = read_json(c.run_dir + "/train_config.json");
        if (fs::exists(c.run_dir + "/metrics.jsonl")) c.metrics_jsonl = c.run_dir + "/metrics.jsonl";
        if (!o.has("hist")) c.histograms.push_back(histograms_of(fs::path(c.run_dir).filename().string(), c.run_dir, bins, layers));
    }
    if (o.has("eval")) c.eval = read_json(o.get("eval"));
    if (o.has("generations")) c.generations = read_json(o.get("generations"));
    for (auto& spec : eval::split_list(o.get("hist", ""))) {
        auto [label, path] = eval::label_and_path(spec);
        if (label.empty()) label = model_label(resolve_checkpoint(path));
        c.histograms.push_back(histograms_of(label, path, bins, layers));
    }
    report::write_report(out, c);
    std::printf("wrote %s\n", out.c_str());
    return 0;
}

CommandRegistrar reg{"report", "write an HDF5 report (config, metrics, eval tables, histograms, generations)", run_report};

}  // namespace
