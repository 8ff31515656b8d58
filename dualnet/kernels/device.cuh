// Device code shared by the kernel sources: a .cu file's include line naming "device.cuh" is
// replaced by this text (KernelTable.read_source), for NVRTC and the emulator alike, so what the
// compilers see is one self-contained file.
#ifndef DN_DEVICE_CUH
#define DN_DEVICE_CUH

// A block's shared array: `DN_SHARED(T, name, count);` is `__shared__ T name[count];` on a GPU;
// the emulator's version is bounds-checked and poisoned at block start (emulator.h).
#ifndef DN_EMULATOR
#define DN_SHARED(T, name, n) __shared__ T name[n]
#endif

#define DN_FULL_MASK 0xFFFFFFFFu

// Threads per block of the cooperative kernels (signatures.py declares the same: COOP_BLOCK).
#define DN_BLOCK 256

// The grid-stride loop of the one-thread-per-element kernels: `DN_FOR_EACH(idx, total) { ... }`
// visits idx = 0..total-1 whatever the grid's size (a small grid loops; the emulator's checking
// mode launches tiny grids on purpose so every loop wraps).
#define DN_FOR_EACH(idx, total)                                                          \
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (long long)blockDim.x * gridDim.x)

// Calls f(iy, ix, i, j) for every in-bounds tap (i, j) of the window at output (oy, ox) of an h x w
// input (the convolution's geometry: rows oy*sh - ph + i*dh, columns ox*sw - pw + j*dw): rows
// outer, columns inner, both ascending, so a sum over the taps keeps one fixed order everywhere.
template <typename F>
__device__ __forceinline__ void dn_window_taps(int oy, int ox, int kh, int kw, int sh, int sw, int ph, int pw,
                                               int dh, int dw, int h, int w, F f) {
    for (int i = 0; i < kh; ++i) {
        const int iy = oy * sh - ph + i * dh;
        if (iy < 0 || iy >= h) continue;
        for (int j = 0; j < kw; ++j) {
            const int ix = ox * sw - pw + j * dw;
            if (ix < 0 || ix >= w) continue;
            f(iy, ix, i, j);
        }
    }
}

// Element `idx` of a stack of rows x cols planes (an NCHW tensor, plane = image * C + channel):
// its column x, its row y and its plane.
struct DnPixel {
    int x;
    int y;
    long long plane;
};
__device__ __forceinline__ DnPixel dn_pixel(long long idx, int rows, int cols) {
    return DnPixel{(int)(idx % cols), (int)((idx / cols) % rows), idx / ((long long)cols * rows)};
}

__device__ __forceinline__ float dn_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double dn_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float dn_exp(float v) { return expf(v); }
__device__ __forceinline__ double dn_exp(double v) { return exp(v); }
__device__ __forceinline__ float dn_log(float v) { return logf(v); }
__device__ __forceinline__ double dn_log(double v) { return log(v); }

// Sum of one value per thread of the block, in a fixed order whatever the schedule: each warp
// folds its lanes with shuffles at offsets 16, 8, 4, 2, 1, then warp 0 folds the warp sums the
// same way. Every thread gets the total. `scratch`: a DN_SHARED(T, ., 32) array of the caller;
// every thread of the block must call (it holds barriers). blockDim.x: a multiple of 32.
template <typename T, typename S>
__device__ __forceinline__ T dn_block_sum(T v, S& scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(DN_FULL_MASK, v, off);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = lane < warps ? scratch[lane] : T(0);
        for (int off = 16; off > 0; off >>= 1) w += __shfl_down_sync(DN_FULL_MASK, w, off);
        if (lane == 0) scratch[0] = w;
    }
    __syncthreads();
    const T total = scratch[0];
    __syncthreads();  // the caller's next dn_block_sum may overwrite scratch
    return total;
}

// Sum over a warp in the same fixed order (shuffles at 16, 8, 4, 2, 1); lane 0 holds the total.
template <typename T>
__device__ __forceinline__ T dn_warp_sum(T v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(DN_FULL_MASK, v, off);
    return v;
}

// Merge the moments (count nb, mean mb, sum of squared deviations qb) of a group of values into
// (na, ma, qa) of another (Chan et al.'s parallel formula: no sum of squares, so no cancellation):
// n = na + nb, d = mb - ma, mean = ma + d nb / n, M2 = qa + qb + d^2 na nb / n. An empty side
// leaves the other's bits unchanged.
template <typename T>
__device__ __forceinline__ void dn_merge_moments(long long& na, T& ma, T& qa, long long nb, T mb, T qb) {
    if (nb == 0) return;
    if (na == 0) {
        na = nb;
        ma = mb;
        qa = qb;
        return;
    }
    const long long nn = na + nb;
    const T d = mb - ma, fb = (T)nb / (T)nn;
    ma = ma + d * fb;
    qa = qa + qb + d * d * ((T)na * fb);
    na = nn;
}

// dn_block_sum for moments: each warp merges its lanes' (count, mean, M2) with shuffles at
// offsets 16, 8, 4, 2, 1 (lane l takes lane l + off), then warp 0 merges the warp results the
// same way: one fixed order whatever the schedule. Every thread gets the block's moments. The
// scratch arrays: DN_SHARED(., ., 32) of the caller; every thread of the block must call.
template <typename T, typename SN, typename ST>
__device__ __forceinline__ void dn_block_moments(long long& cnt, T& mean, T& m2, SN& s_n, ST& s_mean, ST& s_m2) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int off = 16; off > 0; off >>= 1) {
        const long long on = __shfl_down_sync(DN_FULL_MASK, cnt, off);
        const T om = __shfl_down_sync(DN_FULL_MASK, mean, off), oq = __shfl_down_sync(DN_FULL_MASK, m2, off);
        if (lane + off < 32) dn_merge_moments(cnt, mean, m2, on, om, oq);
    }
    if (lane == 0) {
        s_n[warp] = cnt;
        s_mean[warp] = mean;
        s_m2[warp] = m2;
    }
    __syncthreads();
    if (warp == 0) {
        long long n = lane < warps ? s_n[lane] : 0;
        T mu = lane < warps ? s_mean[lane] : T(0), q = lane < warps ? s_m2[lane] : T(0);
        for (int off = 16; off > 0; off >>= 1) {
            const long long on = __shfl_down_sync(DN_FULL_MASK, n, off);
            const T om = __shfl_down_sync(DN_FULL_MASK, mu, off), oq = __shfl_down_sync(DN_FULL_MASK, q, off);
            if (lane + off < 32) dn_merge_moments(n, mu, q, on, om, oq);
        }
        if (lane == 0) {
            s_n[0] = n;
            s_mean[0] = mu;
            s_m2[0] = q;
        }
    }
    __syncthreads();
    cnt = s_n[0];
    mean = s_mean[0];
    m2 = s_m2[0];
    __syncthreads();  // the scratch may be reused after this
}

// V consecutive values of T at p, in one access: V == 1 (any T) or V * sizeof(T) == 16 (float4,
// double2: p 16-byte aligned, else the GPU faults with a misaligned address and the emulator
// reports it). The emulator moves the V values one by one after that check.
template <typename T, int V>
struct DnVec {
    static_assert(V == 1 || V * sizeof(T) == 16, "DnVec: one value or 16 bytes");
    static __device__ __forceinline__ void load(const T* __restrict__ p, T* v) {
#ifdef DN_EMULATOR
        if (V > 1) dn::check_aligned16(p, "load");
#endif
        for (int i = 0; i < V; ++i) v[i] = p[i];
    }
    static __device__ __forceinline__ void store(T* __restrict__ p, const T* v) {
#ifdef DN_EMULATOR
        if (V > 1) dn::check_aligned16(p, "store");
#endif
        for (int i = 0; i < V; ++i) p[i] = v[i];
    }
};
#ifndef DN_EMULATOR
template <>
struct DnVec<float, 4> {
    static __device__ __forceinline__ void load(const float* __restrict__ p, float* v) {
        const float4 q = *reinterpret_cast<const float4*>(p);
        v[0] = q.x;
        v[1] = q.y;
        v[2] = q.z;
        v[3] = q.w;
    }
    static __device__ __forceinline__ void store(float* __restrict__ p, const float* v) {
        *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    }
};
template <>
struct DnVec<double, 2> {
    static __device__ __forceinline__ void load(const double* __restrict__ p, double* v) {
        const double2 q = *reinterpret_cast<const double2*>(p);
        v[0] = q.x;
        v[1] = q.y;
    }
    static __device__ __forceinline__ void store(double* __restrict__ p, const double* v) {
        *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
    }
};
#endif

// Whether p is 16-byte aligned (a null pointer of an unused array counts as aligned).
__device__ __forceinline__ bool dn_aligned16(const void* p) { return ((unsigned long long)p & 15ull) == 0; }

// Visit the n * inner values of channel ch of an (n, c, inner) array, thread t taking values
// t, t + B, t + 2B, ... of the channel (B = blockDim.x): neighbouring threads read neighbouring
// addresses. f(offset) gets each value's flat offset; (b, k) advance by additions only.
template <typename F>
__device__ __forceinline__ void dn_channel_each(int n, int c, int inner, int ch, F f) {
    const int step = blockDim.x;
    const int db = step / inner, dk = step % inner;
    int b = (int)threadIdx.x / inner, k = (int)threadIdx.x % inner;
    const long long row = (long long)c * inner;
    while (b < n) {
        f((long long)b * row + (long long)ch * inner + k);
        k += dk;
        b += db;
        if (k >= inner) {
            k -= inner;
            ++b;
        }
    }
}

// First and last output index (row or column) of a pooling window (size k, stride s, padding
// pad) that covers input position p, clamped to [0, out).
__device__ __forceinline__ int dn_pool_first(int p, int k, int s, int pad) {
    const int t = p + pad - k + 1;
    return t <= 0 ? 0 : (t + s - 1) / s;
}
__device__ __forceinline__ int dn_pool_last(int p, int s, int pad, int out) {
    const int t = (p + pad) / s;
    return t < out - 1 ? t : out - 1;
}

// The first maximum of pooling window (oy, ox) over an h x w plane, scanned row-major: a strictly
// greater value replaces the current one, so the first maximal element wins ties. value(iy, ix)
// gives an in-bounds element (max pooling reads it, the fused convolution computes it). Returns
// iy * w + ix of the winner (-1 for a window with no in-bounds element) and the maximum in best.
template <typename T, typename F>
__device__ __forceinline__ int dn_window_first_max(int oy, int ox, int kh, int kw, int sh, int sw, int ph, int pw,
                                                   int h, int w, F value, T& best) {
    best = T(0);
    int arg = -1;
    for (int i = 0; i < kh; ++i) {
        const int iy = oy * sh - ph + i;
        if (iy < 0 || iy >= h) continue;
        for (int j = 0; j < kw; ++j) {
            const int ix = ox * sw - pw + j;
            if (ix < 0 || ix >= w) continue;
            const T v = value(iy, ix);
            if (arg < 0 || v > best) {
                best = v;
                arg = iy * w + ix;
            }
        }
    }
    return arg;
}

// visit(oy, ox) for every pooling window (out_h x out_w of them) that covers input position
// (py, px): oy ascending outer, ox ascending inner (the gather order of the backward kernels).
template <typename F>
__device__ __forceinline__ void dn_windows_covering(int py, int px, int kh, int kw, int sh, int sw, int ph, int pw,
                                                    int out_h, int out_w, F visit) {
    const int oy1 = dn_pool_last(py, sh, ph, out_h);
    const int ox0 = dn_pool_first(px, kw, sw, pw);
    const int ox1 = dn_pool_last(px, sw, pw, out_w);
    for (int oy = dn_pool_first(py, kh, sh, ph); oy <= oy1; ++oy) {
        for (int ox = ox0; ox <= ox1; ++ox) visit(oy, ox);
    }
}

#endif  // DN_DEVICE_CUH
