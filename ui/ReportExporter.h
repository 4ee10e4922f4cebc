#pragma once
// Writing figures (PNG, SVG, PDF), tables (CSV, LaTeX) and HDF5 files, and
// the headless figure export of a run directory.
#include <QString>
#include <QStringList>
#include <QVector>

class QCustomPlot;
class QWidget;
class QAbstractItemModel;

namespace bimamba::ui {

class ReportExporter {
public:
    // Writes one file of a QCustomPlot at w×h, PNG, SVG or PDF by the path's extension.
    static bool savePlotFile(QCustomPlot* plot, const QString& path, int w, int h, QString* error);
    // Writes base.png, base.svg and base.pdf of a QCustomPlot at w×h.
    static QStringList savePlot(QCustomPlot* plot, const QString& basePath, int w, int h, QString* error);
    // Same for any widget (Qt Charts views): PNG via grab, SVG/PDF via render.
    static QStringList saveWidget(QWidget* widget, const QString& basePath, QString* error);
    static bool writeCsv(const QStringList& header, const QVector<QStringList>& rows, const QString& path,
                         QString* error);
    static bool writeModelCsv(const QAbstractItemModel* model, const QString& path, QString* error);
    static QString csvEscape(const QString& s);
    // Renders loss and validation-perplexity curves (and the histogram grid
    // when the run folder holds an HDF5 report) to PNG/SVG/PDF, plus
    // metrics CSVs and metrics.h5. Returns the files written.
    static QStringList exportRunFigures(const QString& runDir, const QString& outDir, QString* error);
    // The newest *.h5 report in a folder (report.h5 first), or empty.
    static QString findReport(const QString& dir);
};

}  // namespace bimamba::ui
