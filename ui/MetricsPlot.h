#pragma once
// Dense live curves of one metric for several runs (QCustomPlot): any scalar
// key of the runs' metrics.jsonl (the picker lists the keys present); x =
// step, tokens, wall time or tokens since the start of the run's lineage
// (core/base/Lineage.h); EMA smoothing, log y and log x for display; runs
// whose training losses are of different kinds (CE, soft-target CE, …) get
// one y axis per kind; hover read-out; export as shown (PNG, SVG, PDF).
// Curves are drawn from a min/max-per-pixel-column reduction of the visible
// range; the data itself is never thinned.
#include <QPointer>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPItemText;
class QCPItemTracer;
class QCPAxis;
class QComboBox;
class QCheckBox;
class QSlider;
class QLabel;

namespace bimamba::ui {

class MetricsReader;

// Min/max per pixel column of the points whose x lies in [xmin, xmax] (plus
// one neighbour each side so lines leave the view correctly). `x` must be
// non-decreasing. Output keeps each column's min and max in data order.
void downsampleMinMax(const QVector<double>& x, const QVector<double>& y, double xmin, double xmax, int columns,
                      QVector<double>& ox, QVector<double>& oy);
// Exponential moving average (debiased like TensorBoard); NaNs pass through.
QVector<double> emaSmooth(const QVector<double>& y, double alpha);

struct MetricInfo {
    QString key, type, label;  // e.g. "loss", "train", "Training loss"
};
const QVector<MetricInfo>& knownMetrics();

// One run as the plot draws it.
struct PlotRun {
    QString label;
    MetricsReader* reader = nullptr;
    double lineageTokens = 0;  // tokens of its ancestors (x = "lineage")
    QString lossKind;          // what its training "loss" measures ("CE", "soft-target CE"); "" = unknown
};

class MetricsPlot : public QWidget {
    Q_OBJECT
public:
    explicit MetricsPlot(QWidget* parent = nullptr, bool withControls = true);
    void setRuns(const QVector<PlotRun>& runs);  // {{label, reader}, …} for plain runs
    // `type`: the line type holding it ("train", "val"); "" = a known
    // metric's, else the first table that has the key.
    void setMetric(const QString& key, const QString& type = {});
    QString metric() const { return metric_; }
    QString metricType() const { return type_; }
    // The (type, key) pairs the picker offers: every scalar key of the runs' tables.
    QVector<QPair<QString, QString>> availableMetrics() const;
    void setXAxis(const QString& x);  // step | tokens | time | lineage
    QString xAxis() const { return x_; }
    void setSmoothing(double alpha);  // 0 = off
    void setLogScale(bool on);        // y
    void setLogX(bool on);
    // The value axes in use (one per loss kind when the curves differ in it)
    // and the axis a curve is drawn on.
    QVector<QCPAxis*> valueAxes() const;
    QCPAxis* curveAxis(int curve) const;
    // Writes the plot as shown (curves, smoothing, axes, legend) to PNG, SVG
    // or PDF by the file's extension.
    bool exportTo(const QString& path, QString* error);
    void exportDialog();
    QCustomPlot* plot() const { return plot_; }
    void rebuild();  // re-reads the series
    void refresh();  // new data arrived: re-read, follow it unless zoomed, redraw
    int displayedPoints(int curve) const;
    int curveCount() const;
    // Read-out for the point of `curve` nearest to `x`; used by the hover label.
    QString readoutAt(double x) const;

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void redraw();
    void fitAxes();       // from the full data, not the reduced curves
    void updatePicker();  // the metric box: the keys the runs have now
    void applyScale(QCPAxis* axis, bool log);
    void onMouseMove(QMouseEvent* e);
    QCustomPlot* plot_;
    QComboBox* metricBox_ = nullptr;
    QComboBox* xBox_ = nullptr;
    QSlider* smooth_ = nullptr;
    QCheckBox* log_ = nullptr;
    QCheckBox* logX_ = nullptr;
    QLabel* readout_ = nullptr;
    QCPItemTracer* tracer_ = nullptr;
    QCPItemText* emptyText_ = nullptr;
    QString metric_ = "loss", type_ = "train", x_ = "step";
    double alpha_ = 0.0;
    bool logScale_ = false, logXScale_ = false;
    struct Curve {
        QString label;
        QPointer<MetricsReader> reader;
        double lineageTokens = 0;
        QString lossKind;
        int axis = 0;          // index into axes_
        QVector<double> x, y;  // full data (smoothed when EMA is on)
    };
    void placeLegend(bool below);
    void fitLegendColumns();
    QVector<QCPAxis*> axes_;  // value axes: yAxis, yAxis2, then extra right axes
    int axesUsed_ = 1;
    bool legendBelow_ = false;  // see placeLegend
    QVector<Curve> curves_;
    bool inRedraw_ = false;
    bool userZoomed_ = false;
};

}  // namespace bimamba::ui
