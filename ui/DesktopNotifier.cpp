#include "ui/DesktopNotifier.h"

#include <QApplication>
#include <QDBusMessage>
#include <QDBusPendingCall>
#include <QSystemTrayIcon>
#include <QVariantMap>
#include <QWidget>

namespace bimamba::ui {

namespace {
const char* kService = "org.freedesktop.Notifications";
const char* kPath = "/org/freedesktop/Notifications";
}  // namespace

DesktopNotifier::DesktopNotifier(QObject* parent) : QObject(parent), bus_(QDBusConnection::sessionBus()) {}

DesktopNotifier::Channel DesktopNotifier::channel() const {
    if (QSystemTrayIcon::isSystemTrayAvailable() && QSystemTrayIcon::supportsMessages()) return Channel::Tray;
    if (bus_.isConnected()) return Channel::Freedesktop;
    return Channel::None;
}

QString DesktopNotifier::channelName(Channel c) {
    switch (c) {
        case Channel::Tray:
            return "system tray";
        case Channel::Freedesktop:
            return "desktop notification service";
        case Channel::None:
            break;
    }
    return "none";
}

DesktopNotifier::Channel DesktopNotifier::notify(const QString& title, const QString& text) {
    const Channel c = channel();
    if (c == Channel::Tray) {
        if (!tray_) {
            QWidget* w = qobject_cast<QWidget*>(parent());
            tray_ = new QSystemTrayIcon(w ? w->window()->windowIcon() : QApplication::windowIcon(), this);
            tray_->setToolTip("BiMamba Workbench");
            tray_->show();
        }
        tray_->showMessage(title, text, QSystemTrayIcon::Warning, 15000);
    } else if (c == Channel::Freedesktop) {
        // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout)
        QDBusMessage m = QDBusMessage::createMethodCall(kService, kPath, kService, "Notify");
        m << QString("BiMamba Workbench") << uint(0) << QString("dialog-warning") << title << text << QStringList()
          << QVariantMap{{"urgency", QVariant::fromValue(uchar(1))}} << int(15000);
        bus_.asyncCall(m);  // the reply (an id, or an error when no service runs) is not needed
    }
    return c;
}

}  // namespace bimamba::ui
