#pragma once
// A plot or chart that says what to do while it has nothing to show: the view
// and, in its place until there is data, a centred hint (word-wrapped, so it
// is never cut off) instead of empty 0–5 axes.
#include <QStackedWidget>

class QLabel;

namespace bimamba::ui {

class EmptyState : public QStackedWidget {
    Q_OBJECT
public:
    EmptyState(QWidget* view, const QString& hint, QWidget* parent = nullptr);
    void setHint(const QString& hint);
    QString hint() const;
    void setEmpty(bool empty);  // true: the hint; false: the view
    bool isEmpty() const;
    QWidget* view() const { return view_; }

private:
    QWidget* view_;
    QLabel* hint_;
};

}  // namespace bimamba::ui
