#include "ui/ReportExporter.h"

#include "ui/Hdf5Report.h"
#include "ui/HistogramPlot.h"
#include "ui/MetricsPlot.h"
#include "ui/MetricsReader.h"
#include "core/base/RunDir.h"

#include <QAbstractItemModel>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QTextStream>
#include <qcustomplot.h>

#include <cmath>

namespace bimamba::ui {

namespace run_files = base::run_files;

bool ReportExporter::savePlotFile(QCustomPlot* plot, const QString& path, int w, int h, QString* error) {
    QDir().mkpath(QFileInfo(path).absolutePath());
    plot->replot(QCustomPlot::rpImmediateRefresh);
    const QString ext = QFileInfo(path).suffix().toLower();
    bool ok = false;
    if (ext == "png") {
        ok = plot->savePng(path, w, h, 2.0);
    } else if (ext == "pdf") {
        ok = plot->savePdf(path, w, h);
    } else if (ext == "svg") {
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(QSize(w, h));
        gen.setViewBox(QRect(0, 0, w, h));
        gen.setTitle(QFileInfo(path).completeBaseName());
        QCPPainter painter;
        if (painter.begin(&gen)) {
            plot->toPainter(&painter, w, h);
            painter.end();
            ok = true;
        }
    } else {
        if (error) *error += "unknown figure format '" + ext + "' (png, svg or pdf)\n";
        return false;
    }
    if (!ok && error) *error += "could not write " + path + "\n";
    return ok;
}

QStringList ReportExporter::savePlot(QCustomPlot* plot, const QString& base, int w, int h, QString* error) {
    QStringList out;
    for (const char* ext : {".png", ".svg", ".pdf"})
        if (savePlotFile(plot, base + ext, w, h, error)) out << base + ext;
    return out;
}

QStringList ReportExporter::saveWidget(QWidget* wdg, const QString& base, QString* error) {
    QStringList out;
    QDir().mkpath(QFileInfo(base).absolutePath());
    const QSize sz = wdg->size().isEmpty() ? QSize(900, 560) : wdg->size();
    if (wdg->size().isEmpty()) wdg->resize(sz);
    if (wdg->grab().save(base + ".png", "PNG"))
        out << base + ".png";
    else if (error)
        *error += "could not write " + base + ".png\n";
    {
        QSvgGenerator gen;
        gen.setFileName(base + ".svg");
        gen.setSize(sz);
        gen.setViewBox(QRect(QPoint(0, 0), sz));
        QPainter p;
        if (p.begin(&gen)) {
            wdg->render(&p);
            p.end();
            out << base + ".svg";
        }
    }
    {
        QPdfWriter pdf(base + ".pdf");
        pdf.setPageSize(QPageSize(QSizeF(sz.width(), sz.height()), QPageSize::Point));
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        pdf.setResolution(72);
        QPainter p;
        if (p.begin(&pdf)) {
            wdg->render(&p);
            p.end();
            out << base + ".pdf";
        }
    }
    return out;
}

QString ReportExporter::csvEscape(const QString& s) {
    if (s.contains(',') || s.contains('"') || s.contains('\n')) return '"' + QString(s).replace("\"", "\"\"") + '"';
    return s;
}

bool ReportExporter::writeCsv(const QStringList& header, const QVector<QStringList>& rows, const QString& path,
                              QString* error) {
    QDir().mkpath(QFileInfo(path).absolutePath());
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) {
        if (error) *error = "cannot write " + path;
        return false;
    }
    QTextStream ts(&f);
    auto line = [&](const QStringList& cells) {
        QStringList esc;
        for (const auto& c : cells) esc << csvEscape(c);
        ts << esc.join(',') << '\n';
    };
    line(header);
    for (const auto& r : rows) line(r);
    ts.flush();
    if (!f.commit()) {
        if (error) *error = "cannot write " + path;
        return false;
    }
    return true;
}

bool ReportExporter::writeModelCsv(const QAbstractItemModel* m, const QString& path, QString* error) {
    QStringList header;
    for (int c = 0; c < m->columnCount(); ++c) header << m->headerData(c, Qt::Horizontal).toString();
    QVector<QStringList> rows;
    for (int r = 0; r < m->rowCount(); ++r) {
        QStringList row;
        for (int c = 0; c < m->columnCount(); ++c) row << m->index(r, c).data().toString();
        rows << row;
    }
    return writeCsv(header, rows, path, error);
}

QString ReportExporter::findReport(const QString& dir) {
    QDir d(dir);
    if (QFileInfo::exists(d.filePath("report.h5"))) return d.filePath("report.h5");
    const auto list = d.entryInfoList({"*.h5"}, QDir::Files, QDir::Time);
    for (const auto& fi : list)
        if (fi.fileName() != "metrics.h5") return fi.absoluteFilePath();
    return {};
}

static bool writeTableCsv(const MetricsTable& t, const QString& path, QString* error) {
    QStringList keys = t.keys();
    std::sort(keys.begin(), keys.end());
    keys.removeAll("step");
    keys.prepend("step");
    QVector<QStringList> rows;
    for (int i = 0; i < t.rows; ++i) {
        QStringList row;
        for (const auto& k : keys) {
            const double v = t.columns.value(k).value(i, NAN);
            row << (std::isfinite(v) ? QString::number(v, 'g', 10) : QString());
        }
        rows << row;
    }
    return ReportExporter::writeCsv(keys, rows, path, error);
}

QStringList ReportExporter::exportRunFigures(const QString& runDir, const QString& outDir, QString* error) {
    QStringList out;
    QString err;
    if (!QFileInfo(runDir).isDir()) {
        if (error) *error = runDir + " is not a folder";
        return out;
    }
    QDir().mkpath(outDir);
    QDir od(outDir);
    MetricsReader reader(QDir(runDir).filePath(run_files::kMetrics));
    reader.poll();
    const QString name = QFileInfo(runDir).fileName();
    if (reader.train().rows + reader.val().rows == 0) {
        err += QStringLiteral("%1 has no metrics yet\n").arg(runDir);
    } else {
        for (const QString metric : {QStringLiteral("loss"), QStringLiteral("val_ppl")}) {
            MetricsPlot plot(nullptr, false);
            plot.resize(900, 560);
            plot.setRuns({{name, &reader}});
            plot.setMetric(metric);
            if (metric == "val_ppl") plot.setLogScale(true);
            out << savePlot(plot.plot(), od.filePath(metric == "loss" ? "loss" : "val_ppl"), 900, 560, &err);
        }
        if (writeTableCsv(reader.train(), od.filePath("metrics_train.csv"), &err))
            out << od.filePath("metrics_train.csv");
        if (writeTableCsv(reader.val(), od.filePath("metrics_val.csv"), &err)) out << od.filePath("metrics_val.csv");
        if (writeMetricsHdf5(reader, runDir, od.filePath("metrics.h5"), &err)) out << od.filePath("metrics.h5");
    }
    const QString report = findReport(runDir);
    if (!report.isEmpty()) {
        Hdf5Report rep;
        QString rerr;
        if (rep.load(report, &rerr) && !rep.histograms.isEmpty()) {
            QCustomPlot plot;
            plot.resize(1200, 300 * std::max<qsizetype>(1, rep.layers().size()));
            if (plotHistogramGrid(&plot, rep) > 0)
                out << savePlot(&plot, od.filePath("histograms"), plot.width(), plot.height(), &err);
        } else if (!rerr.isEmpty()) {
            err += rerr + "\n";
        }
    }
    if (error) *error = err.trimmed();
    return out;
}

}  // namespace bimamba::ui
