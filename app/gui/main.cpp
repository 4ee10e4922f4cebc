// bimamba-workbench: the Qt desktop workbench.
//   bimamba-workbench [--workspace DIR] [--cli PATH]
//   bimamba-workbench --export-figures RUN_DIR --out DIR   (headless; use QT_QPA_PLATFORM=offscreen)
//   bimamba-workbench --workspace DIR --screenshots DIR [--screenshot-setup FILE.json]  (PNG of every tab)
#include "ui/MainWindow.h"
#include "ui/ReportExporter.h"
#include "ui/Theme.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QTimer>

#include <cstdio>

int main(int argc, char** argv) {
    // Headless modes need no display: pick the offscreen platform unless told otherwise.
    for (int i = 1; i < argc; ++i) {
        const QByteArray a = argv[i];
        if ((a == "--export-figures" || a == "--screenshots") && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
            qputenv("QT_QPA_PLATFORM", "offscreen");
    }
    QApplication app(argc, argv);
    Q_INIT_RESOURCE(resources);  // lives in the static bimamba_ui library
    QCoreApplication::setOrganizationName("BiMamba");
    QCoreApplication::setApplicationName("bimamba-workbench");
    QCoreApplication::setApplicationVersion("0.1.0");
    QApplication::setWindowIcon(QIcon(":/icons/bimamba-workbench.svg"));

    QCommandLineParser p;
    p.setApplicationDescription("BiMamba Workbench: train, evaluate and deploy 1-bit Mamba-2 models");
    p.addHelpOption();
    p.addVersionOption();
    QCommandLineOption ws("workspace", "Workspace folder (run-dir root).", "DIR");
    QCommandLineOption cli("cli", "Path of the bimamba CLI binary.", "PATH");
    QCommandLineOption exp("export-figures", "Render the figures of RUN_DIR headless and exit.", "RUN_DIR");
    QCommandLineOption out("out", "Output folder for --export-figures.", "DIR");
    QCommandLineOption shots("screenshots", "Save a PNG of every tab into DIR and exit.", "DIR");
    QCommandLineOption shotSetup("screenshot-setup",
                                 "With --screenshots: a JSON file that drives the panels first (docs/gui.md).", "FILE");
    p.addOptions({ws, cli, exp, out, shots, shotSetup});
    p.process(app);

    if (p.isSet(exp)) {
        if (!p.isSet(out)) {
            std::fprintf(stderr, "--export-figures needs --out DIR\n");
            return 2;
        }
        QString err;
        const QStringList files = bimamba::ui::ReportExporter::exportRunFigures(p.value(exp), p.value(out), &err);
        for (const auto& f : files) std::printf("%s\n", qPrintable(f));
        if (!err.isEmpty()) std::fprintf(stderr, "%s\n", qPrintable(err));
        return files.isEmpty() ? 1 : 0;
    }

    bimamba::ui::Theme::init();  // light, dark or the desktop's (View → Colour scheme)
    QString workspace = p.value(ws);
    if (workspace.isEmpty())
        workspace = QSettings().value("workspace", QDir::home().filePath("bimamba-workspace")).toString();
    bimamba::ui::MainWindow w(workspace, p.value(cli));
    if (p.isSet(shots)) {
        QJsonObject setup;
        if (p.isSet(shotSetup)) {
            QFile f(p.value(shotSetup));
            QJsonParseError pe{};
            const QJsonDocument doc =
                f.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(f.readAll(), &pe) : QJsonDocument();
            if (!doc.isObject()) {
                std::fprintf(stderr, "--screenshot-setup %s: not a JSON object (%s)\n", qPrintable(p.value(shotSetup)),
                             qPrintable(pe.errorString()));
                return 2;
            }
            setup = doc.object();
        }
        const QStringList files = w.saveScreenshots(p.value(shots), QSize(1400, 860), setup);
        for (const auto& f : files) std::printf("%s\n", qPrintable(f));
        return files.isEmpty() ? 1 : 0;
    }
    w.show();
    return app.exec();
}
