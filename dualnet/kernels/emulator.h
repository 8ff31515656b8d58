// Just enough of CUDA for g++ to compile dualnet's kernel sources for the CPU emulator.
// Every "thread" runs sequentially; the built-in index variables are thread_local globals that
// the generated wrappers set before each call.
#pragma once
#include <algorithm>
#include <cmath>
#include <math.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;

using std::max;
using std::min;
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;
using std::fabs;
using std::floor;
using std::ceil;
