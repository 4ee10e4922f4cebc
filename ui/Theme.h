#pragma once
// The workbench's colour scheme: light, dark, or the desktop's. The choice is
// the View menu's (QSettings "view/colorScheme"), else $BIMAMBA_COLOR_SCHEME
// (system | light | dark), else the desktop's: Qt 6.5+ asks the platform
// (QStyleHints::colorScheme, followed live); Qt 6.4 (Debian 12) reads the
// platform palette the application started with (a dark desktop theme gives
// it a dark window colour) and GTK_THEME's ":dark" variant.
//
// Plots follow the palette: every QCustomPlot in a window is restyled before
// each replot, and the Qt Charts views take their colours from styleChart(),
// which the panels call after they rebuild a chart's axes. Exported figures
// (ReportExporter) keep their light, print-ready colours.
#include <QPalette>
#include <QString>

class QChart;
class QWidget;

namespace bimamba::ui {

enum class ColorScheme { System, Light, Dark };

class Theme {
public:
    // Remembers the platform palette; call once after QApplication exists and
    // before anything changes the palette. Applies the chosen scheme.
    static void init();
    static ColorScheme chosen();  // setting, else environment, else System
    static QString name(ColorScheme s);
    static ColorScheme parse(const QString& s, ColorScheme fallback = ColorScheme::System);
    // Saves the choice and applies it to the application and every window.
    static void choose(ColorScheme s);
    static bool isDark();              // what is applied now
    static bool desktopPrefersDark();  // what System resolves to
    static QPalette darkPalette();
    // Plots and charts under `root` take the current palette's colours.
    static void styleDataViews(QWidget* root);
    static void styleChart(QChart* chart);

private:
    static void apply(bool dark);
};

}  // namespace bimamba::ui
