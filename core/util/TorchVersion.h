#pragma once
// Which LibTorch this translation unit is compiled against. Debian 12's LibTorch is 1.13 (the default build and
// CI); a CUDA build links the user's PyTorch 2.x. Code paths that need 2.x (scaled-dot-product attention, the
// fused AdamW kernel, device events with timing) are selected here, at compile time, and each is tested where it
// builds (the 2.x paths against a CPU LibTorch 2.x: README "Building against PyTorch 2.x").
#include <torch/version.h>

#define GRAFTLAB_TORCH_AT_LEAST(major, minor) \
    (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
