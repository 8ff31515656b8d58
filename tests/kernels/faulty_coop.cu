// Cooperative kernels for the emulator's own tests: two correct ones, and planted faults the
// emulator must catch. Declared in test_cooperative.py's table; block 64 (two warps).
#include "device.cuh"

// y[row] = sum of x[row, :]: a strided partial per thread, a shared tree down to one warp, then
// shuffles. Correct: every shared read follows a barrier after its write.
template <typename T>
__global__ void block_sum_ok(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int row = blockIdx.x, tid = threadIdx.x;
    T s = T(0);
    for (int k = tid; k < cols; k += blockDim.x) s += x[(long long)row * cols + k];
    partial[tid] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half >= 32; half /= 2) {
        if (tid < half) partial[tid] += partial[tid + half];
        __syncthreads();
    }
    if (tid < 32) {
        T v = partial[tid];
        for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(DN_FULL_MASK, v, off);
        if (tid == 0) y[row] = v;
    }
}

// The warp primitives: y[row * 64 + t] = (the warp's xor-butterfly sum of x) + (lane 0's value)
// + (the number of lanes whose x is positive).
template <typename T>
__global__ void warp_ops_ok(const T* x, T* y, int rows) {
    const int tid = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + tid;
    const T v = x[i];
    T s = v;
    for (int m = 16; m > 0; m /= 2) s += __shfl_xor_sync(DN_FULL_MASK, s, m);
    const T first = __shfl_sync(DN_FULL_MASK, v, 0);
    const unsigned positive = __ballot_sync(DN_FULL_MASK, v > T(0));
    __syncwarp(DN_FULL_MASK);
    y[i] = s + first + (T)__popc(positive);
}

// FAULT: block_sum_ok without the barrier after the partials are written.
template <typename T>
__global__ void missing_barrier(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int row = blockIdx.x, tid = threadIdx.x;
    T s = T(0);
    for (int k = tid; k < cols; k += blockDim.x) s += x[(long long)row * cols + k];
    partial[tid] = s;
    if (tid < 32) partial[tid] += partial[tid + 32];
    __syncthreads();
    if (tid == 0) {
        T v = T(0);
        for (int k = 0; k < 32; ++k) v += partial[k];
        y[row] = v;
    }
}

// FAULT: even and odd threads wait at two different barriers.
template <typename T>
__global__ void divergent_barrier(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int tid = threadIdx.x;
    partial[tid] = x[(long long)blockIdx.x * cols + tid % cols];
    if (tid % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    if (tid == 0) y[blockIdx.x] = partial[63];
}

// FAULT: threads 32.. leave before the barrier the others wait at.
template <typename T>
__global__ void exit_before_barrier(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int tid = threadIdx.x;
    if (tid >= 32) return;
    partial[tid] = x[(long long)blockIdx.x * cols + tid % cols];
    __syncthreads();
    if (tid == 0) y[blockIdx.x] = partial[31];
}

// FAULT: the last thread writes one past the shared array.
template <typename T>
__global__ void shared_out_of_bounds(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int tid = threadIdx.x;
    partial[tid + 1] = x[(long long)blockIdx.x * cols + tid % cols];
    __syncthreads();
    if (tid == 0) y[blockIdx.x] = partial[1];
}

// FAULT: every thread of a block writes the block's one output: the last writer wins.
template <typename T>
__global__ void racy_write(const T* x, T* y, int rows, int cols) {
    y[blockIdx.x] = x[(long long)blockIdx.x * cols + threadIdx.x % cols];
}

// FAULT: reads shared slots nobody wrote: the poison (NaN) shows in y.
template <typename T>
__global__ void read_before_write(const T* x, T* y, int rows, int cols) {
    DN_SHARED(T, partial, 64);
    const int tid = threadIdx.x;
    if (tid < 32) partial[tid] = x[(long long)blockIdx.x * cols + tid % cols];
    __syncthreads();
    if (tid == 0) y[blockIdx.x] = partial[0] + partial[40];
}

// FAULT: 2 x 32 KiB of shared memory in one block (the limit is 48 KiB).
template <typename T>
__global__ void too_much_shared(const T* x, T* y, int rows, int cols) {
    DN_SHARED(unsigned char, a, 32768);
    DN_SHARED(unsigned char, b, 32768);
    const int tid = threadIdx.x;
    a[tid] = 1;
    b[tid] = 2;
    __syncthreads();
    if (tid == 0) y[blockIdx.x] = x[(long long)blockIdx.x * cols] + (T)(a[0] + b[0]);
}

// FAULT: half a warp shuffles, the other half has left.
template <typename T>
__global__ void divergent_shuffle(const T* x, T* y, int rows, int cols) {
    const int tid = threadIdx.x;
    T v = x[(long long)blockIdx.x * cols + tid % cols];
    if (tid % 32 < 16) v = __shfl_down_sync(DN_FULL_MASK, v, 1);
    if (tid == 0) y[blockIdx.x] = v;
}

// FAULT: a 16-byte vector load one value past a 16-byte boundary (row 0 starts aligned).
template <typename T>
__global__ void misaligned_vector(const T* x, T* y, int rows, int cols) {
    constexpr int V = 16 / sizeof(T);
    T v[V];
    DnVec<T, V>::load(x + (long long)blockIdx.x * cols + 1, v);
    if (threadIdx.x == 0) y[blockIdx.x] = v[0];
}

// FAULT: a grid-stride kernel (declared without a block) that calls __syncthreads().
template <typename T>
__global__ void undeclared_barrier(const T* x, T* y, int size) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = x[i];
    }
    __syncthreads();
}
