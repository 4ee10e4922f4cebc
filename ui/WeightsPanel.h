#pragma once
// The Weights tab: per-layer, per-module weight histograms of an HDF5
// report (full precision vs Bi-Mamba vs PTQ), a layer slider, and the
// small-multiples grid of the paper's Figures 2 and 8–10.
#include "ui/Hdf5Report.h"

#include <QWidget>

class QCustomPlot;
class QSlider;
class QComboBox;
class QLineEdit;
class QLabel;
class QTableWidget;

namespace bimamba::ui {

class RunManager;
class CliJob;

class WeightsPanel : public QWidget {
    Q_OBJECT
public:
    explicit WeightsPanel(RunManager* manager, QWidget* parent = nullptr);
    bool loadReport(const QString& path, QString* error = nullptr);
    const Hdf5Report& report() const { return report_; }
    void setLayerIndex(int i);  // index into report().layers()
    void setModule(const QString& m);
    QCustomPlot* overlayPlot() const { return overlay_; }
    QCustomPlot* gridPlot() const { return grid_; }
    QStringList exportFigures(const QString& dir, QString* error);

private:
    void redraw();
    void buildReport();
    RunManager* manager_;
    Hdf5Report report_;
    QLineEdit* path_;
    QLineEdit* hist_;
    QSlider* layer_;
    QLabel* layerLabel_;
    QComboBox* module_;
    QCustomPlot* overlay_;
    QCustomPlot* grid_;
    QTableWidget* stats_;
    QLabel* info_;
    CliJob* job_ = nullptr;
};

}  // namespace bimamba::ui
