// Batch normalization, training forward and backward.
//
// x, y, dy, dx, residual : (n, c, inner) C-contiguous (inner = H*W for BatchNorm2d, L or 1 for
// BatchNorm1d). Per-channel statistics: one block of DN_BLOCK threads per channel (grid c), each
// thread summing every DN_BLOCK-th value of the channel (coalesced), then a fixed-order tree
// (dn_block_sum): deterministic run to run, whatever the schedule.
#include "device.cuh"

// Two passes over channel blockIdx.x: mean, then M2 = sum (x - mean)^2 (no cancellation);
// var = M2 / m (m = n * inner), inv_std = 1 / sqrt(var + eps), scale = weight * inv_std, and the
// running statistics in place: running = (1 - momentum) * running + momentum * stat, with the
// unbiased variance M2 / (m - 1).
template <typename T>
__global__ void bn_stats(const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ running_mean,
                         T* __restrict__ running_var, T* __restrict__ mean, T* __restrict__ inv_std,
                         T* __restrict__ scale, int n, int c, int inner, T eps, T momentum) {
    DN_SHARED(T, scratch, 32);
    const int ch = blockIdx.x;
    const T count = (T)n * (T)inner;
    T s = T(0);
    dn_channel_each(n, c, inner, ch, [&](long long o) { s += x[o]; });
    const T mu = dn_block_sum(s, scratch) / count;
    T q = T(0);
    dn_channel_each(n, c, inner, ch, [&](long long o) {
        const T d = x[o] - mu;
        q += d * d;
    });
    const T m2 = dn_block_sum(q, scratch);
    if (threadIdx.x == 0) {
        const T is = T(1) / dn_sqrt(m2 / count + eps);
        mean[ch] = mu;
        inv_std[ch] = is;
        scale[ch] = weight[ch] * is;
        running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * (m2 / (count - T(1)));
    }
}

// y = act((x - mean[ch]) * scale[ch] + bias[ch] (+ residual)), act 1 = ReLU (v < 0 ? 0 : v, NaN
// passes), else identity; residual is read only when has_residual (then n*c*inner elements).
// Training (batch statistics) and eval (running ones). I: the index type, 32-bit when it fits.
template <typename I, typename T>
__device__ __forceinline__ void bn_apply_range(const T* __restrict__ x, const T* __restrict__ mean,
                                               const T* __restrict__ scale, const T* __restrict__ bias,
                                               const T* __restrict__ residual, T* __restrict__ y, I c, I inner,
                                               I total, int act, int has_residual) {
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        const I ch = (idx / inner) % c;
        T v = (x[idx] - mean[ch]) * scale[ch] + bias[ch];
        if (has_residual) v += residual[idx];
        if (act == 1 && v < T(0)) v = T(0);
        y[idx] = v;
    }
}

template <typename T>
__global__ void bn_apply(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ scale,
                         const T* __restrict__ bias, const T* __restrict__ residual, T* __restrict__ y, int n, int c,
                         int inner, int act, int has_residual) {
    const long long total = (long long)n * c * inner;
    if (total + (long long)blockDim.x * gridDim.x <= 0xFFFFFFFFll) {
        bn_apply_range<unsigned>(x, mean, scale, bias, residual, y, (unsigned)c, (unsigned)inner, (unsigned)total,
                                 act, has_residual);
    } else {
        bn_apply_range<long long>(x, mean, scale, bias, residual, y, (long long)c, (long long)inner, total, act,
                                  has_residual);
    }
}

// One block per channel: dbias = sum dy, dweight = inv_std * sum dy * (x - mean) (= sum dy * xhat).
template <typename T>
__global__ void bn_grads(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                         const T* __restrict__ inv_std, T* __restrict__ dweight, T* __restrict__ dbias, int n, int c,
                         int inner) {
    DN_SHARED(T, scratch, 32);
    const int ch = blockIdx.x;
    const T mu = mean[ch];
    T s = T(0), sx = T(0);
    dn_channel_each(n, c, inner, ch, [&](long long o) {
        s += dy[o];
        sx += dy[o] * (x[o] - mu);
    });
    s = dn_block_sum(s, scratch);
    sx = dn_block_sum(sx, scratch);
    if (threadIdx.x == 0) {
        dbias[ch] = s;
        dweight[ch] = sx * inv_std[ch];
    }
}

// dx = scale * (dy - dbias / m - xhat * dweight / m), xhat = (x - mean) * inv_std, m = n * inner,
// scale = weight * inv_std.
template <typename I, typename T>
__device__ __forceinline__ void bn_input_grad_range(const T* __restrict__ dy, const T* __restrict__ x,
                                                    const T* __restrict__ mean, const T* __restrict__ inv_std,
                                                    const T* __restrict__ scale, const T* __restrict__ dweight,
                                                    const T* __restrict__ dbias, T* __restrict__ dx, I c, I inner,
                                                    I total, T m) {
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        const I ch = (idx / inner) % c;
        const T xhat = (x[idx] - mean[ch]) * inv_std[ch];
        dx[idx] = scale[ch] * (dy[idx] - dbias[ch] / m - xhat * (dweight[ch] / m));
    }
}

template <typename T>
__global__ void bn_input_grad(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                              const T* __restrict__ inv_std, const T* __restrict__ scale,
                              const T* __restrict__ dweight, const T* __restrict__ dbias, T* __restrict__ dx,
                              int n, int c, int inner) {
    const long long total = (long long)n * c * inner;
    const T m = (T)n * (T)inner;
    if (total + (long long)blockDim.x * gridDim.x <= 0xFFFFFFFFll) {
        bn_input_grad_range<unsigned>(dy, x, mean, inv_std, scale, dweight, dbias, dx, (unsigned)c, (unsigned)inner,
                                      (unsigned)total, m);
    } else {
        bn_input_grad_range<long long>(dy, x, mean, inv_std, scale, dweight, dbias, dx, (long long)c,
                                       (long long)inner, total, m);
    }
}
