// 2-D max and average pooling, forward and backward.
//
// x, dx : (n, c, h, w)          y, dy, argmax : (n, c, out_h, out_w)      all C-contiguous
// Window (oy, ox) covers rows oy*sh - ph + i*dh (0 <= i < kh) and columns ox*sw - pw + j*dw
// (0 <= j < kw): the convolution's geometry and argument order (ph, pw: the leading pads; out_h,
// out_w count the trailing ones, ceil_mode's included). Padding is never chosen by max pooling.
// Average pooling divides by PyTorch's divisor: with include_pad, the window's taps inside the
// input padded by ph, pw on each side (so a ceil_mode window reaching past that counts no
// further), else its taps inside the input.  Callers guarantee every window holds an in-bounds
// element.  Backward kernels gather (one thread per dx element, the only writer of it):
// deterministic.

// dn_pool_first / dn_pool_last (device.cuh): the first and last output row (or column) whose
// window can cover an input position; they take the window's extent, (k - 1) * d + 1, as k.
#include "device.cuh"

// Taps of a window starting at `start` (stride d, k taps) inside [low, high).
__device__ __forceinline__ int dn_pool_taps(int start, int k, int d, int low, int high) {
    int count = 0;
    for (int i = 0; i < k; ++i) {
        const int p = start + i * d;
        count += (p >= low && p < high) ? 1 : 0;
    }
    return count;
}

// y = max over the in-bounds window, scanned row-major; a strictly greater value replaces the
// current one, so the first maximal element wins ties.  argmax = iy * w + ix of the winner, -1
// for a window without an in-bounds element.
template <typename T>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax,
                                int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)n * c * out_h * out_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, out_h, out_w);
        const int ox = at.x, oy = at.y;
        const long long plane = at.plane;  // b * c + ci
        const T* xp = x + plane * h * w;
        T best = T(0);
        int arg = -1;
        dn_window_taps(oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, h, w, [&](int iy, int ix, int, int) {
            const T v = xp[iy * w + ix];
            if (arg < 0 || v > best) {
                best = v;
                arg = iy * w + ix;
            }
        });
        // a dilated window may hold only padding (PyTorch allows it): -inf, and no input gets its gradient
        y[idx] = arg < 0 ? -(T(1e308) * T(10)) : best;
        argmax[idx] = arg;
    }
}

// dx[b, ci, iy, ix] = sum of dy over the windows that chose (iy, ix); oy ascending outer, ox inner.
template <typename T>
__global__ void maxpool_backward(const T* __restrict__ dy, const int* __restrict__ argmax,
                                 T* __restrict__ dx,
                                 int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)n * c * h * w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, h, w);
        const int ix = at.x, iy = at.y;
        const long long base = at.plane * out_h * out_w;
        const int me = iy * w + ix;
        const int oy1 = dn_pool_last(iy, sh, ph, out_h);
        const int ox0 = dn_pool_first(ix, (kw - 1) * dw + 1, sw, pw);
        const int ox1 = dn_pool_last(ix, sw, pw, out_w);
        T sum = T(0);
        for (int oy = dn_pool_first(iy, (kh - 1) * dh + 1, sh, ph); oy <= oy1; ++oy) {
            for (int ox = ox0; ox <= ox1; ++ox) {
                const long long o = base + (long long)oy * out_w + ox;
                if (argmax[o] == me) sum += dy[o];
            }
        }
        dx[idx] = sum;
    }
}

// y = (sum of the in-bounds window elements, row-major) / PyTorch's divisor (see the top).
template <typename T>
__global__ void avgpool_forward(const T* __restrict__ x, T* __restrict__ y,
                                int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                int ph, int pw, int dh, int dw, int out_h, int out_w, int include_pad) {
    const long long total = (long long)n * c * out_h * out_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, out_h, out_w);
        const int ox = at.x, oy = at.y;
        const T* xp = x + at.plane * h * w;
        T sum = T(0);
        dn_window_taps(oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, h, w, [&](int iy, int ix, int, int) {
            sum += xp[iy * w + ix];
        });
        const int rows = include_pad ? dn_pool_taps(oy * sh - ph, kh, dh, -ph, h + ph) : dn_pool_taps(oy * sh - ph, kh, dh, 0, h);
        const int cols = include_pad ? dn_pool_taps(ox * sw - pw, kw, dw, -pw, w + pw) : dn_pool_taps(ox * sw - pw, kw, dw, 0, w);
        y[idx] = sum / (T)(rows * cols);
    }
}

// dx[b, ci, iy, ix] = sum over the windows covering (iy, ix) of dy / divisor; the sum runs oy
// descending outer, ox descending inner, i.e. kernel offsets (i, j) ascending like col2im.
template <typename T>
__global__ void avgpool_backward(const T* __restrict__ dy, T* __restrict__ dx,
                                 int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int dh, int dw, int out_h, int out_w, int include_pad) {
    const long long total = (long long)n * c * h * w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, h, w);
        const int ix = at.x, iy = at.y;
        const T* dyp = dy + at.plane * out_h * out_w;
        const int ox0 = dn_pool_first(ix, (kw - 1) * dw + 1, sw, pw);
        const int ox1 = dn_pool_last(ix, sw, pw, out_w);
        const int oy0 = dn_pool_first(iy, (kh - 1) * dh + 1, sh, ph);
        T sum = T(0);
        for (int oy = dn_pool_last(iy, sh, ph, out_h); oy >= oy0; --oy) {
            const int ty = iy + ph - oy * sh;  // = i * dh when row i of window oy covers iy
            if (ty % dh != 0) continue;
            const int rows = include_pad ? dn_pool_taps(oy * sh - ph, kh, dh, -ph, h + ph)
                                         : dn_pool_taps(oy * sh - ph, kh, dh, 0, h);
            for (int ox = ox1; ox >= ox0; --ox) {
                const int tx = ix + pw - ox * sw;
                if (tx % dw != 0) continue;
                const int cols = include_pad ? dn_pool_taps(ox * sw - pw, kw, dw, -pw, w + pw)
                                             : dn_pool_taps(ox * sw - pw, kw, dw, 0, w);
                sum += dyp[(long long)oy * out_w + ox] / (T)(rows * cols);
            }
        }
        dx[idx] = sum;
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
    DN_FOR_EACH(idx, total) {
        dx[idx] = dy[idx / inner] / (T)inner;
    }
}
