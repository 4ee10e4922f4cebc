// libFuzzer target: an HDF5 report as the workbench reads it
// (ui::Hdf5Report::loadInProcess, the work of load()'s child process, through
// core/report/Hdf5File; in process so that libFuzzer sees its coverage): root attributes,
// every histogram set, layer and module, the evaluation table and the
// generations. The input is written to a file and loaded. libhdf5 itself is
// not instrumented (its reads are not checked by ASan, only its heap use and
// crashes are seen); our wrapper and the report reader are.
#include <cstdint>
#include <exception>

#include <QString>

#include <hdf5.h>

#include "tests/fuzz/FuzzUtil.h"
#include "ui/Hdf5Report.h"

using namespace bimamba;
using namespace bimamba::ui;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = fuzz::scratch("report.h5");
    fuzz::write_bytes(path, data, size);
    try {
        Hdf5Report r;
        QString error;
        if (r.loadInProcess(QString::fromStdString(path), &error)) {
            for (const auto& set : r.histograms)
                for (const auto& layer : set.layers)
                    for (const auto& h : layer) FUZZ_CHECK(h.valid() && h.edges.size() == h.counts.size() + 1);
            for (const auto& row : r.eval.values) FUZZ_CHECK(row.size() == r.eval.columns.size());
            FUZZ_CHECK(r.eval.values.size() == r.eval.models.size() || r.eval.isEmpty());
            (void)r.layers();
            (void)r.modules();
        } else {
            FUZZ_CHECK(!error.isEmpty());
        }
    } catch (const std::exception&) {
    }
    // Every file, group, dataset, type, space and attribute handle the reader
    // opened is closed again, whatever the input.
    FUZZ_CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    return 0;
}
