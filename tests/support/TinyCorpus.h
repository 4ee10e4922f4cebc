#pragma once
// A tiny line corpus for the GUI tests that launch real runs: "The quick brown
// fox ..." lines (as tests/test_cli.cpp makes them) written to DIR/corpus.txt,
// every heldOutEvery-th line to DIR/heldout.txt instead (0: none), and prepared
// by `bimamba prepare` into DIR/data (a 300-piece tokenizer).
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QString>

namespace bimamba::test {

// The prepared data folder, or an empty string with *error saying why.
inline QString prepareTinyCorpus(const QString& cli, const QString& dir, int lines, int heldOutEvery, QString* error) {
    const QString text = QDir(dir).filePath("corpus.txt"), data = QDir(dir).filePath("data");
    QFile f(text), h(QDir(dir).filePath("heldout.txt"));
    if (!f.open(QIODevice::WriteOnly) || (heldOutEvery > 0 && !h.open(QIODevice::WriteOnly))) {
        *error = "cannot write the corpus in " + dir;
        return {};
    }
    for (int i = 0; i < lines; ++i)
        (heldOutEvery > 0 && i % heldOutEvery == 0 ? h : f)
            .write(QStringLiteral("The quick brown fox %1 jumps over the lazy dog number %2.\n")
                       .arg(i % 17)
                       .arg(i % 29)
                       .toUtf8());
    f.close(), h.close();
    QProcess prep;
    prep.start(cli, {"prepare", text, "--out", data, "--unit", "line", "--vocab-size", "300", "--quiet"});
    if (!prep.waitForFinished(120000) || prep.exitCode() != 0) {
        *error = "bimamba prepare failed: " + QString::fromUtf8(prep.readAllStandardError());
        return {};
    }
    return data;
}

}  // namespace bimamba::test
