#include "ui/MetricsPlot.h"

#include "ui/MetricsReader.h"
#include "ui/ReportExporter.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QMessageBox>
#include <QPushButton>
#include <QSet>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

namespace bimamba::ui {

namespace {
const QColor kPalette[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28), QColor(0x2c, 0xa0, 0x2c),
                           QColor(0xff, 0x7f, 0x0e), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                           QColor(0xe3, 0x77, 0xc2), QColor(0x7f, 0x7f, 0x7f), QColor(0x17, 0xbe, 0xcf)};
}

// Log-axis ticks that label every range: decades when it spans many, else
// 1-2-5 (or finer) steps within each decade. QCustomPlot's log ticker falls
// back to linear steps below 1.6 decades, which leaves the lower part of a
// log axis (perplexity 75–2000) without a label.
class LogTicks : public QCPAxisTickerLog {
protected:
    QVector<double> createTickVector(double tickStep, const QCPRange& range) override {
        sub_ = 8;
        if (!(range.lower > 0) || !(range.upper > range.lower))
            return QCPAxisTickerLog::createTickVector(tickStep, range);
        const double decades = std::log10(range.upper / range.lower);
        if (decades > 3) return QCPAxisTickerLog::createTickVector(tickStep, range);
        const QVector<double> steps = decades > 1.2   ? QVector<double>{1, 2, 5}
                                      : decades > 0.5 ? QVector<double>{1, 1.5, 2, 3, 5, 7}
                                                      : QVector<double>{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9};
        QVector<double> out;
        for (int e = int(std::floor(std::log10(range.lower))) - 1; e <= int(std::ceil(std::log10(range.upper))); ++e)
            for (double m : steps) out << m * std::pow(10.0, e);  // one beyond each end: trimmed by the caller
        sub_ = 0;
        return out;
    }
    int getSubTickCount(double tickStep) override { return sub_ ? QCPAxisTickerLog::getSubTickCount(tickStep) : 0; }

private:
    int sub_ = 8;
};

const QVector<MetricInfo>& knownMetrics() {
    static const QVector<MetricInfo> m = {
        {"loss", "train", "Training loss"},      {"val_ppl", "val", "Validation perplexity"},
        {"val_loss", "val", "Validation loss"},  {"lr", "train", "Learning rate"},
        {"grad_norm", "train", "Gradient norm"}, {"tok_per_s", "train", "Tokens / s"},
        {"rss_mb", "train", "Host RSS (MB)"}};
    return m;
}

static const MetricInfo* findMetric(const QString& key) {
    for (const auto& m : knownMetrics())
        if (m.key == key) return &m;
    return nullptr;
}

void downsampleMinMax(const QVector<double>& x, const QVector<double>& y, double xmin, double xmax, int columns,
                      QVector<double>& ox, QVector<double>& oy) {
    ox.clear();
    oy.clear();
    const int n = std::min(x.size(), y.size());
    if (n == 0) return;
    int lo = int(std::lower_bound(x.begin(), x.begin() + n, xmin) - x.begin());
    int hi = int(std::upper_bound(x.begin(), x.begin() + n, xmax) - x.begin());  // exclusive
    lo = std::max(0, lo - 1);
    hi = std::min(n, hi + 1);
    columns = std::max(1, columns);
    if (hi - lo <= 2 * columns || !(xmax > xmin)) {
        for (int i = lo; i < hi; ++i) {
            ox.append(x[i]);
            oy.append(y[i]);
        }
        return;
    }
    const double w = (xmax - xmin) / columns;
    int i = lo;
    while (i < hi) {
        const long long col = (long long)std::floor((x[i] - xmin) / w);
        int iMin = -1, iMax = -1;
        int j = i;
        for (; j < hi && (long long)std::floor((x[j] - xmin) / w) == col; ++j) {
            if (std::isnan(y[j])) continue;
            if (iMin < 0 || y[j] < y[iMin]) iMin = j;
            if (iMax < 0 || y[j] > y[iMax]) iMax = j;
        }
        if (iMin >= 0) {
            const int a = std::min(iMin, iMax), b = std::max(iMin, iMax);
            ox.append(x[a]);
            oy.append(y[a]);
            if (b != a) {
                ox.append(x[b]);
                oy.append(y[b]);
            }
        }
        i = j;
    }
}

QVector<double> emaSmooth(const QVector<double>& y, double alpha) {
    if (alpha <= 0) return y;
    QVector<double> out(y.size());
    double acc = 0, norm = 0;
    for (int i = 0; i < y.size(); ++i) {
        if (std::isnan(y[i])) {
            out[i] = y[i];
            continue;
        }
        acc = alpha * acc + (1 - alpha) * y[i];
        norm = alpha * norm + (1 - alpha);
        out[i] = acc / norm;
    }
    return out;
}

MetricsPlot::MetricsPlot(QWidget* parent, bool withControls) : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    if (withControls) {
        auto* bar = new QHBoxLayout;
        metricBox_ = new QComboBox;
        metricBox_->setObjectName("metricBox");
        metricBox_->setToolTip("Every scalar key of the selected runs' metrics.jsonl");
        metricBox_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        metricBox_->setMinimumContentsLength(12);
        xBox_ = new QComboBox;
        xBox_->addItem("Step", "step");
        xBox_->addItem("Tokens", "tokens");
        xBox_->addItem("Wall time (s)", "time");
        xBox_->addItem("Lineage tokens", "lineage");
        xBox_->setItemData(3,
                           "Tokens since the start of the lineage: a run initialised from another run's "
                           "checkpoint (init_from) continues its tokens",
                           Qt::ToolTipRole);
        xBox_->setObjectName("xAxisBox");
        smooth_ = new QSlider(Qt::Horizontal);
        smooth_->setRange(0, 99);
        smooth_->setMinimumWidth(50);
        smooth_->setMaximumWidth(120);
        smooth_->setToolTip("EMA smoothing (display only)");
        smooth_->setObjectName("smoothing");
        log_ = new QCheckBox("Log y");
        log_->setObjectName("logScale");
        logX_ = new QCheckBox("Log x");
        logX_->setObjectName("logX");
        auto* exportBtn = new QPushButton("Export…");
        exportBtn->setObjectName("exportPlot");
        exportBtn->setToolTip("Save this plot as shown (PNG, SVG or PDF)");
        // Two rows, so two plots side by side leave room for the side panel:
        // what is drawn against what, then how.
        bar->addWidget(metricBox_, 1);
        bar->addWidget(new QLabel("vs"));
        bar->addWidget(xBox_);
        auto* bar2 = new QHBoxLayout;
        auto* smoothLabel = new QLabel("Smoothing");
        smoothLabel->setToolTip(smooth_->toolTip());
        bar2->addWidget(smoothLabel);
        bar2->addWidget(smooth_, 1);
        bar2->addWidget(log_);
        bar2->addWidget(logX_);
        bar2->addWidget(exportBtn);
        lay->addLayout(bar);
        lay->addLayout(bar2);
        connect(metricBox_, &QComboBox::activated, this, [this] {
            const QStringList tk = metricBox_->currentData().toString().split('/');
            if (tk.size() == 2) setMetric(tk[1], tk[0]);
        });
        connect(xBox_, &QComboBox::currentIndexChanged, this, [this] { setXAxis(xBox_->currentData().toString()); });
        connect(smooth_, &QSlider::valueChanged, this, [this](int v) { setSmoothing(v / 100.0); });
        connect(log_, &QCheckBox::toggled, this, &MetricsPlot::setLogScale);
        connect(logX_, &QCheckBox::toggled, this, &MetricsPlot::setLogX);
        connect(exportBtn, &QPushButton::clicked, this, &MetricsPlot::exportDialog);
    }
    lay->addWidget(plot_, 1);
    readout_ = new QLabel;
    readout_->setObjectName("readout");
    readout_->setTextFormat(Qt::PlainText);
    readout_->setMinimumHeight(readout_->fontMetrics().height());
    lay->addWidget(readout_);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->setNoAntialiasingOnDrag(true);
    plot_->legend->setVisible(true);
    plot_->legend->setBrush(QColor(255, 255, 255, 220));
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot_->setMinimumSize(320, 200);
    axes_ = {plot_->yAxis, plot_->yAxis2};
    plot_->yAxis2->setVisible(false);
    emptyText_ = new QCPItemText(plot_);  // what to do when there is nothing to draw
    emptyText_->position->setType(QCPItemPosition::ptAxisRectRatio);
    emptyText_->position->setCoords(0.5, 0.45);
    emptyText_->setColor(QColor(0x55, 0x55, 0x55));
    emptyText_->setText("Select one or more runs in the table above\n(or start one with New run…)");
    tracer_ = new QCPItemTracer(plot_);
    tracer_->setStyle(QCPItemTracer::tsCircle);
    tracer_->setSize(7);
    tracer_->setVisible(false);
    connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
        if (!inRedraw_) redraw();
    });
    connect(plot_, &QCustomPlot::mouseMove, this, &MetricsPlot::onMouseMove);
    connect(plot_, &QCustomPlot::mouseWheel, this, [this] { userZoomed_ = true; });
    connect(plot_, &QCustomPlot::mousePress, this, [this] { userZoomed_ = true; });
    connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this] {
        userZoomed_ = false;
        fitAxes();
        redraw();
    });
    plot_->setToolTip("Drag to pan, wheel to zoom, double-click to fit");
    setXAxis("step");
    setMetric("loss");
}

void MetricsPlot::setRuns(const QVector<PlotRun>& runs) {
    curves_.clear();
    for (const auto& r : runs) {
        Curve c;
        c.label = r.label;
        c.reader = r.reader;
        c.lineageTokens = r.lineageTokens;
        c.lossKind = r.lossKind;
        curves_.push_back(c);
    }
    updatePicker();
    rebuild();
    fitAxes();
    redraw();
}

QVector<QPair<QString, QString>> MetricsPlot::availableMetrics() const {
    QVector<QPair<QString, QString>> out;
    QSet<QString> seen;
    for (const QString type : {QStringLiteral("train"), QStringLiteral("val")}) {
        QStringList keys;
        for (const auto& c : curves_)
            if (c.reader)
                for (const QString& k : c.reader->table(type).keys())
                    if (!keys.contains(k)) keys << k;
        // Known metrics in their order first, then the rest by name.
        std::sort(keys.begin(), keys.end(), [](const QString& a, const QString& b) {
            auto rank = [](const QString& k) {
                for (int i = 0; i < knownMetrics().size(); ++i)
                    if (knownMetrics()[i].key == k) return i;
                return int(knownMetrics().size());
            };
            return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
        });
        for (const QString& k : keys)
            if (k != "step") out.push_back({type, k});
    }
    return out;
}

void MetricsPlot::updatePicker() {
    if (!metricBox_) return;
    auto items = availableMetrics();
    if (!items.contains(qMakePair(type_, metric_)))
        items.prepend(qMakePair(type_, metric_));  // keep the choice while data arrives
    QStringList have;
    for (int i = 0; i < metricBox_->count(); ++i) have << metricBox_->itemData(i).toString();
    QStringList want;
    for (const auto& [type, key] : items) want << type + "/" + key;
    if (have != want) {
        QSignalBlocker block(metricBox_);
        metricBox_->clear();
        QSet<QString> keyCount;
        QSet<QString> twice;
        for (const auto& it : items) (keyCount.contains(it.second) ? twice : keyCount).insert(it.second);
        for (const auto& [type, key] : items) {
            const MetricInfo* m = findMetric(key);
            QString label = m && m->type == type ? m->label : key;
            if (twice.contains(key)) label += type == "val" ? " (validation)" : " (training)";
            metricBox_->addItem(label, type + "/" + key);
        }
    }
    const int i = metricBox_->findData(type_ + "/" + metric_);
    if (i >= 0 && i != metricBox_->currentIndex()) {
        QSignalBlocker block(metricBox_);
        metricBox_->setCurrentIndex(i);
    }
}

void MetricsPlot::setMetric(const QString& key, const QString& typeIn) {
    metric_ = key;
    QString type = typeIn;
    if (type.isEmpty()) {
        if (const MetricInfo* m = findMetric(key)) type = m->type;
        for (const auto& [t, k] : availableMetrics())
            if (type.isEmpty() && k == key) type = t;
        if (type.isEmpty()) type = "train";
    }
    type_ = type;
    updatePicker();
    rebuild();
    fitAxes();
    redraw();
}

void MetricsPlot::setXAxis(const QString& x) {
    x_ = x;
    if (xBox_) {
        const int i = xBox_->findData(x);
        if (i >= 0 && i != xBox_->currentIndex()) xBox_->setCurrentIndex(i);
    }
    plot_->xAxis->setLabel(x == "tokens"    ? "Tokens"
                           : x == "time"    ? "Wall time (s)"
                           : x == "lineage" ? "Tokens since the start of the lineage"
                                            : "Step");
    rebuild();
    fitAxes();
    redraw();
}

void MetricsPlot::setSmoothing(double a) {
    alpha_ = std::clamp(a, 0.0, 0.999);
    rebuild();
    redraw();
}

void MetricsPlot::applyScale(QCPAxis* axis, bool on) {
    axis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on) {
        axis->setTicker(QSharedPointer<QCPAxisTickerLog>(new LogTicks));
        // Plain numbers: "eb" at precision 0 printed 150 and 200 both as 2·10².
        axis->setNumberFormat("g");
        axis->setNumberPrecision(6);
    } else {
        axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        axis->setNumberFormat("gb");
        axis->setNumberPrecision(6);
    }
}

void MetricsPlot::setLogScale(bool on) {
    logScale_ = on;
    if (log_ && log_->isChecked() != on) log_->setChecked(on);
    for (auto* a : axes_) applyScale(a, on);
    rebuild();
    fitAxes();
    redraw();
}

void MetricsPlot::setLogX(bool on) {
    logXScale_ = on;
    if (logX_ && logX_->isChecked() != on) logX_->setChecked(on);
    applyScale(plot_->xAxis, on);
    rebuild();
    fitAxes();
    redraw();
}

QVector<QCPAxis*> MetricsPlot::valueAxes() const {
    return axes_.mid(0, axesUsed_);
}

QCPAxis* MetricsPlot::curveAxis(int curve) const {
    return curve >= 0 && curve < curves_.size() ? axes_.value(curves_[curve].axis) : nullptr;
}

void MetricsPlot::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    QTimer::singleShot(0, this, [this] {
        fitLegendColumns();
        plot_->plotLayout()->update(QCPLayoutElement::upLayout);
        redraw();
    });
}

void MetricsPlot::fitAxes() {
    double x0 = INFINITY, x1 = -INFINITY;
    QVector<double> y0(axes_.size(), INFINITY), y1(axes_.size(), -INFINITY);
    for (const auto& c : curves_) {
        for (int i = 0; i < c.x.size(); ++i) {
            x0 = std::min(x0, c.x[i]);
            x1 = std::max(x1, c.x[i]);
            if (logScale_ && c.y[i] <= 0) continue;
            y0[c.axis] = std::min(y0[c.axis], c.y[i]);
            y1[c.axis] = std::max(y1[c.axis], c.y[i]);
        }
    }
    if (!(x1 >= x0)) return;
    if (x1 == x0) {
        x0 = logXScale_ ? x0 / 2 : x0 - 0.5;
        x1 = logXScale_ ? x1 * 2 : x1 + 0.5;
    }
    for (int a = 0; a < axes_.size(); ++a) {
        if (!(y1[a] >= y0[a])) continue;
        if (logScale_) {
            axes_[a]->setRange(y0[a] / 1.15, y1[a] * 1.15);
        } else {
            const double pad =
                y1[a] > y0[a] ? 0.05 * (y1[a] - y0[a]) : std::max(1e-12, std::fabs(y0[a]) * 0.05 + 1e-12);
            axes_[a]->setRange(y0[a] - pad, y1[a] + pad);
        }
    }
    inRedraw_ = true;
    plot_->xAxis->setRange(x0, x1);
    inRedraw_ = false;
}

void MetricsPlot::refresh() {
    updatePicker();
    rebuild();
    if (!userZoomed_) fitAxes();
    redraw();
}

void MetricsPlot::rebuild() {
    const bool lineage = x_ == "lineage";
    const QString xKey = lineage ? QStringLiteral("tokens") : x_;
    for (auto& c : curves_) {
        c.x.clear();
        c.y.clear();
        if (!c.reader) continue;
        const MetricsTable& t = c.reader->table(type_);
        const QVector<double> xs = t.column(xKey), ys = t.column(metric_);
        const double dx = lineage ? c.lineageTokens : 0.0;
        // keep rows with finite x and y (positive where the scale is logarithmic)
        QVector<double> fx, fy;
        fx.reserve(xs.size());
        fy.reserve(xs.size());
        for (int i = 0; i < xs.size() && i < ys.size(); ++i) {
            const double x = xs[i] + dx;
            if (std::isfinite(x) && std::isfinite(ys[i]) && (!logScale_ || ys[i] > 0) && (!logXScale_ || x > 0)) {
                fx.append(x);
                fy.append(ys[i]);
            }
        }
        c.x = fx;
        c.y = emaSmooth(fy, alpha_);
    }
    // Training losses of different kinds (CE vs soft-target CE) are not one
    // quantity: one value axis per kind, the first on the left.
    QStringList kinds;
    const bool byKind = metric_ == "loss" && type_ == "train";
    for (auto& c : curves_) {
        const QString k = byKind ? c.lossKind : QString();
        if (!kinds.contains(k)) kinds << k;
        c.axis = int(kinds.indexOf(k));
    }
    if (kinds.isEmpty()) kinds << QString();
    while (axes_.size() < kinds.size()) {
        auto* a = plot_->axisRect()->addAxis(QCPAxis::atRight);
        applyScale(a, logScale_);
        axes_ << a;
    }
    applyScale(plot_->yAxis2, logScale_);
    axesUsed_ = int(kinds.size());
    const MetricInfo* m = findMetric(metric_);
    const QString base = m && m->type == type_ ? m->label : metric_;
    for (int a = 0; a < axes_.size(); ++a) {
        axes_[a]->setVisible(a < axesUsed_);
        const QString kind = a < kinds.size() ? kinds[a] : QString();
        axes_[a]->setLabel(kind.isEmpty() ? base : base + " — " + kind);
    }
    // keep graph count in sync
    while (plot_->graphCount() > curves_.size()) plot_->removeGraph(plot_->graphCount() - 1);
    while (plot_->graphCount() < curves_.size()) {
        const int i = plot_->graphCount();
        auto* g = plot_->addGraph();
        QPen pen(kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]);
        pen.setWidthF(1.0);  // thin cosmetic pens take Qt's fast stroking path
        pen.setCosmetic(true);
        g->setPen(pen);
        g->setAdaptiveSampling(false);  // our own min/max reduction
    }
    for (int i = 0; i < curves_.size(); ++i) {
        auto* g = plot_->graph(i);
        g->setValueAxis(axes_[curves_[i].axis]);
        QString name = curves_[i].label;
        if (axesUsed_ > 1)  // the axis whose label ends with the same kind
            name += " — " + (curves_[i].lossKind.isEmpty() ? QStringLiteral("loss kind unknown") : curves_[i].lossKind);
        g->setName(name);
    }
    placeLegend(axesUsed_ > 1);
}

// Inside the axis rect (top right) while there is one value axis; below the
// plot, in columns, when several axes narrow the rect and names grow.
void MetricsPlot::placeLegend(bool below) {
    if (below == legendBelow_) return;
    auto* inset = plot_->axisRect()->insetLayout();
    if (below) {
        inset->take(plot_->legend);
        plot_->plotLayout()->addElement(1, 0, plot_->legend);
        plot_->plotLayout()->setRowStretchFactor(1, 0.001);
        plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    } else {
        plot_->plotLayout()->take(plot_->legend);
        plot_->plotLayout()->simplify();
        plot_->legend->setFillOrder(QCPLayoutGrid::foRowsFirst);
        plot_->legend->setWrap(0);
        inset->addElement(plot_->legend, Qt::AlignTop | Qt::AlignRight);
    }
    legendBelow_ = below;
    fitLegendColumns();
}

// Below the plot: as many columns as the widest entry allows in the plot's width.
void MetricsPlot::fitLegendColumns() {
    if (!legendBelow_) return;
    const QFontMetrics fm(plot_->legend->font());
    int widest = 0;
    for (int i = 0; i < plot_->graphCount(); ++i)
        widest = std::max(widest, fm.horizontalAdvance(plot_->graph(i)->name()));
    const QSize icon = plot_->legend->iconSize();
    const int entry = widest + icon.width() + plot_->legend->iconTextPadding() + 16;  // + margins, spacing
    const int cols = std::max(1, std::min(int(plot_->graphCount()), (plot_->width() - 12) / std::max(1, entry)));
    if (plot_->legend->wrap() != cols) {
        plot_->legend->setWrap(cols);
        plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);  // re-flow the entries
    }
}

int MetricsPlot::curveCount() const {
    return curves_.size();
}
int MetricsPlot::displayedPoints(int curve) const {
    return curve >= 0 && curve < plot_->graphCount() ? plot_->graph(curve)->data()->size() : 0;
}

void MetricsPlot::redraw() {
    inRedraw_ = true;
    const QCPRange r = plot_->xAxis->range();
    const int cols = std::max(100, plot_->axisRect()->width());
    bool any = false;
    for (int i = 0; i < curves_.size() && i < plot_->graphCount(); ++i) {
        QVector<double> ox, oy;
        if (logXScale_ && r.lower > 0) {  // pixel columns are even in log x
            QVector<double> lx(curves_[i].x.size());
            for (int k = 0; k < lx.size(); ++k) lx[k] = std::log10(curves_[i].x[k]);
            downsampleMinMax(lx, curves_[i].y, std::log10(r.lower), std::log10(r.upper), cols, ox, oy);
            for (double& v : ox) v = std::pow(10.0, v);
        } else {
            downsampleMinMax(curves_[i].x, curves_[i].y, r.lower, r.upper, cols, ox, oy);
        }
        plot_->graph(i)->setData(ox, oy, true);
        // A curve of one or two points (a single validation so far) would draw nothing visible.
        plot_->graph(i)->setScatterStyle(curves_[i].x.size() <= 2 ? QCPScatterStyle(QCPScatterStyle::ssDisc, 6)
                                                                  : QCPScatterStyle());
        any = any || !curves_[i].x.isEmpty();
    }
    // No empty legend box or bare 0–5 axes: say what to do instead.
    plot_->legend->setVisible(any);
    emptyText_->setVisible(!any);
    emptyText_->setText(curves_.isEmpty() ? "Select one or more runs in the table above\n(or start one with New run…)"
                                          : "The selected runs have no \"" + metric_ + "\" values yet");
    for (auto* axis : QVector<QCPAxis*>{plot_->xAxis} + axes_) axis->setTicks(any), axis->setTickLabels(any);
    // Follow the data while the user has not zoomed in (range covers it all).
    plot_->replot(QCustomPlot::rpQueuedReplot);
    inRedraw_ = false;
    if (!any)
        readout_->setText(curves_.isEmpty() ? "No run selected" : "No data for this metric yet");
    else if (readout_->text().startsWith("No "))
        readout_->setText("Hover over the plot for values");
}

bool MetricsPlot::exportTo(const QString& path, QString* error) {
    redraw();
    const int w = std::max(plot_->width(), 320), h = std::max(plot_->height(), 200);
    return ReportExporter::savePlotFile(plot_, path, w, h, error);
}

void MetricsPlot::exportDialog() {
    QString selected;
    QString path =
        QFileDialog::getSaveFileName(this, "Export plot", metric_ + ".png",
                                     "PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)", &selected);
    if (path.isEmpty()) return;
    if (QFileInfo(path).suffix().isEmpty())
        path += selected.contains("svg") ? ".svg" : selected.contains("pdf") ? ".pdf" : ".png";
    QString err;
    if (!exportTo(path, &err)) QMessageBox::warning(this, "Export plot", err);
}

QString MetricsPlot::readoutAt(double x) const {
    QStringList parts;
    for (const auto& c : curves_) {
        if (c.x.isEmpty()) continue;
        int i = int(std::lower_bound(c.x.begin(), c.x.end(), x) - c.x.begin());
        if (i >= c.x.size()) i = c.x.size() - 1;
        if (i > 0 && std::fabs(c.x[i - 1] - x) < std::fabs(c.x[i] - x)) --i;
        parts << QStringLiteral("%1: %2 = %3 at %4 %5")
                     .arg(c.label, metric_, QString::number(c.y[i], 'g', 6), x_, QString::number(c.x[i], 'g', 8));
    }
    return parts.join("   |   ");
}

void MetricsPlot::onMouseMove(QMouseEvent* e) {
    const double x = plot_->xAxis->pixelToCoord(e->position().x());
    readout_->setText(readoutAt(x));
    if (plot_->graphCount() > 0 && !curves_.isEmpty() && !curves_[0].x.isEmpty()) {
        tracer_->setGraph(plot_->graph(0));
        tracer_->setGraphKey(x);
        tracer_->setVisible(true);
    }
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace bimamba::ui
