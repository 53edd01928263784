// Runs one registered Qt Test class (first argument), or all of them.
#include "TestRegistry.h"
#include "util/Log.h"
#include "base/util/ThreadEnv.h"

#include <QCoreApplication>
#include <QtTest>

#include <iostream>
#include <memory>

namespace graftlab::test {
std::map<std::string, Factory>& registry() {
    static std::map<std::string, Factory> r;
    return r;
}
}  // namespace graftlab::test

int main(int argc, char** argv) {
    graftlab::ensureThreadEnvironment(argv);  // the thread settings the programs run with (base/util/ThreadEnv.h)
    QCoreApplication app(argc, argv);
    graftlab::setupLogging(false);
    spdlog::set_level(spdlog::level::warn);
    auto& reg = graftlab::test::registry();
    std::vector<std::string> wanted;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (reg.count(argv[i])) wanted.push_back(argv[i]);
        else rest.push_back(argv[i]);
    }
    if (wanted.empty())
        for (auto& [name, f] : reg) wanted.push_back(name);
    int failures = 0;
    for (const auto& name : wanted) {
        std::unique_ptr<QObject> obj(reg[name]());
        failures += QTest::qExec(obj.get(), int(rest.size()), rest.data());
    }
    return failures == 0 ? 0 : 1;
}
