#include "ui/RunsPanel.h"

#include "ui/DesktopNotifier.h"
#include "ui/MetricsPlot.h"
#include "ui/MetricsReader.h"
#include "ui/HostsDialog.h"
#include "ui/NewRunDialog.h"
#include "core/base/FileUtil.h"
#include "core/base/Lineage.h"
#include "core/base/LossType.h"
#include "core/base/RunDir.h"
#include "ui/JsonFile.h"
#include "ui/RunManager.h"
#include "ui/RunFilter.h"
#include "ui/RunTableModel.h"

#include <algorithm>

#include <QAction>
#include <QCheckBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QSettings>
#include <QSpinBox>
#include <QFormLayout>
#include <QTimer>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QSet>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSplitter>
#include <QTableView>
#include <QToolBar>
#include <QVBoxLayout>

#include <cmath>

namespace bimamba::ui {

using base::AlertRules;
using base::lineage_token_offset;
using base::loss_kind_label;
using base::loss_type_from_string;

using base::read_run_config;
namespace run_files = base::run_files;
using base::tail_lines;

RunsPanel::RunsPanel(RunManager* manager, QWidget* parent)
    : QWidget(parent), manager_(manager), model_(new RunTableModel(manager->store(), this)) {
    setObjectName("RunsPanel");
    auto* tb = new QToolBar;
    tb->setToolButtonStyle(Qt::ToolButtonTextOnly);
    newAct_ = tb->addAction("New run…", this, &RunsPanel::newRun);
    newAct_->setShortcut(QKeySequence::New);
    stopAct_ = tb->addAction("Stop", this, &RunsPanel::stopSelected);
    stopAct_->setShortcut(QKeySequence("Ctrl+."));
    resumeAct_ = tb->addAction("Resume", this, &RunsPanel::resumeSelected);
    resumeAct_->setShortcut(QKeySequence("Ctrl+R"));
    cloneAct_ = tb->addAction("Clone && edit…", this, &RunsPanel::cloneSelected);
    cloneAct_->setShortcut(QKeySequence("Ctrl+D"));
    importAct_ = tb->addAction("Import run dir…", this, &RunsPanel::importRun);
    importAct_->setShortcut(QKeySequence("Ctrl+I"));
    fetchAct_ = tb->addAction("Fetch", this, &RunsPanel::fetchSelected);
    fetchAct_->setShortcut(QKeySequence("Ctrl+Shift+F"));
    hostsAct_ = tb->addAction("Hosts…", this, &RunsPanel::editHosts);
    hostsAct_->setShortcut(QKeySequence("Ctrl+Shift+H"));
    archiveAct_ = tb->addAction("Archive", this, &RunsPanel::archiveSelected);
    archiveAct_->setShortcut(QKeySequence("Ctrl+Shift+A"));
    alertRulesAct_ = tb->addAction("Alerts…", this, &RunsPanel::editAlertRules);
    for (auto* a : {newAct_, stopAct_, resumeAct_, cloneAct_, importAct_, fetchAct_, hostsAct_, archiveAct_}) {
        a->setShortcutContext(Qt::WindowShortcut);
        a->setToolTip(a->text().remove("…").remove('&') + " (" + a->shortcut().toString(QKeySequence::NativeText) +
                      ")");
    }

    table_ = new QTableView;
    table_->setObjectName("runTable");
    proxy_ = new RunFilterProxy(model_, this);
    table_->setModel(proxy_);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSortIndicator(-1,
                                                 Qt::AscendingOrder);  // the store's order until a header is clicked
    table_->setSortingEnabled(true);
    table_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);

    plotA_ = new MetricsPlot;
    plotA_->setObjectName("lossPlot");
    plotB_ = new MetricsPlot;
    plotB_->setObjectName("pplPlot");
    plotB_->setMetric("val_ppl");
    plotB_->setLogScale(true);

    progress_ = new QProgressBar;
    progress_->setObjectName("runProgress");
    progress_->setRange(0, 1000);
    detail_ = new QLabel;
    detail_->setObjectName("runDetail");
    detail_->setWordWrap(true);
    detail_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    log_ = new QPlainTextEdit;
    log_->setObjectName("runLog");
    log_->setReadOnly(true);
    log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    log_->setMaximumBlockCount(2000);
    log_->setLineWrapMode(QPlainTextEdit::NoWrap);  // log lines and the config diff stay aligned

    auto* plots = new QSplitter(Qt::Horizontal);
    plots->addWidget(plotA_);
    plots->addWidget(plotB_);
    // The selected run's tags and notes, stored in the run database.
    annotations_ = new QWidget;
    auto* al = new QFormLayout(annotations_);
    al->setContentsMargins(0, 0, 0, 0);
    tagsEdit_ = new QLineEdit;
    tagsEdit_->setObjectName("runTags");
    tagsEdit_->setPlaceholderText("baseline, kd, to-rerun");
    tagsEdit_->setToolTip("Tags, separated by commas or spaces; the filter finds them with tag:NAME");
    notesEdit_ = new QPlainTextEdit;
    notesEdit_->setObjectName("runNotes");
    notesEdit_->setPlaceholderText("Notes on this run (saved as you type)");
    notesEdit_->setMaximumHeight(5 * notesEdit_->fontMetrics().lineSpacing() + 12);
    al->addRow("Tags", tagsEdit_);
    al->addRow("Notes", notesEdit_);
    notesTimer_ = new QTimer(this);
    notesTimer_->setSingleShot(true);
    notesTimer_->setInterval(400);
    connect(notesTimer_, &QTimer::timeout, this, &RunsPanel::saveNotes);
    connect(notesEdit_, &QPlainTextEdit::textChanged, this, [this] {
        if (annotId_ >= 0) notesTimer_->start();
    });
    connect(tagsEdit_, &QLineEdit::editingFinished, this, [this] {
        const QStringList tags = parseTags(tagsEdit_->text());
        if (!multiIds_.isEmpty()) {  // several runs: add what was added, remove what was removed
            // Copies: each setTags refreshes the table, which may re-enter loadSharedTags.
            const QList<qint64> ids = multiIds_;
            const QStringList before = commonTags_;
            for (qint64 id : ids)
                if (auto r = manager_->store()->byId(id)) {
                    QStringList t;
                    for (const QString& x : r->tags)
                        if (!before.contains(x) || tags.contains(x)) t << x;
                    for (const QString& x : tags)
                        if (!t.contains(x)) t << x;
                    if (t != r->tags) manager_->store()->setTags(id, t);
                }
            commonTags_ = tags;
            return;
        }
        if (annotId_ < 0) return;
        auto r = manager_->store()->byId(annotId_);
        if (r && r->tags != tags) manager_->store()->setTags(annotId_, tags);
    });
    auto* bottom = new QWidget;
    auto* bl = new QVBoxLayout(bottom);
    bl->setContentsMargins(0, 0, 0, 0);
    bl->addWidget(progress_);
    bl->addWidget(detail_);
    bl->addWidget(annotations_);
    bl->addWidget(log_, 1);
    auto* lower = new QSplitter(Qt::Horizontal);
    lower->addWidget(plots);
    lower->addWidget(bottom);
    lower->setStretchFactor(0, 3);
    lower->setStretchFactor(1, 1);
    lower->setSizes({1000, 360});
    auto* vs = new QSplitter(Qt::Vertical);
    vs->addWidget(table_);
    vs->addWidget(lower);
    vs->setStretchFactor(0, 1);
    vs->setStretchFactor(1, 2);

    filter_ = new QLineEdit;
    filter_->setObjectName("runFilter");
    filter_->setClearButtonEnabled(true);
    filter_->setPlaceholderText(
        "Filter runs: words, or key:value on a run or config field (tag:baseline loss:soft_ce preset:130m seed:2)");
    filter_->setToolTip(
        "All words must match (case-insensitive substrings). Keys: name, group, preset, binarize, loss, "
        "teacher, status, notes, alert, tag (the whole tag: tag:baseline), or any field of the run's resolved "
        "config by dotted path (model.d_model, lr, seed).");
    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& q) {
        proxy_->setQuery(q);
        updatePlots();
        updateDetails();
    });
    tb->addSeparator();
    tb->addWidget(filter_);
    showArchived_ = new QCheckBox("Show archived");
    showArchived_->setObjectName("showArchived");
    showArchived_->setToolTip("List archived runs too (shown in grey italics)");
    connect(showArchived_, &QCheckBox::toggled, this, [this](bool on) {
        proxy_->setShowArchived(on);
        updatePlots();
        updateDetails();
    });
    tb->addWidget(showArchived_);

    auto* lay = new QVBoxLayout(this);
    lay->addWidget(tb);
    lay->addWidget(vs, 1);

    connect(manager_, &RunManager::operationFailed, this, &RunsPanel::showError);
    notifier_ = new DesktopNotifier(this);
    connect(manager_, &RunManager::alertRaised, this, &RunsPanel::notify);
    {
        QSettings st;
        AlertRules rules;
        rules.divergence_factor = st.value("alerts/divergenceFactor", rules.divergence_factor).toDouble();
        rules.stall_factor = st.value("alerts/stallFactor", rules.stall_factor).toDouble();
        rules.stall_min_seconds = st.value("alerts/stallMinSeconds", rules.stall_min_seconds).toDouble();
        manager_->setAlertRules(rules);
    }
    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        updatePlots();
        updateDetails();
    });
    connect(model_, &QAbstractItemModel::modelReset, this, [this] {
        updatePlots();
        updateDetails();
    });
    connect(manager_, &RunManager::runUpdated, this, [this](qint64 id) {
        if (selectedRuns().contains(id)) updateDetails();
    });
    connect(manager_->store(), &RunStore::runChanged, this, [this](qint64 id) {  // tags, notes, alert
        if (selectedRuns().contains(id)) updateDetails();
    });
    connect(manager_, &RunManager::metricsUpdated, this, [this](qint64 id) {
        if (selectedRuns().contains(id)) {
            plotA_->refresh();
            plotB_->refresh();
        }
    });
    updateDetails();
}

QList<qint64> RunsPanel::selectedRuns() const {
    QList<qint64> ids;
    for (const auto& idx : table_->selectionModel()->selectedRows())
        ids << model_->runId(proxy_->mapToSource(idx).row());
    return ids;
}

void RunsPanel::selectRun(qint64 id) {
    const int row = model_->rowOf(id);
    const QModelIndex shown = row >= 0 ? proxy_->mapFromSource(model_->index(row, 0)) : QModelIndex();
    if (shown.isValid()) table_->selectRow(shown.row());
}

void RunsPanel::updatePlots() {
    QVector<PlotRun> runs;
    for (qint64 id : selectedRuns()) {
        auto r = manager_->store()->byId(id);
        auto* m = manager_->metrics(id);
        if (!r || !m) continue;
        PlotRun p{r->name, m, 0, {}};
        try {
            p.lossKind = QString::fromStdString(loss_kind_label(loss_type_from_string(r->loss.toStdString())));
        } catch (const std::exception&) {
            // an unknown loss name: its kind stays unknown
        }
        // Read once per run (the parent's trainer_state.json, its metrics only when the checkpoint is gone).
        auto lin = lineage_.find(id);
        if (lin == lineage_.end()) lin = lineage_.insert(id, lineage_token_offset(r->runDir.toStdString()));
        p.lineageTokens = *lin;
        runs.push_back(p);
    }
    plotA_->setRuns(runs);
    plotB_->setRuns(runs);
}

void RunsPanel::updateDetails() {
    const auto ids = selectedRuns();
    const bool one = ids.size() == 1;
    std::optional<RunRecord> r = one ? manager_->store()->byId(ids.first()) : std::nullopt;
    stopAct_->setEnabled(r && RunManager::isActive(r->status));
    resumeAct_->setEnabled(r && !RunManager::isActive(r->status));
    cloneAct_->setEnabled(bool(r));
    fetchAct_->setEnabled(r && r->isRemote() && !r->remote.isEmpty());
    archiveAct_->setEnabled(!ids.isEmpty());
    bool allArchived = !ids.isEmpty();
    for (qint64 id : ids)
        if (auto a = manager_->store()->byId(id); a && !a->archived) allArchived = false;
    archiveAct_->setText(allArchived ? "Unarchive" : "Archive");
    if (ids.size() > 1)
        loadSharedTags(ids);
    else
        loadAnnotations(r ? r->id : -1);
    if (!r) {
        progress_->setValue(0);
        progress_->setFormat(ids.isEmpty() ? "No run selected" : QStringLiteral("%1 runs selected").arg(ids.size()));
        detail_->setText(ids.size() > 1
                             ? QStringLiteral("<b>What differs</b> between the selected runs: their resolved "
                                              "configs (only the fields that differ) and final metrics.")
                             : QStringLiteral("Select a run to see its progress and log; several to compare them."));
        const QString diff = ids.size() > 1 ? runsDiff(ids) : QString();
        if (log_->toPlainText() != diff) log_->setPlainText(diff);
        return;
    }
    const double frac = r->totalSteps > 0 ? double(r->step) / r->totalSteps : 0.0;
    progress_->setValue(int(1000 * frac));
    QString eta;
    if (r->status == "running" && frac > 0 && frac < 1) {
        auto* m = manager_->metrics(r->id);
        const double t = m ? m->lastValue("train", "time") : NAN;
        if (std::isfinite(t) && t > 0) {
            const int left = int(t * (1 - frac) / frac);
            eta = QStringLiteral(" — about %1 left")
                      .arg(left >= 3600 ? QStringLiteral("%1 h %2 min").arg(left / 3600).arg(left % 3600 / 60)
                                        : QStringLiteral("%1 min %2 s").arg(left / 60).arg(left % 60));
        }
    }
    progress_->setFormat(
        QStringLiteral("%1: step %2 / %3 (%p%)%4").arg(r->status).arg(r->step).arg(r->totalSteps).arg(eta));
    QString d = QStringLiteral("<b>%1</b> — %2<br><small>%3</small>")
                    .arg(r->name.toHtmlEscaped(), r->status, r->runDir.toHtmlEscaped());
    if (r->isRemote()) d += QStringLiteral("<br>on host <b>%1</b>").arg(r->host.toHtmlEscaped());
    if (!r->alert.isEmpty())
        d += QStringLiteral("<br><span style='color:#c62828'>%1 %2</span>")
                 .arg(QString::fromUtf8("\u26a0"), r->alert.toHtmlEscaped());
    if (r->status == "failed" || r->status == "lost") {
        d += QStringLiteral("<br><span style='color:#c62828'>%1</span>")
                 .arg(r->message.toHtmlEscaped().replace('\n', "<br>"));
    } else if (r->isRemote() && !r->message.isEmpty()) {
        d += QStringLiteral("<br>%1").arg(r->message.toHtmlEscaped().replace('\n', "<br>"));
    }
    detail_->setText(d);
    QString text = QString::fromStdString(tail_lines(QDir(r->runDir).filePath(run_files::kTrainLog).toStdString(), 40));
    const QString err =
        QString::fromStdString(tail_lines(QDir(r->runDir).filePath(run_files::kStderr).toStdString(), 20));
    if (!err.isEmpty()) text += (text.isEmpty() ? "" : "\n--- stderr ---\n") + err;
    if (text.isEmpty() && r->isRemote())  // status and metrics are mirrored live; the log comes with Fetch
        text = QStringLiteral(
                   "The training log stays on host %1\nuntil you Fetch the run;\n"
                   "its status and metrics arrive\nhere live.")
                   .arg(r->host);
    if (log_->toPlainText() != text) {
        log_->setPlainText(text);
        log_->moveCursor(QTextCursor::End);
    }
}

void RunsPanel::loadSharedTags(const QList<qint64>& ids) {
    loadAnnotations(-1);
    annotations_->setVisible(true);
    QStringList common;
    bool first = true;
    for (qint64 id : ids)
        if (auto r = manager_->store()->byId(id)) {
            if (first)
                common = r->tags;
            else
                common.erase(std::remove_if(common.begin(), common.end(),
                                            [&](const QString& t) { return !r->tags.contains(t); }),
                             common.end());
            first = false;
        }
    const bool other = multiIds_ != ids;
    multiIds_ = ids;
    if (other || !tagsEdit_->hasFocus()) {
        commonTags_ = common;
        if (parseTags(tagsEdit_->text()) != common) tagsEdit_->setText(common.join(", "));
    }
    tagsEdit_->setToolTip(QStringLiteral("The tags all %1 selected runs share: a tag added here is added to each, "
                                         "one removed is removed from each")
                              .arg(ids.size()));
    notesEdit_->setEnabled(false);
    if (!notesEdit_->toPlainText().isEmpty()) notesEdit_->clear();
    notesEdit_->setPlaceholderText("Select one run to edit its notes");
}

void RunsPanel::loadAnnotations(qint64 id) {
    if (annotId_ != id && notesTimer_->isActive()) {  // the previous run's notes, not saved yet
        notesTimer_->stop();
        saveNotes();
    }
    if (!multiIds_.isEmpty() && id >= 0) {  // back from several runs to one
        multiIds_.clear();
        commonTags_.clear();
        tagsEdit_->setToolTip("Tags, separated by commas or spaces; the filter finds them with tag:NAME");
        notesEdit_->setEnabled(true);
        notesEdit_->setPlaceholderText("Notes on this run (saved as you type)");
    }
    annotations_->setVisible(id >= 0);
    auto r = id >= 0 ? manager_->store()->byId(id) : std::nullopt;
    if (!r) {
        annotId_ = -1;
        return;
    }
    // Refill when another run is selected, or when the table changed them
    // while the editor is not being typed in.
    const bool other = annotId_ != id;
    annotId_ = -1;  // no save while filling
    const QString tags = r->tags.join(", ");
    if ((other || !tagsEdit_->hasFocus()) && parseTags(tagsEdit_->text()) != r->tags) tagsEdit_->setText(tags);
    if ((other || !notesEdit_->hasFocus()) && notesEdit_->toPlainText() != r->notes) notesEdit_->setPlainText(r->notes);
    annotId_ = id;
}

void RunsPanel::saveNotes() {
    if (annotId_ < 0) return;
    auto r = manager_->store()->byId(annotId_);
    if (r && r->notes != notesEdit_->toPlainText()) manager_->store()->setNotes(annotId_, notesEdit_->toPlainText());
}

void RunsPanel::notify(qint64, const QString& title, const QString& text) {
    notifications_ << title + ": " + text;
    notifier_->notify("Run alert: " + title, text);
    emit message(QString::fromUtf8("\u26a0 ") + title + ": " + text, 15000);  // the status bar too
}

void RunsPanel::editAlertRules() {
    QDialog dlg(this);
    dlg.setWindowTitle("Run alerts");
    auto* form = new QFormLayout(&dlg);
    const AlertRules cur = manager_->alertRules();
    auto* div = new QDoubleSpinBox;
    div->setObjectName("divergenceFactor");
    div->setRange(1.05, 100);
    div->setSingleStep(0.1);
    div->setValue(cur.divergence_factor);
    div->setToolTip("Alert when the smoothed loss rises above this factor × its moving minimum");
    auto* stall = new QDoubleSpinBox;
    stall->setObjectName("stallFactor");
    stall->setRange(1.5, 1000);
    stall->setValue(cur.stall_factor);
    stall->setToolTip("Alert when a live run writes no metric for this many times its usual interval");
    auto* floor = new QSpinBox;
    floor->setObjectName("stallMinSeconds");
    floor->setRange(0, 24 * 3600);
    floor->setSuffix(" s");
    floor->setValue(int(cur.stall_min_seconds));
    floor->setToolTip("…and for at least this long");
    form->addRow(new QLabel("NaN losses always raise an alert."));
    form->addRow("Diverging: loss over its minimum ×", div);
    form->addRow("Stalled: no metric for usual interval ×", stall);
    form->addRow("Stalled: at least", floor);
    auto* bb = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    connect(bb, &QDialogButtonBox::accepted, &dlg, &QDialog::accept);
    connect(bb, &QDialogButtonBox::rejected, &dlg, &QDialog::reject);
    form->addRow(bb);
    if (dlg.exec() != QDialog::Accepted) return;
    AlertRules rules = cur;
    rules.divergence_factor = div->value();
    rules.stall_factor = stall->value();
    rules.stall_min_seconds = floor->value();
    manager_->setAlertRules(rules);
    QSettings st;
    st.setValue("alerts/divergenceFactor", rules.divergence_factor);
    st.setValue("alerts/stallFactor", rules.stall_factor);
    st.setValue("alerts/stallMinSeconds", rules.stall_min_seconds);
}

void RunsPanel::archiveSelected() {
    const auto ids = selectedRuns();
    bool allArchived = !ids.isEmpty();
    for (qint64 id : ids)
        if (auto r = manager_->store()->byId(id); r && !r->archived) allArchived = false;
    for (qint64 id : ids) manager_->store()->setArchived(id, !allArchived);
    if (!ids.isEmpty())
        emit message(QStringLiteral("%1 %2 run(s)%3")
                         .arg(allArchived ? "Restored" : "Archived")
                         .arg(ids.size())
                         .arg(allArchived || proxy_->showArchived() ? "" : ": hidden until Show archived is ticked"));
}

QString RunsPanel::runsDiff(const QList<qint64>& ids) const {
    QVector<RunRecord> runs;
    QVector<QMap<QString, QString>> cfgs;
    QSet<QString> keys;
    for (qint64 id : ids) {
        auto r = manager_->store()->byId(id);
        if (!r) continue;
        const QMap<QString, QString> f = flattenConfig(toQJsonObject(read_run_config(r->runDir.toStdString())));
        for (auto it = f.begin(); it != f.end(); ++it) keys.insert(it.key());
        runs << *r;
        cfgs << f;
    }
    int w = 0;
    for (const auto& r : runs) w = std::max(w, int(r.name.size()));
    auto line = [w](const QString& name, const QString& value) {
        return "  " + name.leftJustified(w) + "  " + value + "\n";
    };
    QString out;
    QStringList sorted = keys.values();
    std::sort(sorted.begin(), sorted.end());
    int differing = 0;
    for (const QString& k : sorted) {
        QSet<QString> values;
        for (const auto& c : cfgs) values.insert(c.value(k, "–"));
        if (values.size() < 2) continue;
        ++differing;
        out += k + "\n";
        for (int i = 0; i < runs.size(); ++i) out += line(runs[i].name, cfgs[i].value(k, "–"));
    }
    if (differing == 0) out += "(the configs are identical)\n";
    out += "\nfinal metrics\n";
    for (int i = 0; i < runs.size(); ++i) {
        auto* m = manager_->metrics(runs[i].id);
        const double loss = m ? m->lastValue("train", "loss") : NAN;
        out += line(runs[i].name,
                    QStringLiteral("step %1  loss %2  best val ppl %3  %4")
                        .arg(runs[i].step)
                        .arg(std::isfinite(loss) ? QString::number(loss, 'f', 4) : "–")
                        .arg(std::isfinite(runs[i].bestValPpl) ? QString::number(runs[i].bestValPpl, 'f', 2) : "–")
                        .arg(runs[i].status));
    }
    return out;
}

void RunsPanel::showError(const QString& title, const QString& text) {
    emit message(title + ": " + text.section('\n', 0, 0), 8000);
    auto* box = new QMessageBox(QMessageBox::Warning, title, text, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName("errorBox");
    box->open();  // non-blocking
}

void RunsPanel::newRun() {
    NewRunDialog dlg(manager_->workspace(), this);
    if (dlg.exec() != QDialog::Accepted) return;
    QString err;
    const qint64 id = dlg.target() == "local"
                          ? manager_->launch(dlg.runName(), dlg.group(), dlg.preset(), dlg.config(), &err)
                          : manager_->launchRemote(dlg.runName(), dlg.group(), dlg.preset(), dlg.config(), dlg.target(),
                                                   dlg.syncData(), &err);
    if (id >= 0) selectRun(id);
    if (!err.isEmpty()) showError("Could not launch the run", err);
}

void RunsPanel::stopSelected() {
    for (qint64 id : selectedRuns()) {
        QString err;
        if (!manager_->stop(id, &err)) showError("Stop", err);
    }
}

void RunsPanel::resumeSelected() {
    for (qint64 id : selectedRuns()) {
        QString err;
        if (!manager_->resume(id, &err)) showError("Resume", err);
    }
}

void RunsPanel::cloneSelected() {
    const auto ids = selectedRuns();
    if (ids.size() != 1) return;
    auto r = manager_->store()->byId(ids.first());
    if (!r) return;
    QJsonObject cfg = readJsonFile(QDir(r->runDir).filePath(run_files::kLaunchConfig));
    if (cfg.isEmpty()) cfg = toQJsonObject(read_run_config(r->runDir.toStdString()));
    NewRunDialog dlg(manager_->workspace(), this);
    dlg.setConfig(cfg, r->name + "-clone", r->group);
    if (r->isRemote()) dlg.setTarget(r->host);
    if (dlg.exec() != QDialog::Accepted) return;
    QString err;
    const qint64 id = dlg.target() == "local"
                          ? manager_->launch(dlg.runName(), dlg.group(), r->preset, dlg.config(), &err)
                          : manager_->launchRemote(dlg.runName(), dlg.group(), r->preset, dlg.config(), dlg.target(),
                                                   dlg.syncData(), &err);
    if (id >= 0) selectRun(id);
    if (!err.isEmpty()) showError("Could not launch the run", err);
}

void RunsPanel::importRun() {
    const QString dir = QFileDialog::getExistingDirectory(this, "Import a run directory", manager_->workspace());
    if (dir.isEmpty()) return;
    QString err;
    const qint64 id = manager_->importRunDir(dir, &err);
    if (id < 0) return showError("Import", err);
    selectRun(id);
    emit message("Imported " + dir);
}

void RunsPanel::fetchSelected() {
    for (qint64 id : selectedRuns()) {
        QString err;
        if (!manager_->fetch(id, &err)) showError("Fetch", err);
    }
}

void RunsPanel::editHosts() {
    HostsDialog dlg(manager_->workspace(), manager_->cliPath(), this);
    if (dlg.exec() == QDialog::Accepted) emit message("Saved hosts.toml", 4000);
}

}  // namespace bimamba::ui
