#include "ui/HistogramPlot.h"

#include <qcustomplot.h>

namespace bimamba::ui {

QColor colorForSet(const HistogramSet& s, int index) {
    if (s.kind == "full-precision") return QColor(0x1f, 0x77, 0xb4);
    if (s.kind == "bi-mamba") return QColor(0xd6, 0x27, 0x28);
    static const QColor others[] = {QColor(0x2c, 0xa0, 0x2c), QColor(0xff, 0x7f, 0x0e), QColor(0x94, 0x67, 0xbd),
                                    QColor(0x8c, 0x56, 0x4b)};
    return others[index % 4];
}

QColor colorInReport(const Hdf5Report& report, int index) {
    // The first set of a kind keeps the kind's colour (full precision blue,
    // Bi-Mamba red); a second Bi-Mamba set (e.g. in_proj only) gets its own
    // shade rather than the same red.
    const HistogramSet& s = report.histograms[index];
    int before = 0;
    for (int i = 0; i < index; ++i) before += report.histograms[i].kind == s.kind;
    if (before == 0 || (s.kind != "bi-mamba" && s.kind != "full-precision")) return colorForSet(s, index);
    static const QColor bi[] = {QColor(0xe3, 0x77, 0xc2), QColor(0x8c, 0x1c, 0x1c), QColor(0xbc, 0xbd, 0x22)};
    static const QColor fp[] = {QColor(0x17, 0xbe, 0xcf), QColor(0x0b, 0x3c, 0x5d)};
    return s.kind == "bi-mamba" ? bi[(before - 1) % 3] : fp[(before - 1) % 2];
}

namespace {
void addDensity(QCustomPlot* plot, QCPAxisRect* rect, const Histogram& h, const QColor& c, const QString& name,
                bool legend) {
    double total = 0;
    for (qint64 v : h.counts) total += double(v);
    QVector<double> x, y;
    for (int i = 0; i < h.counts.size(); ++i) {
        const double w = h.edges[i + 1] - h.edges[i];
        x << 0.5 * (h.edges[i] + h.edges[i + 1]);
        y << (total > 0 && w > 0 ? double(h.counts[i]) / (total * w) : 0.0);
    }
    auto* g = plot->addGraph(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    g->setData(x, y, true);
    g->setName(name);
    g->setLineStyle(QCPGraph::lsStepCenter);
    QPen pen(c);
    pen.setWidthF(1.3);
    g->setPen(pen);
    QColor fill = c;
    fill.setAlpha(50);
    g->setBrush(fill);
    if (!legend) g->removeFromLegend();
}
}  // namespace

void showHistogramEmptyState(QCustomPlot* plot, const QString& message) {
    plot->clearGraphs();
    plot->plotLayout()->clear();
    plot->legend = nullptr;
    auto* text = new QCPTextElement(plot, message, QFont("sans", 10));
    text->setTextColor(QColor(0x55, 0x55, 0x55));
    plot->plotLayout()->addElement(0, 0, text);
    plot->replot();
}

void plotHistogramOverlay(QCustomPlot* plot, const Hdf5Report& report, int layer, const QString& module) {
    if (report.histograms.isEmpty()) {
        showHistogramEmptyState(plot, "No histograms to show.");
        return;
    }
    plot->clearGraphs();
    plot->plotLayout()->clear();
    auto* rect = new QCPAxisRect(plot);
    plot->plotLayout()->addElement(0, 0, rect);
    // The legend below the axes: inside them it covered the peaks.
    plot->legend = new QCPLegend;
    plot->plotLayout()->addElement(1, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(1, 0.001);
    plot->legend->setLayer("legend");
    plot->legend->setVisible(true);
    int i = 0;
    for (const auto& s : report.histograms) {
        auto l = s.layers.find(layer);
        if (l != s.layers.end()) {
            auto m = l->find(module);
            if (m != l->end())
                addDensity(plot, rect, *m, colorInReport(report, i),
                           QStringLiteral("%1 (σ=%2)").arg(s.name).arg(m->std, 0, 'g', 3), true);
        }
        ++i;
    }
    rect->axis(QCPAxis::atBottom)->setLabel(QStringLiteral("weight value — layer %1, %2").arg(layer).arg(module));
    rect->axis(QCPAxis::atLeft)->setLabel("density");
    plot->rescaleAxes();
    plot->replot();
}

int plotHistogramGrid(QCustomPlot* plot, const Hdf5Report& report) {
    if (report.histograms.isEmpty()) {
        showHistogramEmptyState(plot,
                                "This report holds no weight histograms.\n"
                                "Build one: list checkpoints under \"Histograms of\" (label=checkpoint or run folder,\n"
                                "e.g. fp=runs/teacher,bi=runs/student) and press Build report.");
        return 0;
    }
    plot->clearGraphs();
    plot->plotLayout()->clear();
    const QList<int> layers = report.layers();
    const QStringList modules = report.modules();
    int panels = 0;
    auto* title = new QCPTextElement(plot, "Weight distributions per layer and module", QFont("sans", 11, QFont::Bold));
    plot->plotLayout()->addElement(0, 0, title);
    auto* grid = new QCPLayoutGrid;
    plot->plotLayout()->addElement(1, 0, grid);
    plot->legend = new QCPLegend;
    plot->legend->setVisible(true);
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot->legend->setWrap(6);
    plot->plotLayout()->addElement(2, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(0, 0.01);
    plot->plotLayout()->setRowStretchFactor(2, 0.01);
    for (int r = 0; r < layers.size(); ++r) {
        for (int c = 0; c < modules.size(); ++c) {
            auto* rect = new QCPAxisRect(plot);
            grid->addElement(r, c, rect);
            int i = 0;
            bool any = false;
            for (const auto& s : report.histograms) {
                auto l = s.layers.find(layers[r]);
                if (l != s.layers.end()) {
                    auto m = l->find(modules[c]);
                    if (m != l->end()) {
                        addDensity(plot, rect, *m, colorInReport(report, i), s.name, panels == 0);
                        any = true;
                    }
                }
                ++i;
            }
            auto* x = rect->axis(QCPAxis::atBottom);
            x->setLabel(QStringLiteral("layer %1 · %2").arg(layers[r]).arg(modules[c]));
            QFont f = x->labelFont();
            f.setPointSize(8);
            x->setLabelFont(f);
            x->setTickLabelFont(f);
            rect->axis(QCPAxis::atLeft)->setTickLabelFont(f);
            if (any) ++panels;
            const auto gs = rect->graphs();
            for (int k = 0; k < gs.size(); ++k) gs[k]->rescaleAxes(k > 0);
        }
    }
    plot->replot();
    return panels;
}

}  // namespace bimamba::ui
