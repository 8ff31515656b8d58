// 2-D max and average pooling, forward and backward.
//
// x, dx : (n, c, h, w)          y, dy, argmax : (n, c, out_h, out_w)      all C-contiguous
// Window (oy, ox) covers rows oy*sh - ph + i (0 <= i < kh) and columns ox*sw - pw + j (0 <= j < kw).
// Padding is never chosen by max pooling and counts as zeros in average pooling (the divisor is
// always kh*kw).  Callers guarantee every window holds at least one in-bounds element.
// Backward kernels gather (one thread per dx element, the only writer of it): deterministic.
// The window scan and the windows covering a position are device.cuh's, shared with fused.cu.
#include "device.cuh"

// y = max over the in-bounds window, scanned row-major; a strictly greater value replaces the
// current one, so the first maximal element wins ties.  argmax = iy * w + ix of the winner.
template <typename T>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax,
                                int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int ph, int pw, int out_h, int out_w) {
    const long long total = (long long)n * c * out_h * out_w;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ox = (int)(idx % out_w);
        const int oy = (int)((idx / out_w) % out_h);
        const long long plane = idx / ((long long)out_w * out_h);  // b * c + ci
        const T* xp = x + plane * h * w;
        T best;
        const int arg = dn_window_first_max(oy, ox, kh, kw, sh, sw, ph, pw, h, w,
                                            [&](int iy, int ix) { return xp[iy * w + ix]; }, best);
        y[idx] = best;
        argmax[idx] = arg;
    }
}

// dx[b, ci, iy, ix] = sum of dy over the windows that chose (iy, ix); oy ascending outer, ox inner.
template <typename T>
__global__ void maxpool_backward(const T* __restrict__ dy, const int* __restrict__ argmax,
                                 T* __restrict__ dx,
                                 int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int out_h, int out_w) {
    const long long total = (long long)n * c * h * w;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ix = (int)(idx % w);
        const int iy = (int)((idx / w) % h);
        const long long base = (idx / ((long long)w * h)) * out_h * out_w;
        const int me = iy * w + ix;
        T sum = T(0);
        dn_windows_covering(iy, ix, kh, kw, sh, sw, ph, pw, out_h, out_w, [&](int oy, int ox) {
            const long long o = base + (long long)oy * out_w + ox;
            if (argmax[o] == me) sum += dy[o];
        });
        dx[idx] = sum;
    }
}

// y = (sum of the in-bounds window elements, row-major) / (kh * kw).
template <typename T>
__global__ void avgpool_forward(const T* __restrict__ x, T* __restrict__ y,
                                int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int ph, int pw, int out_h, int out_w) {
    const long long total = (long long)n * c * out_h * out_w;
    const T area = (T)(kh * kw);
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ox = (int)(idx % out_w);
        const int oy = (int)((idx / out_w) % out_h);
        const T* xp = x + (idx / ((long long)out_w * out_h)) * h * w;
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const int iy = oy * sh - ph + i;
            if (iy < 0 || iy >= h) continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = ox * sw - pw + j;
                if (ix < 0 || ix >= w) continue;
                sum += xp[iy * w + ix];
            }
        }
        y[idx] = sum / area;
    }
}

// dx[b, ci, iy, ix] = (sum of dy over the windows covering (iy, ix)) / (kh * kw); the sum runs
// oy descending outer, ox descending inner, i.e. kernel offsets (i, j) ascending like col2im.
template <typename T>
__global__ void avgpool_backward(const T* __restrict__ dy, T* __restrict__ dx,
                                 int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int out_h, int out_w) {
    const long long total = (long long)n * c * h * w;
    const T area = (T)(kh * kw);
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ix = (int)(idx % w);
        const int iy = (int)((idx / w) % h);
        const T* dyp = dy + (idx / ((long long)w * h)) * out_h * out_w;
        const int ox0 = dn_pool_first(ix, kw, sw, pw);
        const int ox1 = dn_pool_last(ix, sw, pw, out_w);
        // descending window index = ascending kernel offset (i outer, j inner), as in col2im
        const int oy0 = dn_pool_first(iy, kh, sh, ph);
        T sum = T(0);
        for (int oy = dn_pool_last(iy, sh, ph, out_h); oy >= oy0; --oy) {
            for (int ox = ox1; ox >= ox0; --ox) sum += dyp[(long long)oy * out_w + ox];
        }
        dx[idx] = sum / area;
    }
}

// Global average pooling: y[b, ci] = (sum of the plane x[b, ci, :]) / inner, one warp per plane
// (DN_BLOCK / 32 planes per block): lane l sums k = l, l + 32, ... ascending, then the warp's
// fixed shuffle tree.
template <typename T>
__global__ void global_avgpool_forward(const T* __restrict__ x, T* __restrict__ y, int n, int c, int inner) {
    const int lane = threadIdx.x & 31;
    const long long plane = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (plane >= (long long)n * c) return;  // the whole warp
    const T* p = x + plane * inner;
    T sum = T(0);
    for (int k = lane; k < inner; k += 32) sum += p[k];
    sum = dn_warp_sum(sum);
    if (lane == 0) y[plane] = sum / (T)inner;
}

// dx[b, ci, k] = dy[b, ci] / inner.
template <typename T>
__global__ void global_avgpool_backward(const T* __restrict__ dy, T* __restrict__ dx, int n, int c, int inner) {
    const long long total = (long long)n * c * inner;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        dx[idx] = dy[idx / inner] / (T)inner;
    }
}
