#pragma once
#include <functional>
#include <map>
#include <string>

class QObject;

namespace graftlab::test {
using Factory = std::function<QObject*()>;
std::map<std::string, Factory>& registry();
struct Registrar {
    Registrar(const char* name, Factory f) { registry()[name] = std::move(f); }
};
}  // namespace graftlab::test

#define GRAFTLAB_REGISTER_TEST(Class) \
    static graftlab::test::Registrar registrar_##Class(#Class, [] { return static_cast<QObject*>(new Class); })
