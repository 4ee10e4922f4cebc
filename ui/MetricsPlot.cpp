#include "ui/MetricsPlot.h"

#include "ui/MetricsReader.h"

#include <QCheckBox>
#include <QComboBox>
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
        for (const auto& m : knownMetrics()) metricBox_->addItem(m.label, m.key);
        metricBox_->setObjectName("metricBox");
        xBox_ = new QComboBox;
        xBox_->addItem("Step", "step");
        xBox_->addItem("Tokens", "tokens");
        xBox_->addItem("Wall time (s)", "time");
        xBox_->setObjectName("xAxisBox");
        smooth_ = new QSlider(Qt::Horizontal);
        smooth_->setRange(0, 99);
        smooth_->setMaximumWidth(140);
        smooth_->setToolTip("EMA smoothing (display only)");
        smooth_->setObjectName("smoothing");
        log_ = new QCheckBox("Log scale");
        log_->setObjectName("logScale");
        bar->addWidget(new QLabel("Metric"));
        bar->addWidget(metricBox_);
        bar->addSpacing(12);
        bar->addWidget(new QLabel("against"));
        bar->addWidget(xBox_);
        bar->addSpacing(12);
        bar->addWidget(new QLabel("Smoothing"));
        bar->addWidget(smooth_);
        bar->addWidget(log_);
        bar->addStretch(1);
        lay->addLayout(bar);
        connect(metricBox_, &QComboBox::currentIndexChanged, this,
                [this] { setMetric(metricBox_->currentData().toString()); });
        connect(xBox_, &QComboBox::currentIndexChanged, this, [this] { setXAxis(xBox_->currentData().toString()); });
        connect(smooth_, &QSlider::valueChanged, this, [this](int v) { setSmoothing(v / 100.0); });
        connect(log_, &QCheckBox::toggled, this, &MetricsPlot::setLogScale);
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

void MetricsPlot::setRuns(const QVector<QPair<QString, MetricsReader*>>& runs) {
    curves_.clear();
    for (const auto& r : runs) curves_.push_back({r.first, r.second, {}, {}});
    rebuild();
    fitAxes();
    redraw();
}

void MetricsPlot::setMetric(const QString& key) {
    metric_ = key;
    if (metricBox_) {
        const int i = metricBox_->findData(key);
        if (i >= 0 && i != metricBox_->currentIndex()) metricBox_->setCurrentIndex(i);
    }
    const MetricInfo* m = findMetric(key);
    plot_->yAxis->setLabel(m ? m->label : key);
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
    plot_->xAxis->setLabel(x == "tokens" ? "Tokens" : x == "time" ? "Wall time (s)" : "Step");
    rebuild();
    fitAxes();
    redraw();
}

void MetricsPlot::setSmoothing(double a) {
    alpha_ = std::clamp(a, 0.0, 0.999);
    rebuild();
    redraw();
}

void MetricsPlot::setLogScale(bool on) {
    logScale_ = on;
    if (log_ && log_->isChecked() != on) log_->setChecked(on);
    plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (on) {
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
        // Plain numbers: "eb" at precision 0 printed 150 and 200 both as 2·10².
        plot_->yAxis->setNumberFormat("g");
        plot_->yAxis->setNumberPrecision(6);
    } else {
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        plot_->yAxis->setNumberFormat("gb");
        plot_->yAxis->setNumberPrecision(6);
    }
    fitAxes();
    redraw();
}

void MetricsPlot::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    QTimer::singleShot(0, this, [this] {
        plot_->plotLayout()->update(QCPLayoutElement::upLayout);
        redraw();
    });
}

void MetricsPlot::fitAxes() {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& c : curves_) {
        for (int i = 0; i < c.x.size(); ++i) {
            x0 = std::min(x0, c.x[i]);
            x1 = std::max(x1, c.x[i]);
            if (logScale_ && c.y[i] <= 0) continue;
            y0 = std::min(y0, c.y[i]);
            y1 = std::max(y1, c.y[i]);
        }
    }
    if (!(x1 >= x0) || !(y1 >= y0)) return;
    if (x1 == x0) {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if (logScale_) {
        plot_->yAxis->setRange(y0 / 1.15, y1 * 1.15);
    } else {
        const double pad = y1 > y0 ? 0.05 * (y1 - y0) : std::max(1e-12, std::fabs(y0) * 0.05 + 1e-12);
        plot_->yAxis->setRange(y0 - pad, y1 + pad);
    }
    inRedraw_ = true;
    plot_->xAxis->setRange(x0, x1);
    inRedraw_ = false;
}

void MetricsPlot::refresh() {
    rebuild();
    if (!userZoomed_) fitAxes();
    redraw();
}

void MetricsPlot::rebuild() {
    const MetricInfo* m = findMetric(metric_);
    const QString type = m ? m->type : "train";
    for (auto& c : curves_) {
        c.x.clear();
        c.y.clear();
        if (!c.reader) continue;
        const MetricsTable& t = c.reader->table(type);
        const QVector<double> xs = t.column(x_), ys = t.column(metric_);
        // keep rows with finite x and y
        QVector<double> fx, fy;
        fx.reserve(xs.size());
        fy.reserve(xs.size());
        for (int i = 0; i < xs.size() && i < ys.size(); ++i)
            if (std::isfinite(xs[i]) && std::isfinite(ys[i]) && (!logScale_ || ys[i] > 0)) {
                fx.append(xs[i]);
                fy.append(ys[i]);
            }
        c.x = fx;
        c.y = emaSmooth(fy, alpha_);
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
    for (int i = 0; i < curves_.size(); ++i) plot_->graph(i)->setName(curves_[i].label);
}

int MetricsPlot::curveCount() const { return curves_.size(); }
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
        downsampleMinMax(curves_[i].x, curves_[i].y, r.lower, r.upper, cols, ox, oy);
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
    for (auto* axis : {plot_->xAxis, plot_->yAxis}) axis->setTicks(any), axis->setTickLabels(any);
    // Follow the data while the user has not zoomed in (range covers it all).
    plot_->replot(QCustomPlot::rpQueuedReplot);
    inRedraw_ = false;
    if (!any) readout_->setText(curves_.isEmpty() ? "No run selected" : "No data for this metric yet");
    else if (readout_->text().startsWith("No ")) readout_->setText("Hover over the plot for values");
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
