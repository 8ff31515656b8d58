// Softmax and log-softmax along one axis, forward and backward (the Softmax / LogSoftmax layers).
//
// x, y, dy, dx : viewed as (outer, k, inner), C-contiguous: the axis of length k has stride inner.
// One thread per (outer, inner) row of k values, which it reads in ascending order: every output
// has one writer and a fixed summation order, so results are deterministic.

#include "device.cuh"

__device__ __forceinline__ float dn_sm_exp(float v) { return expf(v); }
__device__ __forceinline__ double dn_sm_exp(double v) { return exp(v); }
__device__ __forceinline__ float dn_sm_log(float v) { return logf(v); }
__device__ __forceinline__ double dn_sm_log(double v) { return log(v); }

// m = max of the row; s = sum exp(x - m); y = exp(x - m) / s, or (x - m) - log(s) when log != 0.
template <typename T>
__global__ void softmax_forward(const T* __restrict__ x, T* __restrict__ y, int outer, int k, int inner,
                                int log) {
    const long long rows = (long long)outer * inner;
    DN_FOR_EACH(r, rows) {
        const long long base = (r / inner) * k * inner + r % inner;
        T m = x[base];
        for (int j = 1; j < k; ++j) {
            const T v = x[base + (long long)j * inner];
            m = v > m ? v : m;
        }
        T s = T(0);
        for (int j = 0; j < k; ++j) s += dn_sm_exp(x[base + (long long)j * inner] - m);
        const T ls = dn_sm_log(s);
        for (int j = 0; j < k; ++j) {
            const long long i = base + (long long)j * inner;
            y[i] = log ? (x[i] - m) - ls : dn_sm_exp(x[i] - m) / s;
        }
    }
}

// From the output y: softmax dx = y * (dy - sum(dy * y)); log-softmax dx = dy - exp(y) * sum(dy).
template <typename T>
__global__ void softmax_backward(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx,
                                 int outer, int k, int inner, int log) {
    const long long rows = (long long)outer * inner;
    DN_FOR_EACH(r, rows) {
        const long long base = (r / inner) * k * inner + r % inner;
        T s = T(0);
        for (int j = 0; j < k; ++j) {
            const long long i = base + (long long)j * inner;
            s += log ? dy[i] : dy[i] * y[i];
        }
        for (int j = 0; j < k; ++j) {
            const long long i = base + (long long)j * inner;
            dx[i] = log ? dy[i] - dn_sm_exp(y[i]) * s : y[i] * (dy[i] - s);
        }
    }
}
