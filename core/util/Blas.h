#pragma once
#include <string>

namespace graftlab {

struct BlasInfo {
    std::string library;     // resolved file that provides sgemm_, e.g. /usr/lib/.../openblas-pthread/libblas.so.3
    bool isReference = false;  // Netlib reference BLAS: ~30x slower than OpenBLAS for LibTorch's matmuls
    std::string advice;      // how to fix a slow BLAS, empty when fine
};

// Which BLAS LibTorch resolved at run time (Debian's LibTorch calls the system libblas.so.3).
BlasInfo detectBlas();

// Measures single-precision matmul throughput (GFLOP/s) with an n x n product, as the benchmark's roofline.
double measureSgemmGflops(int n = 512, double seconds = 0.5);

}  // namespace graftlab
