#include "util/CpuFeatures.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <cstdint>
#endif

namespace graftlab {

std::string CpuMatrixIsa::describe() const {
    if (!known) return "unknown (not x86)";
    if (amxBf16) return "AMX-BF16";
    if (avx512Bf16) return "AVX512-BF16 (no AMX)";
    return "no bf16 instructions";
}

#if defined(__x86_64__) || defined(__i386__)
namespace {
uint64_t xcr0() {
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}
}  // namespace

CpuMatrixIsa detectCpuMatrixIsa() {
    CpuMatrixIsa isa;
    isa.known = true;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return isa;  // no OSXSAVE: no xgetbv, no AVX state
    const uint64_t xcr = xcr0();
    const bool avx512State = (xcr & 0xE6) == 0xE6;                            // SSE, AVX, opmask, ZMM halves
    const bool tileState = (xcr & (3ull << 17)) == (3ull << 17);              // XTILECFG, XTILEDATA
    if (__get_cpuid_max(0, nullptr) < 7) return isa;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx512f = b & (1u << 16);
    const bool amxBf16 = d & (1u << 22), amxTile = d & (1u << 24);
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    const bool avx512Bf16 = a1 & (1u << 5);
    isa.avx512Bf16 = avx512f && avx512Bf16 && avx512State;
    isa.amxBf16 = amxBf16 && amxTile && tileState;
    return isa;
}
#else
CpuMatrixIsa detectCpuMatrixIsa() { return {}; }
#endif

}  // namespace graftlab
