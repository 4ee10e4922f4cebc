#pragma once
// What a person would see cut off: walks a window's visible widgets and
// reports every text that does not fit where it is drawn, and every widget
// that lies outside its window (or outside a parent that does not scroll).
//
//   QLabel             each line's advance vs the contents width; rich text
//                      measured through QTextDocument; word-wrapped labels
//                      by their height for the width they have
//   QAbstractButton    the size the style asks for its text and icon vs its size
//   QComboBox          the current text vs the edit field the style draws it in
//   QHeaderView        each visible section's title vs the section size
//   QTabBar            each tab's text vs its rectangle
//   QGroupBox          its title vs the box's width
//   QGraphicsView      (Qt Charts) text items of its scene that the chart
//                      elided ("Bi-M...", "Bo…"): axis labels, legend entries
//   QListView, QTableView  each visible cell's text (and check box) vs its
//                      rectangle; a cell that does not fit needs a tooltip
//
// A text that does not fit passes only when it is visibly elided ("…") and
// the widget (or, for a header, the section) has a tooltip with the whole
// text. Used by tests/test_gui_tour.cpp; usable from any Qt Test.
#include <QAbstractButton>
#include <QCheckBox>
#include <QRadioButton>
#include <QRegularExpression>
#include <QAbstractItemModel>
#include <QAbstractScrollArea>
#include <QComboBox>
#include <QGraphicsScene>
#include <QGraphicsTextItem>
#include <QGraphicsView>
#include <QGroupBox>
#include <QStyleOptionGroupBox>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QTableView>
#include <QStyleOptionComboBox>
#include <QTabBar>
#include <QTextDocument>
#include <QWidget>

namespace bimamba::test {

struct TextProblem {
    QString where;  // class, object name and the chain of named parents
    QString text;
    int needed = 0, available = 0;
    QString why;
    QString describe() const {
        return QStringLiteral("%1: \"%2\" %3 (needs %4 px, has %5)")
            .arg(where, text.left(80), why)
            .arg(needed)
            .arg(available);
    }
};

namespace detail {

inline QString path(const QWidget* w) {
    QStringList parts;
    for (const QWidget* p = w; p; p = p->parentWidget()) {
        if (p->isWindow()) break;
        const QString name = p->objectName();
        if (p == w || !name.isEmpty())
            parts.prepend(QString::fromLatin1(p->metaObject()->className()) + (name.isEmpty() ? "" : "#" + name));
    }
    return parts.join(" > ");
}

inline bool insideScrollArea(const QWidget* w) {
    for (const QWidget* p = w->parentWidget(); p && !p->isWindow(); p = p->parentWidget())
        if (qobject_cast<const QAbstractScrollArea*>(p)) return true;
    return false;
}

inline bool elidedWithTooltip(const QString& shown, const QString& tooltip) {
    return shown.contains(QChar(0x2026)) && !tooltip.trimmed().isEmpty();
}

inline QStringList lines(const QString& text, bool rich) {
    if (!rich) return text.split('\n');
    QTextDocument doc;
    doc.setHtml(text);
    return doc.toPlainText().split(QChar::ParagraphSeparator).join('\n').split('\n');
}

}  // namespace detail

// Every problem in the visible part of `root`'s window (or of `root` alone).
inline QList<TextProblem> findTextProblems(QWidget* root) {
    QList<TextProblem> out;
    QWidget* window = root->window();
    const QRect windowRect = window->rect();
    QList<QWidget*> widgets = root->findChildren<QWidget*>();
    widgets.prepend(root);
    for (QWidget* w : widgets) {
        if (!w->isVisibleTo(window) || w->isWindow() || w->width() <= 0) continue;
        const QString where = detail::path(w);
        // Geometry: inside the window, and inside a parent that does not scroll.
        if (!detail::insideScrollArea(w)) {
            const QRect inWindow(w->mapTo(window, QPoint(0, 0)), w->size());
            if (!windowRect.contains(inWindow))
                out.append({where, w->metaObject()->className(), inWindow.right() + 1, windowRect.width(),
                            QStringLiteral("lies outside the window (%1,%2 %3x%4)")
                                .arg(inWindow.x())
                                .arg(inWindow.y())
                                .arg(inWindow.width())
                                .arg(inWindow.height())});
            else if (QWidget* p = w->parentWidget(); p && !p->rect().contains(w->geometry()))
                out.append({where, w->metaObject()->className(), w->geometry().right() + 1, p->width(),
                            "sticks out of its parent"});
        }
        const QFontMetrics fm = w->fontMetrics();
        if (auto* label = qobject_cast<QLabel*>(w)) {
            const QString text = label->text();
            if (text.isEmpty()) continue;
            const bool rich = label->textFormat() == Qt::RichText ||
                              (label->textFormat() == Qt::AutoText && Qt::mightBeRichText(text));
            const int avail = label->contentsRect().width() - 2 * label->margin() - std::max(0, label->indent());
            if (label->wordWrap()) {
                const int needH = label->heightForWidth(label->width());
                if (needH > label->height() + 1)
                    out.append({where, text, needH, label->height(), "is wrapped but cut off at the bottom"});
                continue;
            }
            if (detail::elidedWithTooltip(text, label->toolTip())) continue;
            for (const QString& line : detail::lines(text, rich)) {
                const int need = fm.horizontalAdvance(line);
                if (need > avail + 1) {
                    out.append({where, line, need, avail, "is cut off"});
                    break;
                }
                // Elided to the width it has ("Mamba-2 te…" filling the label) with nothing to say the rest.
                if (line.endsWith(QChar(0x2026)) && need >= avail - fm.horizontalAdvance(QStringLiteral("MM\u2026"))) {
                    out.append({where, line, need, avail, "is elided without a tooltip"});
                    break;
                }
            }
        } else if (auto* combo = qobject_cast<QComboBox*>(w)) {
            const QString text = combo->currentText();
            if (text.isEmpty() || detail::elidedWithTooltip(text, combo->toolTip())) continue;
            QStyleOptionComboBox opt;
            opt.initFrom(combo);
            opt.editable = combo->isEditable();
            const QRect field =
                combo->style()->subControlRect(QStyle::CC_ComboBox, &opt, QStyle::SC_ComboBoxEditField, combo);
            const int avail = field.width() - (combo->isEditable() ? 4 : 2);
            const int need = fm.horizontalAdvance(text);
            if (need > avail && combo->toolTip().trimmed().isEmpty())
                out.append({where, text, need, avail, "is cut off in the combo box (no tooltip)"});
        } else if (auto* button = qobject_cast<QAbstractButton*>(w)) {
            const QString text = button->text();
            if (text.isEmpty() || detail::elidedWithTooltip(text, button->toolTip())) continue;
            // The text and icon with the style's margins (not minimumSizeHint(), which
            // also holds the style's minimum button width).
            QStyle* st = button->style();
            const QString shown = QString(text).remove(QRegularExpression("&(?!&)"));
            int need = fm.horizontalAdvance(shown);
            if (!button->icon().isNull()) need += button->iconSize().width() + 4;
            if (qobject_cast<QCheckBox*>(w))
                need += st->pixelMetric(QStyle::PM_IndicatorWidth, nullptr, w) +
                        st->pixelMetric(QStyle::PM_CheckBoxLabelSpacing, nullptr, w);
            else if (qobject_cast<QRadioButton*>(w))
                need += st->pixelMetric(QStyle::PM_ExclusiveIndicatorWidth, nullptr, w) +
                        st->pixelMetric(QStyle::PM_RadioButtonLabelSpacing, nullptr, w);
            else
                need += st->pixelMetric(QStyle::PM_ButtonMargin, nullptr, w) +
                        2 * st->pixelMetric(QStyle::PM_DefaultFrameWidth, nullptr,
                                            w);  // as QCommonStyle sizes CT_PushButton
            if (need > button->width() + 1)
                out.append({where, text, need, button->width(), "is cut off on the button"});
        } else if (auto* header = qobject_cast<QHeaderView*>(w)) {
            const QAbstractItemModel* m = header->model();
            if (!m || header->orientation() != Qt::Horizontal) continue;
            const QFontMetrics hfm(header->font());
            for (int i = 0; i < header->count(); ++i) {
                if (header->isSectionHidden(i)) continue;
                const QString text = m->headerData(i, Qt::Horizontal, Qt::DisplayRole).toString();
                if (text.isEmpty()) continue;
                const int margin = header->style()->pixelMetric(QStyle::PM_HeaderMargin, nullptr, header);
                const int sortArrow =
                    header->isSortIndicatorShown() && header->sortIndicatorSection() == i
                        ? header->style()->pixelMetric(QStyle::PM_HeaderMarkSize, nullptr, header) + margin
                        : 0;
                int need = 0;
                for (const QString& line : text.split('\n')) need = std::max(need, hfm.horizontalAdvance(line));
                need += 2 * margin + sortArrow;
                const int avail = header->sectionSize(i);
                const bool tip = !m->headerData(i, Qt::Horizontal, Qt::ToolTipRole).toString().trimmed().isEmpty();
                if (need > avail + 1 && !tip)
                    out.append({where + QStringLiteral(" section %1").arg(i), text, need, avail,
                                "header is elided without a tooltip"});
            }
        } else if (auto* view = qobject_cast<QAbstractItemView*>(w);
                   view && (qobject_cast<QListView*>(w) || qobject_cast<QTableView*>(w))) {
            const QAbstractItemModel* m = view->model();
            if (!m) continue;
            const QRect port = view->viewport()->rect();
            const int margin = 2 * (view->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, view) + 1);
            const int check = view->style()->pixelMetric(QStyle::PM_IndicatorWidth, nullptr, view) +
                              view->style()->pixelMetric(QStyle::PM_CheckBoxLabelSpacing, nullptr, view);
            const bool wraps = qobject_cast<QListView*>(w) ? qobject_cast<QListView*>(w)->wordWrap()
                                                           : qobject_cast<QTableView*>(w)->wordWrap();
            int reported = 0;
            for (int r = 0; r < std::min(m->rowCount(view->rootIndex()), 500) && reported < 3; ++r)
                for (int c = 0; c < m->columnCount(view->rootIndex()) && reported < 3; ++c) {
                    const QModelIndex idx = m->index(r, c, view->rootIndex());
                    const QRect rect = view->visualRect(idx);
                    if (rect.isEmpty() || !port.intersects(rect)) continue;
                    const QString text = idx.data(Qt::DisplayRole).toString();
                    if (text.isEmpty()) continue;
                    QFont f = view->font();
                    if (const QVariant fv = idx.data(Qt::FontRole); fv.isValid()) f = fv.value<QFont>();
                    int extra = margin;
                    if (idx.data(Qt::CheckStateRole).isValid()) extra += check;
                    if (!idx.data(Qt::DecorationRole).isNull())
                        extra += view->iconSize().isValid() ? view->iconSize().width() + 4 : 20;
                    int need = extra;
                    for (const QString& line : text.split('\n'))
                        need = std::max(need, QFontMetrics(f).horizontalAdvance(line) + extra);
                    // A wrapping view fits a long text in several lines when the row is tall enough.
                    if (wraps && need > rect.width() + 1 &&
                        QFontMetrics(f)
                                .boundingRect(QRect(0, 0, rect.width() - extra, 100000), Qt::TextWordWrap, text)
                                .height() <= rect.height())
                        continue;
                    const bool tip = !idx.data(Qt::ToolTipRole).toString().trimmed().isEmpty();
                    if (need > rect.width() + 1 && !tip) {
                        out.append({where + QStringLiteral(" cell %1,%2").arg(r).arg(c), text, need, rect.width(),
                                    "cell text is elided without a tooltip"});
                        ++reported;
                    }
                }
        } else if (auto* gv = qobject_cast<QGraphicsView*>(w); gv && gv->scene()) {
            for (QGraphicsItem* item : gv->scene()->items()) {
                auto* t = dynamic_cast<QGraphicsTextItem*>(item);
                if (!t || !t->isVisible()) continue;
                const QString text = t->toPlainText();
                const bool elided = text.endsWith("...") || text.endsWith(QChar(0x2026));
                const QGraphicsItem* parent = t->parentItem();
                const bool tip = !t->toolTip().isEmpty() || (parent && !parent->toolTip().isEmpty());
                if (elided && !tip)
                    out.append(
                        {where, text, 0, int(t->boundingRect().width()), "is elided in the chart without a tooltip"});
            }
        } else if (auto* box = qobject_cast<QGroupBox*>(w)) {
            const QString title = box->title();
            if (title.isEmpty()) continue;
            QStyleOptionGroupBox opt;
            opt.initFrom(box);
            opt.text = title;
            opt.subControls =
                QStyle::SC_GroupBoxLabel | (box->isCheckable() ? QStyle::SC_GroupBoxCheckBox : QStyle::SC_None);
            const int need =
                box->style()->subControlRect(QStyle::CC_GroupBox, &opt, QStyle::SC_GroupBoxLabel, box).width();
            const int avail = box->width();
            if (fm.horizontalAdvance(title) > avail - 8 && !detail::elidedWithTooltip(title, box->toolTip()))
                out.append(
                    {where, title, std::max(need, fm.horizontalAdvance(title)), avail, "group box title is cut off"});
        } else if (auto* tabs = qobject_cast<QTabBar*>(w)) {
            for (int i = 0; i < tabs->count(); ++i) {
                const int need = QFontMetrics(tabs->font()).horizontalAdvance(tabs->tabText(i).remove('&')) +
                                 tabs->style()->pixelMetric(QStyle::PM_TabBarTabHSpace, nullptr, tabs);
                const int avail = tabs->tabRect(i).width();
                if (need > avail + 1 && tabs->tabToolTip(i).isEmpty())
                    out.append({where + QStringLiteral(" tab %1").arg(i), tabs->tabText(i), need, avail,
                                "tab text is elided without a tooltip"});
            }
        }
    }
    return out;
}

}  // namespace bimamba::test
