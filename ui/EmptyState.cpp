#include "ui/EmptyState.h"

#include <QLabel>

namespace bimamba::ui {

EmptyState::EmptyState(QWidget* view, const QString& hint, QWidget* parent) : QStackedWidget(parent), view_(view) {
    hint_ = new QLabel(hint);
    hint_->setObjectName("emptyHint");
    hint_->setAlignment(Qt::AlignCenter);
    hint_->setWordWrap(true);
    hint_->setMargin(24);
    hint_->setForegroundRole(QPalette::PlaceholderText);
    addWidget(view_);
    addWidget(hint_);
    setEmpty(true);
}

void EmptyState::setHint(const QString& hint) {
    hint_->setText(hint);
}
QString EmptyState::hint() const {
    return hint_->text();
}
void EmptyState::setEmpty(bool empty) {
    setCurrentWidget(empty ? static_cast<QWidget*>(hint_) : view_);
}
bool EmptyState::isEmpty() const {
    return currentWidget() == hint_;
}

}  // namespace bimamba::ui
