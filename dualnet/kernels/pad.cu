// 2-D padding (ZeroPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d), forward and backward.
//
// x, dx : (n, c, h, w)      y, dy : (n, c, out_h, out_w), out_h = h + top + bottom, out_w likewise.
// mode: 0 constant (value fills; negative pads crop), 1 reflect (mirror about the edge element,
// pads < size), 2 replicate (the edge element repeats).
// Forward gathers one input element per output; backward gathers, for each input element, the
// outputs that read it (one writer per element, a fixed order: deterministic).

#include "device.cuh"

// Input index read by output position o along an axis (-1: the constant fill).
__device__ __forceinline__ int dn_pad_src(int o, int before, int size, int mode) {
    int p = o - before;
    if (mode == 0) return (p >= 0 && p < size) ? p : -1;
    if (mode == 1) {
        if (size == 1) return 0;
        const int period = 2 * (size - 1);
        p = p < 0 ? -p : p;
        p %= period;
        return p >= size ? period - p : p;
    }
    return p < 0 ? 0 : (p >= size ? size - 1 : p);
}

// The output positions along an axis that read input position i, as up to three ranges
// [lo[t], hi[t]] (ascending, disjoint); returns how many. Reflection (pads < size): the direct
// position, its mirror in the leading pad and its mirror in the trailing pad; replication: one
// range that stretches over a pad at an edge; constant: the direct position.
__device__ __forceinline__ int dn_pad_readers(int i, int before, int size, int out, int mode, int* lo, int* hi) {
    int count = 0;
    const int direct = i + before;
    if (mode == 1 && size > 1) {
        const int left = before - i;                       // o - before = -i
        const int right = before + 2 * (size - 1) - i;     // o - before = 2(size-1) - i
        if (i > 0 && left >= 0) { lo[count] = left; hi[count] = left; ++count; }
        if (direct >= 0 && direct < out) { lo[count] = direct; hi[count] = direct; ++count; }
        if (i < size - 1 && right < out) { lo[count] = right; hi[count] = right; ++count; }
        return count;
    }
    if (mode == 2 || (mode == 1 && size == 1)) {
        int a = i == 0 ? 0 : direct;
        int b = i == size - 1 ? out - 1 : direct;
        a = a < 0 ? 0 : a;
        b = b > out - 1 ? out - 1 : b;
        if (a <= b) { lo[0] = a; hi[0] = b; count = 1; }
        return count;
    }
    if (direct >= 0 && direct < out) { lo[0] = direct; hi[0] = direct; count = 1; }
    return count;
}

template <typename T>
__global__ void pad2d_forward(const T* __restrict__ x, T* __restrict__ y, int n, int c, int h, int w, int out_h,
                              int out_w, int top, int left, int mode, T value) {
    const long long total = (long long)n * c * out_h * out_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, out_h, out_w);
        const int ox = at.x, oy = at.y;
        const long long plane = at.plane;
        const int iy = dn_pad_src(oy, top, h, mode);
        const int ix = dn_pad_src(ox, left, w, mode);
        y[idx] = (iy < 0 || ix < 0) ? value : x[(plane * h + iy) * w + ix];
    }
}

// dx[b, ci, iy, ix] = sum of dy over the outputs that read (iy, ix): rows outer, columns inner,
// both ascending.
template <typename T>
__global__ void pad2d_backward(const T* __restrict__ dy, T* __restrict__ dx, int n, int c, int h, int w, int out_h,
                               int out_w, int top, int left, int mode) {
    const long long total = (long long)n * c * h * w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, h, w);
        const int ix = at.x, iy = at.y;
        const T* dyp = dy + at.plane * out_h * out_w;
        int rlo[3], rhi[3], clo[3], chi[3];
        const int nr = dn_pad_readers(iy, top, h, out_h, mode, rlo, rhi);
        const int nc = dn_pad_readers(ix, left, w, out_w, mode, clo, chi);
        T sum = T(0);
        for (int a = 0; a < nr; ++a) {
            for (int oy = rlo[a]; oy <= rhi[a]; ++oy) {
                for (int b = 0; b < nc; ++b) {
                    for (int ox = clo[b]; ox <= chi[b]; ++ox) sum += dyp[(long long)oy * out_w + ox];
                }
            }
        }
        dx[idx] = sum;
    }
}
