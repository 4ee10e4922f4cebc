// libFuzzer target: the files of a run directory the workbench reads while a
// run writes them: metrics.jsonl (read_metrics and the resume rule of
// metrics_rows_kept), status.json (read_run_status) and train_config.json
// (read_run_config). The same bytes are written as all three.
#include <cstdint>
#include <exception>
#include <filesystem>

#include "core/base/MetricsRows.h"
#include "core/base/RunDir.h"
#include "tests/fuzz/FuzzUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::base;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        std::string d = fuzz::scratch("run");
        std::filesystem::create_directories(d);
        return d;
    }();
    for (const char* name : {run_files::kMetrics, run_files::kStatus, run_files::kTrainConfig})
        fuzz::write_bytes(dir + "/" + name, data, size);
    try {
        const auto rows = read_metrics(dir);
        // Kept rows come back in file order with one row per (type, step).
        const auto again = metrics_rows_kept(rows);
        FUZZ_CHECK(again.size() == rows.size());
        const RunStatus s = read_run_status(dir);
        (void)s;
        (void)read_run_config(dir).dump();
    } catch (const std::exception&) {
    }
    return 0;
}
