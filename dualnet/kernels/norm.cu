// Batch normalization, training forward and backward, as two-level fixed-order reductions.
//
// x, dx: (n, c, inner) values read through an image stride sn and a channel stride sc (inner
// contiguous values per image): sn = c * inner, sc = inner for a C-contiguous (n, c, inner)
// array; sn = inner, sc = n * inner for a channel-major one (the GPU convolution's output, read
// without a transpose). y, dy, residual, dz: C-contiguous (n, c, inner).
//
// Level 1 splits each channel's m = n * inner values into `parts` chunks of L = ceil(m / parts)
// (every chunk non-empty; parts <= 32) and runs one block per (chunk, channel): grid (parts, c),
// so a layer of 16 channels still fills the GPU. Level 2 is in the kernel that uses the
// statistics: each of its blocks combines its channel's `parts` partials in warp 0 with the fixed
// shuffle tree (dn_warp_sum) before its chunk's elementwise work, so no launch is spent on the
// combination and every block computes the same bits: deterministic whatever the
// schedule (the checking emulator runs four).
#include "device.cuh"

// The chunk [start, end) of channel ch: f(x offset, C-contiguous offset) for each value, thread t
// taking values start + t, start + t + B, ... (B = blockDim.x; neighbouring threads read
// neighbouring addresses). Image and position advance by additions only.
template <typename F>
__device__ __forceinline__ void dn_chunk_each(long long start, long long end, int c, int inner, long long sn,
                                              long long sc, int ch, F f) {
    long long at = start + threadIdx.x;
    if (at >= end) return;
    const int step = blockDim.x;
    const int db = step / inner, dk = step % inner;
    long long b = at / inner;
    int k = (int)(at % inner);
    const long long row = (long long)c * inner;
    for (; at < end; at += step) {
        f(b * sn + (long long)ch * sc + k, b * row + (long long)ch * inner + k);
        k += dk;
        b += db;
        if (k >= inner) {
            k -= inner;
            ++b;
        }
    }
}

// This block's chunk of its channel: (start, end) of chunk blockIdx.x.
__device__ __forceinline__ void dn_chunk(long long m, int parts, long long& start, long long& end) {
    const long long len = (m + parts - 1) / parts;
    start = (long long)blockIdx.x * len;
    end = start + len < m ? start + len : m;
}

// Level 1 of the statistics: chunk p of channel ch (block (p, ch)) stores its sum and its sum of
// squared deviations from its own mean (two passes over the chunk, the second from cache: no
// cancellation) at [ch * parts + p].
template <typename T>
__global__ void bn_partials(const T* __restrict__ x, T* __restrict__ part_sum, T* __restrict__ part_m2, int n, int c,
                            int inner, long long sn, long long sc, int parts) {
    DN_SHARED(T, scratch, 32);
    const int ch = blockIdx.y;
    long long start, end;
    dn_chunk((long long)n * inner, parts, start, end);
    T s = T(0);
    dn_chunk_each(start, end, c, inner, sn, sc, ch, [&](long long o, long long) { s += x[o]; });
    s = dn_block_sum(s, scratch);
    const T mu = s / (T)(end - start);
    T q = T(0);
    dn_chunk_each(start, end, c, inner, sn, sc, ch, [&](long long o, long long) {
        const T d = x[o] - mu;
        q += d * d;
    });
    q = dn_block_sum(q, scratch);
    if (threadIdx.x == 0) {
        part_sum[(long long)ch * parts + blockIdx.x] = s;
        part_m2[(long long)ch * parts + blockIdx.x] = q;
    }
}

// Level 2, then the apply: the block combines channel ch's partials (Chan et al.: mean = sum of the
// sums / m, M2 = sum over chunks of M2_j + m_j (mean_j - mean)^2), var = M2 / m, and writes
// y = act((x - mean) * scale + bias (+ residual)) over its chunk, scale = weight / sqrt(var + eps);
// act 1 = ReLU (v < 0 ? 0 : v, NaN passes), else identity. Block (0, ch) also writes mean, inv_std,
// scale and updates the running statistics in place: running = (1 - momentum) * running +
// momentum * stat, with the unbiased variance M2 / (m - 1).
template <typename T>
__global__ void bn_normalize(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
                             const T* __restrict__ residual, const T* __restrict__ part_sum,
                             const T* __restrict__ part_m2, T* __restrict__ running_mean, T* __restrict__ running_var,
                             T* __restrict__ y, T* __restrict__ mean, T* __restrict__ inv_std, T* __restrict__ scale,
                             int n, int c, int inner, long long sn, long long sc, int parts, T eps, T momentum,
                             int act, int has_residual) {
    DN_SHARED(T, stats, 2);
    const int ch = blockIdx.y;
    const long long m = (long long)n * inner;
    const T count = (T)m;
    if (threadIdx.x < 32) {
        const long long len = (m + parts - 1) / parts;
        const int j = threadIdx.x;
        const T sj = j < parts ? part_sum[(long long)ch * parts + j] : T(0);
        const T mu = __shfl_sync(DN_FULL_MASK, dn_warp_sum(sj), 0) / count;
        T term = T(0);
        if (j < parts) {
            const long long mj = (long long)j * len + len < m ? len : m - (long long)j * len;
            const T d = sj / (T)mj - mu;
            term = part_m2[(long long)ch * parts + j] + (T)mj * d * d;
        }
        const T m2 = dn_warp_sum(term);
        if (j == 0) {
            stats[0] = mu;
            stats[1] = m2;
        }
    }
    __syncthreads();
    const T mu = stats[0], m2 = stats[1];
    const T is = T(1) / dn_sqrt(m2 / count + eps);
    const T sc_ = weight[ch] * is, b = bias[ch];
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        mean[ch] = mu;
        inv_std[ch] = is;
        scale[ch] = sc_;
        running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * (m2 / (count - T(1)));
    }
    long long start, end;
    dn_chunk(m, parts, start, end);
    dn_chunk_each(start, end, c, inner, sn, sc, ch, [&](long long o, long long p) {
        T v = (x[o] - mu) * sc_ + b;
        if (has_residual) v += residual[p];
        if (act == 1 && v < T(0)) v = T(0);
        y[p] = v;
    });
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

// Level 1 of the gradients: dz = dy, or dy where y > 0 for a fused ReLU (act 1; y the forward's
// output); chunk p of channel ch stores sum dz and sum dz * (x - mean) at [ch * parts + p], and
// writes dz itself when write_dz (the residual's gradient).
template <typename T>
__global__ void bn_grad_partials(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x,
                                 const T* __restrict__ mean, T* __restrict__ part_db, T* __restrict__ part_dw,
                                 T* __restrict__ dz, int n, int c, int inner, long long sn, long long sc, int parts,
                                 int act, int write_dz) {
    DN_SHARED(T, scratch, 32);
    const int ch = blockIdx.y;
    const T mu = mean[ch];
    long long start, end;
    dn_chunk((long long)n * inner, parts, start, end);
    T s = T(0), sx = T(0);
    dn_chunk_each(start, end, c, inner, sn, sc, ch, [&](long long o, long long p) {
        const T g = (act == 1 && !(y[p] > T(0))) ? T(0) : dy[p];
        if (write_dz) dz[p] = g;
        s += g;
        sx += g * (x[o] - mu);
    });
    s = dn_block_sum(s, scratch);
    sx = dn_block_sum(sx, scratch);
    if (threadIdx.x == 0) {
        part_db[(long long)ch * parts + blockIdx.x] = s;
        part_dw[(long long)ch * parts + blockIdx.x] = sx;
    }
}

// Level 2, then the input gradient: the block combines channel ch's partials (dbias = sum dz,
// dweight = inv_std * sum dz (x - mean) = sum dz * xhat) and, when write_dx, writes over its chunk
// dx = scale * (dz - dbias / m - xhat * dweight / m), xhat = (x - mean) * inv_std, through x's
// strides (dx takes x's layout). Block (0, ch) adds dweight into wgrad and dbias into bgrad (the
// layer's gradient buffers; skipped without has_wgrad / has_bgrad): one rounding each, as `+=` is.
template <typename T>
__global__ void bn_input_grad(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x,
                              const T* __restrict__ mean, const T* __restrict__ inv_std, const T* __restrict__ scale,
                              const T* __restrict__ part_db, const T* __restrict__ part_dw, T* __restrict__ dx,
                              T* __restrict__ wgrad, T* __restrict__ bgrad, int n, int c, int inner, long long sn,
                              long long sc, int parts, int act, int write_dx, int has_wgrad, int has_bgrad) {
    DN_SHARED(T, sums, 2);
    const int ch = blockIdx.y;
    if (threadIdx.x < 32) {
        const int j = threadIdx.x;
        const T db = dn_warp_sum(j < parts ? part_db[(long long)ch * parts + j] : T(0));
        const T dw = dn_warp_sum(j < parts ? part_dw[(long long)ch * parts + j] : T(0));
        if (j == 0) {
            sums[0] = db;
            sums[1] = dw * inv_std[ch];
        }
    }
    __syncthreads();
    const T db = sums[0], dw = sums[1];
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        if (has_wgrad) wgrad[ch] += dw;
        if (has_bgrad) bgrad[ch] += db;
    }
    if (!write_dx) return;
    const long long m = (long long)n * inner;
    const T mu = mean[ch], is = inv_std[ch], s = scale[ch];
    const T db_m = db / (T)m, dw_m = dw / (T)m;
    long long start, end;
    dn_chunk(m, parts, start, end);
    dn_chunk_each(start, end, c, inner, sn, sc, ch, [&](long long o, long long p) {
        const T g = (act == 1 && !(y[p] > T(0))) ? T(0) : dy[p];
        const T xhat = (x[o] - mu) * is;
        dx[o] = s * (g - db_m - xhat * dw_m);
    });
}
