#pragma once
// What this CPU offers for bf16 matrix products, read from the processor (cpuid + the OS's saved register state),
// never assumed from its name. oneDNN (LibTorch's CPU matmul for bf16) uses AMX tiles when present and the OS
// enables them, else AVX-512 BF16 dot products, else it converts and multiplies in fp32 (slower than fp32 alone).
#include <string>

namespace graftlab {

struct CpuMatrixIsa {
    bool known = false;       // false off x86, where nothing is read
    bool avx512Bf16 = false;  // AVX512_BF16 (vdpbf16ps), and the OS saves the AVX-512 state
    bool amxBf16 = false;     // AMX-BF16 + AMX-TILE, and the OS saves the tile state
    // "AMX-BF16", "AVX512-BF16 (no AMX)", "no bf16 instructions" or "unknown (not x86)"
    std::string describe() const;
};

CpuMatrixIsa detectCpuMatrixIsa();

}  // namespace graftlab
