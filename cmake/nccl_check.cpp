// Links core/dist/NcclGroup.cpp into a program (CMake's try_compile): NCCL is compiled in only when this builds.
#include "dist/NcclGroup.h"

int main(int argc, char**) {
    // referenced, not run: the check needs no GPU
    if (argc > 99) return graftlab::makeNcclBackend({}, 0, 1, std::chrono::milliseconds(1)).defined() ? 0 : 1;
    return 0;
}
