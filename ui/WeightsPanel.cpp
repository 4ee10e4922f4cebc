#include "ui/WeightsPanel.h"

#include "ui/RunPicker.h"

#include "ui/CliJob.h"
#include "ui/HistogramPlot.h"
#include "ui/ReportExporter.h"
#include "ui/RunManager.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSlider>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace bimamba::ui {

WeightsPanel::WeightsPanel(RunManager* manager, QWidget* parent) : QWidget(parent), manager_(manager) {
    setObjectName("WeightsPanel");
    auto* lay = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    path_ = new QLineEdit;
    path_->setObjectName("reportPath");
    path_->setPlaceholderText("HDF5 report written by `bimamba report`");
    auto* browse = new QPushButton("Open…");
    auto* load = new QPushButton("Load");
    row->addWidget(new QLabel("Report"));
    row->addWidget(path_, 1);
    row->addWidget(browse);
    row->addWidget(load);
    lay->addLayout(row);
    auto* row2 = new QHBoxLayout;
    hist_ = new QLineEdit;
    hist_->setObjectName("histSpec");
    hist_->setPlaceholderText("fp=CHECKPOINT,bi=CHECKPOINT,gptq2=CHECKPOINT  (bimamba report --hist)");
    auto* build = new QPushButton("Build report");
    build->setToolTip("Runs `bimamba report --hist ...` in the background");
    auto* exportBtn = new QPushButton("Export figures…");
    auto* pick = new QPushButton("Runs…");
    pick->setObjectName("histFromRuns");
    pick->setToolTip("Choose the runs to compare from the run table (their latest checkpoints)");
    row2->addWidget(new QLabel("Histograms of"));
    row2->addWidget(hist_, 1);
    row2->addWidget(pick);
    row2->addWidget(build);
    row2->addWidget(exportBtn);
    lay->addLayout(row2);
    auto* row3 = new QHBoxLayout;
    layer_ = new QSlider(Qt::Horizontal);
    layer_->setObjectName("layerSlider");
    layer_->setRange(0, 0);
    layerLabel_ = new QLabel("layer –");
    layerLabel_->setMinimumWidth(80);
    module_ = new QComboBox;
    module_->setObjectName("moduleBox");
    row3->addWidget(new QLabel("Layer"));
    row3->addWidget(layer_, 1);
    row3->addWidget(layerLabel_);
    row3->addWidget(new QLabel("Module"));
    row3->addWidget(module_);
    lay->addLayout(row3);
    overlay_ = new QCustomPlot;
    overlay_->setObjectName("overlayPlot");
    grid_ = new QCustomPlot;
    grid_->setObjectName("gridPlot");
    stats_ = new QTableWidget;
    stats_->setObjectName("histStats");
    stats_->verticalHeader()->hide();
    stats_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* leftSplit = new QSplitter(Qt::Vertical);
    leftSplit->addWidget(overlay_);
    leftSplit->addWidget(stats_);
    leftSplit->setStretchFactor(0, 3);
    auto* split = new QSplitter;
    split->addWidget(leftSplit);
    split->addWidget(grid_);
    split->setStretchFactor(1, 2);
    split->setSizes({520, 880});  // wide enough for the statistics table's seven columns
    lay->addWidget(split, 1);
    info_ = new QLabel("Open an HDF5 report (bimamba report --hist fp=…,bi=…) to see weight distributions.");
    info_->setObjectName("weightsInfo");
    info_->setWordWrap(true);
    lay->addWidget(info_);

    connect(browse, &QPushButton::clicked, this, [this] {
        const QString p =
            QFileDialog::getOpenFileName(this, "Open report", manager_->workspace(), "HDF5 (*.h5 *.hdf5)");
        if (!p.isEmpty()) loadReport(p);
    });
    connect(load, &QPushButton::clicked, this, [this] { loadReport(path_->text()); });
    connect(layer_, &QSlider::valueChanged, this, [this] { redraw(); });
    connect(module_, &QComboBox::currentTextChanged, this, [this] { redraw(); });
    connect(build, &QPushButton::clicked, this, &WeightsPanel::buildReport);
    connect(pick, &QPushButton::clicked, this, [this] {
        const QStringList runs = RunPicker::choose(
            manager_,
            "Weight histograms of these runs' checkpoints (bimamba report --hist); the first is the reference "
            "the weight distances are measured from.",
            this);
        if (!runs.isEmpty()) hist_->setText(RunPicker::merge(hist_->text(), runs, ","));
    });
    connect(exportBtn, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, "Export figures to", manager_->workspace());
        if (d.isEmpty()) return;
        QString err;
        const auto files = exportFigures(d, &err);
        info_->setText(err.isEmpty() ? QStringLiteral("Wrote %1 files to %2").arg(files.size()).arg(d) : err);
    });

    // Open the workspace's newest report, if any.
    const QString last = QSettings().value("weights/report").toString();
    // (reports/ of the GUI's own exports, else the workspace root, where the
    // quickstart and a study write report.h5)
    QString found = !last.isEmpty() && QFileInfo::exists(last)
                        ? last
                        : ReportExporter::findReport(QDir(manager_->workspace()).filePath("reports"));
    if (found.isEmpty()) found = ReportExporter::findReport(manager_->workspace());
    if (!found.isEmpty()) {
        loadReport(found);
    } else {
        showHistogramEmptyState(
            grid_,
            "No histogram report in this workspace yet.\n"
            "Open a report.h5 (bimamba report --hist, or a study's report stage), or list\n"
            "checkpoints under \"Histograms of\" (label=checkpoint or run folder) and press Build report.");
        showHistogramEmptyState(overlay_, "No report loaded.");
    }
}

bool WeightsPanel::loadReport(const QString& path, QString* error) {
    QString err;
    path_->setText(path);
    Hdf5Report r;
    if (!r.load(path, &err)) {
        info_->setText("<span style='color:#c62828'>" + err.toHtmlEscaped() + "</span>");
        if (error) *error = err;
        return false;
    }
    report_ = r;
    QSettings().setValue("weights/report", path);
    const auto layers = report_.layers();
    {
        const QSignalBlocker b1(layer_), b2(module_);
        layer_->setRange(0, std::max<int>(0, layers.size() - 1));
        layer_->setValue(0);
        module_->clear();
        module_->addItems(report_.modules());
    }
    if (report_.histograms.isEmpty()) {
        info_->setText(path + " holds no /histograms (build the report with --hist).");
    } else {
        QStringList sets;
        for (const auto& s : report_.histograms)
            sets << QStringLiteral("%1 (%2)").arg(s.name, s.kind.isEmpty() ? "?" : s.kind);
        info_->setText(QStringLiteral("%1: %2 sets — %3; layers %4")
                           .arg(QFileInfo(path).fileName())
                           .arg(sets.size())
                           .arg(sets.join(", "))
                           .arg([&] {
                               QStringList l;
                               for (int i : layers) l << QString::number(i);
                               return l.join(", ");
                           }()));
    }
    plotHistogramGrid(grid_, report_);
    redraw();
    return true;
}

void WeightsPanel::setLayerIndex(int i) {
    layer_->setValue(i);
}
void WeightsPanel::setModule(const QString& m) {
    module_->setCurrentText(m);
}

void WeightsPanel::redraw() {
    const auto layers = report_.layers();
    if (layers.isEmpty()) {
        layerLabel_->setText("layer –");
        return;
    }
    const int layer = layers.value(layer_->value(), layers.first());
    layerLabel_->setText(QStringLiteral("layer %1").arg(layer));
    plotHistogramOverlay(overlay_, report_, layer, module_->currentText());
    stats_->clear();
    stats_->setColumnCount(7);
    stats_->setHorizontalHeaderLabels({"Set", "Kind", "Mean", "Std", "Min", "Max", "Elements"});
    stats_->setRowCount(0);
    for (const auto& s : report_.histograms) {
        auto l = s.layers.find(layer);
        if (l == s.layers.end() || !l->contains(module_->currentText())) continue;
        const Histogram& h = (*l)[module_->currentText()];
        const int r = stats_->rowCount();
        stats_->insertRow(r);
        const QStringList cells{s.name,
                                s.kind,
                                QString::number(h.mean, 'g', 3),
                                QString::number(h.std, 'g', 3),
                                QString::number(h.min, 'g', 3),
                                QString::number(h.max, 'g', 3),
                                QString::number(h.numel)};
        for (int c = 0; c < cells.size(); ++c) stats_->setItem(r, c, new QTableWidgetItem(cells[c]));
    }
    stats_->resizeColumnsToContents();
}

QStringList WeightsPanel::exportFigures(const QString& dir, QString* error) {
    QStringList out;
    const auto layers = report_.layers();
    if (layers.isEmpty()) {
        if (error) *error = "no histograms loaded";
        return out;
    }
    out << ReportExporter::savePlot(grid_, QDir(dir).filePath("histogram_grid"), 1200, 300 * layers.size(), error);
    out << ReportExporter::savePlot(
        overlay_,
        QDir(dir).filePath(
            QStringLiteral("histogram_layer%1_%2").arg(layers.value(layer_->value())).arg(module_->currentText())),
        800, 500, error);
    return out;
}

void WeightsPanel::buildReport() {
    if (job_ && job_->isRunning()) return;
    const QString out = QDir(manager_->workspace()).filePath("reports/report.h5");
    QDir().mkpath(QFileInfo(out).absolutePath());
    QStringList args{"report", "--out", out};
    if (!hist_->text().trimmed().isEmpty()) args << "--hist" << hist_->text().trimmed();
    delete job_;
    job_ = new CliJob(manager_->cliPath(), args, this);
    info_->setText("Running " + job_->commandLine() + " …");
    connect(job_, &CliJob::finished, this, [this, out](bool ok, const QString& msg) {
        if (!ok) {
            info_->setText("<span style='color:#c62828'>" + msg.toHtmlEscaped().replace('\n', "<br>") + "</span>");
            return;
        }
        loadReport(out);
    });
    job_->start();
}

}  // namespace bimamba::ui
