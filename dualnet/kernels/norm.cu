// Batch normalization, training forward and backward: one block of DN_BN_BLOCK threads per channel,
// one launch each way.
//
// x, dx: (n, c, inner) values read through an image stride sn and a channel stride sc (inner
// contiguous values per image): sn = c * inner, sc = inner for a C-contiguous (n, c, inner)
// array; sn = inner, sc = n * inner for a channel-major one (the GPU convolution's output, read
// without a transpose). y, dy, residual, dz: C-contiguous (n, c, inner).
//
// Block ch walks channel ch twice: the first pass reduces (moments forward, the two gradient sums
// backward) in a fixed-order tree (per-thread accumulation in a fixed order, then
// dn_block_moments / dn_block_sum), a barrier, then the second pass writes the channel's outputs.
// On a GPU the second pass reads what the first just read, from L2. Every output has one writer
// and no order depends on scheduling: the same bits run to run (the checking emulator runs four
// schedules).
//
// The walk: the channel's n rows of `inner` values in groups of V consecutive values; thread t
// takes groups t, t + B, t + 2B, ... (B = blockDim.x: neighbouring threads read neighbouring
// addresses), U groups per step, all loaded before any is used: at least 4 loads in flight per
// thread (forward U = 4, one or two arrays; backward U = 2, two or three arrays; fewer registers,
// no spills at 64 registers per thread, which 1024 threads per block allow). V = 16 bytes / sizeof(T) (float4, double2) when inner, sn, sc are multiples of V and
// every array the pass touches is 16-byte aligned (the kernel checks, the whole block takes one
// path); else V = 1. A row's length is a multiple of V on the vector path, so there is no tail.
#include "device.cuh"

// Threads per block of the batch-norm kernels (signatures.py: BN_BLOCK) and groups per thread step.
#define DN_BN_BLOCK 1024
#define DN_BN_FORWARD_UNROLL 4
#define DN_BN_BACKWARD_UNROLL 2

// One step of a thread's walk: k (1..U) groups, group u at image b[u], V-group g[u] of the row.
template <int U>
struct DnBnStep {
    int k;
    int b[U], g[U];
};

// Offsets of a group: in x (through sn and sc) and in the C-contiguous arrays (y, dy, residual, dz).
template <int V>
struct DnBnAt {
    long long sn, row, xch, pch;
    __device__ __forceinline__ long long x(int b, int g) const { return (long long)b * sn + xch + (long long)g * V; }
    __device__ __forceinline__ long long p(int b, int g) const { return (long long)b * row + pch + (long long)g * V; }
};

template <int V>
__device__ __forceinline__ DnBnAt<V> dn_bn_at(int c, int inner, long long sn, long long sc, int ch) {
    return DnBnAt<V>{sn, (long long)c * inner, (long long)ch * sc, (long long)ch * inner};
}

// f(step) for each step of this thread's walk over a channel of n rows of inner values; (b, g)
// advance by additions only.
template <int V, int U, typename F>
__device__ __forceinline__ void dn_bn_walk(int n, int inner, F f) {
    const int per_row = inner / V, stride = blockDim.x;
    const int db = stride / per_row, dg = stride % per_row;
    int b = (int)threadIdx.x / per_row, g = (int)threadIdx.x % per_row;
    while (b < n) {
        DnBnStep<U> st;
        st.k = 0;
#pragma unroll
        for (int u = 0; u < U; ++u) {
            st.b[u] = b;  // b only grows: the valid groups are a prefix
            st.g[u] = g;
            if (b < n) st.k = u + 1;
            g += dg;
            b += db;
            if (g >= per_row) {
                g -= per_row;
                ++b;
            }
        }
        f(st);
    }
}

// Training forward of channel ch (block ch): pass 1 takes each step's k * V values' exact moments
// (their mean, then the squared deviations from it) and merges them into the thread's (Chan);
// the block merges the threads' (dn_block_moments): mean, M2, var = M2 / m (m = n * inner). Thread 0
// writes mean, inv_std = 1 / sqrt(var + eps), scale = weight * inv_std and updates the running
// statistics in place: running = (1 - momentum) * running + momentum * stat, with the unbiased
// variance M2 / (m - 1). Pass 2: y = act((x - mean) * scale + bias (+ residual)); act 1 = ReLU
// (v < 0 ? 0 : v, NaN passes), else identity.
template <typename T, int V, typename S, typename SN>
__device__ __forceinline__ void bn_forward_channel(const T* __restrict__ x, const T* __restrict__ weight,
                                                   const T* __restrict__ bias, const T* __restrict__ residual,
                                                   T* __restrict__ running_mean, T* __restrict__ running_var,
                                                   T* __restrict__ y, T* __restrict__ mean, T* __restrict__ inv_std,
                                                   T* __restrict__ scale, int n, int c, int inner, long long sn,
                                                   long long sc, T eps, T momentum, int act, int has_residual,
                                                   int ch, SN& s_n, S& s_mean, S& s_m2) {
    constexpr int U = DN_BN_FORWARD_UNROLL;
    const DnBnAt<V> at = dn_bn_at<V>(c, inner, sn, sc, ch);
    long long cnt = 0;
    T mu = T(0), m2 = T(0);
    dn_bn_walk<V, U>(n, inner, [&](const DnBnStep<U>& st) {
        const int k = st.k;
        T v[U][V];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) DnVec<T, V>::load(x + at.x(st.b[u], st.g[u]), v[u]);
        T s = T(0);
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k)
                for (int i = 0; i < V; ++i) s += v[u][i];
        const T cm = s / (T)(k * V);
        T q = T(0);
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k)
                for (int i = 0; i < V; ++i) {
                    const T d = v[u][i] - cm;
                    q += d * d;
                }
        dn_merge_moments(cnt, mu, m2, (long long)k * V, cm, q);
    });
    dn_block_moments(cnt, mu, m2, s_n, s_mean, s_m2);
    const T count = (T)((long long)n * inner);
    const T is = T(1) / dn_sqrt(m2 / count + eps);
    const T sc_ = weight[ch] * is, b = bias[ch];
    if (threadIdx.x == 0) {
        mean[ch] = mu;
        inv_std[ch] = is;
        scale[ch] = sc_;
        running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * (m2 / (count - T(1)));
    }
    dn_bn_walk<V, U>(n, inner, [&](const DnBnStep<U>& st) {
        const int k = st.k;
        T v[U][V], r[U][V];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                DnVec<T, V>::load(x + at.x(st.b[u], st.g[u]), v[u]);
                if (has_residual) DnVec<T, V>::load(residual + at.p(st.b[u], st.g[u]), r[u]);
            }
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                for (int i = 0; i < V; ++i) {
                    T o = (v[u][i] - mu) * sc_ + b;
                    if (has_residual) o += r[u][i];
                    if (act == 1 && o < T(0)) o = T(0);
                    v[u][i] = o;
                }
                DnVec<T, V>::store(y + at.p(st.b[u], st.g[u]), v[u]);
            }
    });
}

template <typename T>
__global__ void __launch_bounds__(DN_BN_BLOCK)
    bn_forward(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
               const T* __restrict__ residual, T* __restrict__ running_mean, T* __restrict__ running_var,
               T* __restrict__ y, T* __restrict__ mean, T* __restrict__ inv_std, T* __restrict__ scale, int n, int c,
               int inner, long long sn, long long sc, T eps, T momentum, int act, int has_residual) {
    DN_SHARED(long long, s_n, 32);
    DN_SHARED(T, s_mean, 32);
    DN_SHARED(T, s_m2, 32);
    constexpr int V = 16 / sizeof(T);
    const bool vec = inner % V == 0 && sn % V == 0 && sc % V == 0 && dn_aligned16(x) && dn_aligned16(y) &&
                     (!has_residual || dn_aligned16(residual));
    if (vec)
        bn_forward_channel<T, V>(x, weight, bias, residual, running_mean, running_var, y, mean, inv_std, scale, n, c,
                                 inner, sn, sc, eps, momentum, act, has_residual, blockIdx.x, s_n, s_mean,
                                 s_m2);
    else
        bn_forward_channel<T, 1>(x, weight, bias, residual, running_mean, running_var, y, mean, inv_std, scale, n, c,
                                 inner, sn, sc, eps, momentum, act, has_residual, blockIdx.x, s_n, s_mean,
                                 s_m2);
}

// Training backward of channel ch (block ch). Pass 1: dz = dy, or dy where y > 0 for a fused ReLU
// (act 1; y the forward's output), written out when write_dz (the residual's gradient); the block
// sums dbias = sum dz and sum dz (x - mean) (dn_block_sum), dweight = inv_std * the latter = sum
// dz * xhat. Thread 0 adds dweight into wgrad and dbias into bgrad (the layer's gradient buffers;
// skipped without has_wgrad / has_bgrad): one rounding each, as `+=` is. Pass 2 (when write_dx):
// dx = scale * (dz - dbias / m - xhat * dweight / m), xhat = (x - mean) * inv_std, through x's
// strides (dx takes x's layout); dz read back from the thread's own pass-1 writes when written
// (one array instead of dy and y).
template <typename T, int V, typename S>
__device__ __forceinline__ void bn_backward_channel(const T* __restrict__ dy, const T* __restrict__ y,
                                                    const T* __restrict__ x, const T* __restrict__ mean,
                                                    const T* __restrict__ inv_std, const T* __restrict__ scale,
                                                    T* __restrict__ dz, T* __restrict__ dx, T* __restrict__ wgrad,
                                                    T* __restrict__ bgrad, int n, int c, int inner, long long sn,
                                                    long long sc, int act, int write_dz, int write_dx, int has_wgrad,
                                                    int has_bgrad, int ch, S& scratch) {
    constexpr int U = DN_BN_BACKWARD_UNROLL;
    const DnBnAt<V> at = dn_bn_at<V>(c, inner, sn, sc, ch);
    const T mu = mean[ch];
    // dz of a step's groups into g: the masked gradient (the ReLU's mask read from y)
    auto masked = [&](const DnBnStep<U>& st, T (*g)[V]) {
        const int k = st.k;
        T yv[U][V];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                DnVec<T, V>::load(dy + at.p(st.b[u], st.g[u]), g[u]);
                if (act == 1) DnVec<T, V>::load(y + at.p(st.b[u], st.g[u]), yv[u]);
            }
        if (act == 1) {
#pragma unroll
            for (int u = 0; u < U; ++u)
                if (u < k)
                    for (int i = 0; i < V; ++i)
                        if (!(yv[u][i] > T(0))) g[u][i] = T(0);
        }
    };
    T s = T(0), sx = T(0);
    dn_bn_walk<V, U>(n, inner, [&](const DnBnStep<U>& st) {
        const int k = st.k;
        T g[U][V], xv[U][V];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) DnVec<T, V>::load(x + at.x(st.b[u], st.g[u]), xv[u]);
        masked(st, g);
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                if (write_dz) DnVec<T, V>::store(dz + at.p(st.b[u], st.g[u]), g[u]);
                for (int i = 0; i < V; ++i) {
                    s += g[u][i];
                    sx += g[u][i] * (xv[u][i] - mu);
                }
            }
    });
    s = dn_block_sum(s, scratch);
    sx = dn_block_sum(sx, scratch);
    const T is = inv_std[ch];
    const T db = s, dw = sx * is;
    if (threadIdx.x == 0) {
        if (has_wgrad) wgrad[ch] += dw;
        if (has_bgrad) bgrad[ch] += db;
    }
    if (!write_dx) return;
    const T count = (T)((long long)n * inner);
    const T sc_ = scale[ch], db_m = db / count, dw_m = dw / count;
    dn_bn_walk<V, U>(n, inner, [&](const DnBnStep<U>& st) {
        const int k = st.k;
        T g[U][V], xv[U][V];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                DnVec<T, V>::load(x + at.x(st.b[u], st.g[u]), xv[u]);
                if (write_dz) DnVec<T, V>::load(dz + at.p(st.b[u], st.g[u]), g[u]);  // this thread's pass-1 values
            }
        if (!write_dz) masked(st, g);
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (u < k) {
                for (int i = 0; i < V; ++i) {
                    const T xhat = (xv[u][i] - mu) * is;
                    xv[u][i] = sc_ * (g[u][i] - db_m - xhat * dw_m);
                }
                DnVec<T, V>::store(dx + at.x(st.b[u], st.g[u]), xv[u]);
            }
    });
}

template <typename T>
__global__ void __launch_bounds__(DN_BN_BLOCK)
    bn_backward(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ mean,
                const T* __restrict__ inv_std, const T* __restrict__ scale, T* __restrict__ dz, T* __restrict__ dx,
                T* __restrict__ wgrad, T* __restrict__ bgrad, int n, int c, int inner, long long sn, long long sc,
                int act, int write_dz, int write_dx, int has_wgrad, int has_bgrad) {
    DN_SHARED(T, scratch, 32);
    constexpr int V = 16 / sizeof(T);
    const bool vec = inner % V == 0 && sn % V == 0 && sc % V == 0 && dn_aligned16(dy) && dn_aligned16(x) &&
                     (act != 1 || dn_aligned16(y)) && (!write_dz || dn_aligned16(dz)) &&
                     (!write_dx || dn_aligned16(dx));
    if (vec)
        bn_backward_channel<T, V>(dy, y, x, mean, inv_std, scale, dz, dx, wgrad, bgrad, n, c, inner, sn, sc, act,
                                  write_dz, write_dx, has_wgrad, has_bgrad, blockIdx.x, scratch);
    else
        bn_backward_channel<T, 1>(dy, y, x, mean, inv_std, scale, dz, dx, wgrad, bgrad, n, c, inner, sn, sc, act,
                                  write_dz, write_dx, has_wgrad, has_bgrad, blockIdx.x, scratch);
}

// y = act((x - mean[ch]) * scale[ch] + bias[ch] (+ residual)) with given statistics (eval mode, the
// running ones; and the residual sum + ReLU with mean 0, scale 1, bias 0). x read through (sn, sc),
// y and residual C-contiguous. I: the index type, 32-bit when it fits.
template <typename I, typename T>
__device__ __forceinline__ void bn_apply_range(const T* __restrict__ x, const T* __restrict__ mean,
                                               const T* __restrict__ scale, const T* __restrict__ bias,
                                               const T* __restrict__ residual, T* __restrict__ y, I c, I inner,
                                               I total, I sn, I sc, int act, int has_residual) {
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        const I k = idx % inner, rest = idx / inner;
        const I ch = rest % c, b = rest / c;
        T v = (x[b * sn + ch * sc + k] - mean[ch]) * scale[ch] + bias[ch];
        if (has_residual) v += residual[idx];
        if (act == 1 && v < T(0)) v = T(0);
        y[idx] = v;
    }
}

template <typename T>
__global__ void bn_apply(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ scale,
                         const T* __restrict__ bias, const T* __restrict__ residual, T* __restrict__ y, int n, int c,
                         int inner, long long sn, long long sc, int act, int has_residual) {
    const long long total = (long long)n * c * inner;
    if (total + (long long)blockDim.x * gridDim.x <= 0xFFFFFFFFll) {
        bn_apply_range<unsigned>(x, mean, scale, bias, residual, y, (unsigned)c, (unsigned)inner, (unsigned)total,
                                 (unsigned)sn, (unsigned)sc, act, has_residual);
    } else {
        bn_apply_range<long long>(x, mean, scale, bias, residual, y, (long long)c, (long long)inner, total, sn, sc,
                                  act, has_residual);
    }
}
