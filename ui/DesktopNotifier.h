#pragma once
// Desktop notifications for run alerts: through the system tray where there is
// one (QSystemTrayIcon), else through the freedesktop notification service
// on the session bus (org.freedesktop.Notifications, what GNOME, KDE, Xfce
// and notification daemons such as dunst implement), else nowhere (the
// caller still shows the status bar). Calls on the bus are asynchronous: a
// missing or hung service never blocks the event loop.
#include <QDBusConnection>
#include <QObject>
#include <QString>

class QSystemTrayIcon;

namespace bimamba::ui {

class DesktopNotifier : public QObject {
    Q_OBJECT
public:
    enum class Channel { Tray, Freedesktop, None };
    explicit DesktopNotifier(QObject* parent = nullptr);
    // The bus the freedesktop service is looked for on (the session bus by
    // default; tests give a private one).
    void setBus(const QDBusConnection& bus) { bus_ = bus; }
    Channel channel() const;
    static QString channelName(Channel c);
    // Shows one notification; returns the channel it went through.
    Channel notify(const QString& title, const QString& text);

private:
    QDBusConnection bus_;
    QSystemTrayIcon* tray_ = nullptr;
};

}  // namespace bimamba::ui
