#pragma once
// QString <-> std::string in UTF-8, what core's file layers take and return.
#include <QString>

#include <string>

namespace bimamba::ui {

inline std::string utf8(const QString& s) {
    return s.toUtf8().toStdString();
}
inline QString qstr(const std::string& s) {
    return QString::fromUtf8(s.data(), int(s.size()));
}

}  // namespace bimamba::ui
