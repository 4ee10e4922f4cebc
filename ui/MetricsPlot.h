#pragma once
// Dense live curves of one metric for several runs (QCustomPlot): x = step,
// tokens or wall time; EMA smoothing and log scale for display; hover
// read-out. Curves are drawn from a min/max-per-pixel-column reduction of
// the visible range; the data itself is never thinned.
#include <QPointer>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPItemText;
class QCPItemTracer;
class QComboBox;
class QCheckBox;
class QSlider;
class QLabel;

namespace bimamba::ui {

class MetricsReader;

// Min/max per pixel column of the points whose x lies in [xmin, xmax] (plus
// one neighbour each side so lines leave the view correctly). `x` must be
// non-decreasing. Output keeps each column's min and max in data order.
void downsampleMinMax(const QVector<double>& x, const QVector<double>& y, double xmin, double xmax,
                      int columns, QVector<double>& ox, QVector<double>& oy);
// Exponential moving average (debiased like TensorBoard); NaNs pass through.
QVector<double> emaSmooth(const QVector<double>& y, double alpha);

struct MetricInfo {
    QString key, type, label;  // e.g. "loss", "train", "Training loss"
};
const QVector<MetricInfo>& knownMetrics();

class MetricsPlot : public QWidget {
    Q_OBJECT
public:
    explicit MetricsPlot(QWidget* parent = nullptr, bool withControls = true);
    void setRuns(const QVector<QPair<QString, MetricsReader*>>& runs);
    void setMetric(const QString& key);
    QString metric() const { return metric_; }
    void setXAxis(const QString& x);   // step | tokens | time
    void setSmoothing(double alpha);   // 0 = off
    void setLogScale(bool on);
    QCustomPlot* plot() const { return plot_; }
    void rebuild();                    // re-reads the series
    void refresh();                    // new data arrived: re-read, follow it unless zoomed, redraw
    int displayedPoints(int curve) const;
    int curveCount() const;
    // Read-out for the point of `curve` nearest to `x`; used by the hover label.
    QString readoutAt(double x) const;

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void redraw();
    void fitAxes();  // from the full data, not the reduced curves
    void onMouseMove(QMouseEvent* e);
    QCustomPlot* plot_;
    QComboBox* metricBox_ = nullptr;
    QComboBox* xBox_ = nullptr;
    QSlider* smooth_ = nullptr;
    QCheckBox* log_ = nullptr;
    QLabel* readout_ = nullptr;
    QCPItemTracer* tracer_ = nullptr;
    QCPItemText* emptyText_ = nullptr;
    QString metric_ = "loss", x_ = "step";
    double alpha_ = 0.0;
    bool logScale_ = false;
    struct Curve {
        QString label;
        QPointer<MetricsReader> reader;
        QVector<double> x, y;  // full data (smoothed when EMA is on)
    };
    QVector<Curve> curves_;
    bool inRedraw_ = false;
    bool userZoomed_ = false;
};

}  // namespace bimamba::ui
