#include "ui/Theme.h"

#include <QAbstractAxis>
#include <QApplication>
#include <QChart>
#include <QChartView>
#include <QLegend>
#include <QSettings>
#include <QStyle>
#include <QStyleFactory>
#include <QStyleHints>
#include <qcustomplot.h>

namespace bimamba::ui {

namespace {
// The palette the platform gave the application, taken before the first
// change (init(), or the first choose() where init() was not called).
QPalette& startPalette() {
    static QPalette p = QApplication::palette();
    return p;
}
bool& appliedDark() {
    static bool d = false;
    return d;
}
bool paletteIsDark(const QPalette& p) {
    return p.color(QPalette::Window).lightness() < p.color(QPalette::WindowText).lightness();
}

// Dark: the palette's colours. Light: QCustomPlot's own defaults, put back
// only on a plot that was dark before (a light plot keeps its own styling).
void styleCustomPlot(QCustomPlot* plot) {
    if (!appliedDark() && !plot->property("bimambaDark").toBool()) return;
    plot->setProperty("bimambaDark", appliedDark());
    const QPalette pal = qApp->palette();
    const QColor base = pal.color(QPalette::Base), text = pal.color(QPalette::Text);
    QColor grid = pal.color(QPalette::Mid);
    grid.setAlpha(appliedDark() ? 160 : 255);
    plot->setBackground(appliedDark() ? QBrush(base) : QBrush(Qt::white));
    for (QCPAxisRect* rect : plot->axisRects()) {
        for (QCPAxis* axis : rect->axes()) {
            const QColor c = appliedDark() ? text : QColor(Qt::black);
            axis->setBasePen(QPen(c));
            axis->setTickPen(QPen(c));
            axis->setSubTickPen(QPen(c));
            axis->setTickLabelColor(c);
            axis->setLabelColor(c);
            if (axis->grid()) axis->grid()->setPen(QPen(appliedDark() ? grid : QColor(200, 200, 200), 0, Qt::DotLine));
        }
    }
    for (int i = 0; i < plot->plotLayout()->elementCount(); ++i)
        if (auto* title = qobject_cast<QCPTextElement*>(plot->plotLayout()->elementAt(i)))
            title->setTextColor(appliedDark() ? text : QColor(Qt::black));
    if (plot->legend) {
        QColor bg = appliedDark() ? base : QColor(Qt::white);
        bg.setAlpha(220);
        plot->legend->setBrush(bg);
        plot->legend->setTextColor(appliedDark() ? text : QColor(Qt::black));
        plot->legend->setBorderPen(QPen(appliedDark() ? grid : QColor(Qt::black)));
    }
}
}  // namespace

void Theme::init() {
    startPalette();
#if QT_VERSION >= QT_VERSION_CHECK(6, 5, 0)
    QObject::connect(QGuiApplication::styleHints(), &QStyleHints::colorSchemeChanged, qApp, [] {
        if (chosen() == ColorScheme::System) apply(desktopPrefersDark());
    });
#endif
    const ColorScheme s = chosen();
    apply(s == ColorScheme::Dark || (s == ColorScheme::System && desktopPrefersDark()));
}

QString Theme::name(ColorScheme s) {
    return s == ColorScheme::Dark ? "dark" : s == ColorScheme::Light ? "light" : "system";
}

ColorScheme Theme::parse(const QString& s, ColorScheme fallback) {
    const QString v = s.trimmed().toLower();
    if (v == "dark") return ColorScheme::Dark;
    if (v == "light") return ColorScheme::Light;
    if (v == "system") return ColorScheme::System;
    return fallback;
}

ColorScheme Theme::chosen() {
    const QString set = QSettings().value("view/colorScheme").toString();
    if (!set.isEmpty()) return parse(set);
    return parse(qEnvironmentVariable("BIMAMBA_COLOR_SCHEME"));
}

bool Theme::desktopPrefersDark() {
#if QT_VERSION >= QT_VERSION_CHECK(6, 5, 0)
    const Qt::ColorScheme cs = QGuiApplication::styleHints()->colorScheme();
    if (cs != Qt::ColorScheme::Unknown) return cs == Qt::ColorScheme::Dark;
#endif
    if (qEnvironmentVariable("GTK_THEME").toLower().contains(":dark")) return true;
    return paletteIsDark(startPalette());
}

bool Theme::isDark() {
    return appliedDark();
}

void Theme::choose(ColorScheme s) {
    QSettings().setValue("view/colorScheme", name(s));
    apply(s == ColorScheme::Dark || (s == ColorScheme::System && desktopPrefersDark()));
}

QPalette Theme::darkPalette() {
    QPalette p;
    const QColor window(0x2b, 0x2d, 0x30), base(0x1e, 0x1f, 0x22), text(0xdf, 0xe1, 0xe5), button(0x35, 0x37, 0x3b);
    const QColor highlight(0x2f, 0x6f, 0xb6), link(0x6c, 0xb4, 0xff), disabled(0x80, 0x83, 0x88);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, QColor(0x26, 0x28, 0x2b));
    p.setColor(QPalette::ToolTipBase, QColor(0x3c, 0x3f, 0x41));
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, disabled);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, button);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, QColor(0xff, 0x6b, 0x6b));
    p.setColor(QPalette::Light, QColor(0x48, 0x4a, 0x4e));
    p.setColor(QPalette::Midlight, QColor(0x3c, 0x3e, 0x42));
    p.setColor(QPalette::Mid, QColor(0x55, 0x58, 0x5d));
    p.setColor(QPalette::Dark, QColor(0x18, 0x19, 0x1b));
    p.setColor(QPalette::Shadow, QColor(0x0c, 0x0c, 0x0d));
    p.setColor(QPalette::Highlight, highlight);
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, link);
    p.setColor(QPalette::LinkVisited, QColor(0xb0, 0x8c, 0xff));
    for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        p.setColor(QPalette::Disabled, role, disabled);
    p.setColor(QPalette::Disabled, QPalette::Base, window);
    p.setColor(QPalette::Disabled, QPalette::Highlight, QColor(0x44, 0x47, 0x4c));
    return p;
}

void Theme::apply(bool dark) {
    startPalette();
    appliedDark() = dark;
    if (dark) {
        // Fusion draws every control from the palette (platform styles may not).
        if (QString(qApp->style()->metaObject()->className()) != "QFusionStyle")
            if (QStyle* fusion = QStyleFactory::create("Fusion")) qApp->setStyle(fusion);
        qApp->setPalette(darkPalette());
    } else {
        qApp->setPalette(paletteIsDark(startPalette()) ? qApp->style()->standardPalette() : startPalette());
    }
    for (QWidget* w : QApplication::topLevelWidgets()) styleDataViews(w);
}

void Theme::styleDataViews(QWidget* root) {
    for (QCustomPlot* plot : root->findChildren<QCustomPlot*>()) {
        if (!plot->property("bimambaThemed").toBool()) {
            plot->setProperty("bimambaThemed", true);
            QObject::connect(plot, &QCustomPlot::beforeReplot, plot, [plot] { styleCustomPlot(plot); });
        }
        plot->replot();
    }
    for (QChartView* view : root->findChildren<QChartView*>()) styleChart(view->chart());
}

void Theme::styleChart(QChart* chart) {
    if (!chart) return;
    const QPalette pal = qApp->palette();
    const bool dark = appliedDark();
    const QColor bg = dark ? pal.color(QPalette::Base) : QColor(Qt::white);
    const QColor text = dark ? pal.color(QPalette::Text) : QColor(0x40, 0x40, 0x40);
    const QColor grid = dark ? pal.color(QPalette::Mid) : QColor(0xd8, 0xd8, 0xd8);
    chart->setBackgroundBrush(bg);
    chart->setPlotAreaBackgroundVisible(false);
    chart->setTitleBrush(text);
    chart->legend()->setLabelColor(text);
    for (QAbstractAxis* a : chart->axes()) {
        a->setLabelsColor(text);
        a->setTitleBrush(text);
        a->setGridLineColor(grid);
        a->setLinePenColor(grid);
    }
}

}  // namespace bimamba::ui
