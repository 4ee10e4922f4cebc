#pragma once
// Weight-histogram figures in the style of the paper's Figures 2 and 8–10:
// one panel per (layer, module), each overlaying the sets of a report
// (full-precision Mamba-2, Bi-Mamba rescaled weights, PTQ baselines) as
// densities, so sets with different bins compare.
#include "ui/Hdf5Report.h"

#include <QColor>

class QCustomPlot;

namespace bimamba::ui {

QColor colorForSet(const HistogramSet& s, int index);
// The colour of report.histograms[index]: its kind's, distinct shades for a
// second set of the same kind.
QColor colorInReport(const Hdf5Report& report, int index);
// One panel: layer `layer`, module `module`, every set overlaid.
// Replaces the plot with a line of text saying what to do (no empty axes).
void showHistogramEmptyState(QCustomPlot* plot, const QString& message);
void plotHistogramOverlay(QCustomPlot* plot, const Hdf5Report& report, int layer, const QString& module);
// Small multiples: rows = layers, columns = modules. Returns panels drawn.
int plotHistogramGrid(QCustomPlot* plot, const Hdf5Report& report);

}  // namespace bimamba::ui
