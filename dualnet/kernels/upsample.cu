// 2-D upsampling (Upsample: nearest, bilinear), forward and backward, from per-axis tables.
//
// x, dx : (n, c, h, w)      y, dy : (n, c, out_h, out_w)
// Along each axis output o reads input i0[o] with weight 1 - lam[o] and i1[o] with weight lam[o]
// (nearest: i1 = i0, lam = 0). The host builds the tables once per geometry with the reference's
// own function (ops/reference_layers.py, upsample_source), so every device picks the same source
// indices; first[i]..last[i] are the outputs whose i0 or i1 is i (a contiguous range: the tables
// are non-decreasing), so backward gathers: one writer per element, in a fixed order.

#include "device.cuh"

// Weight of input i in output o along one axis.
template <typename T>
__device__ __forceinline__ T dn_up_weight(int i, int o, const int* i0, const int* i1, const T* lam) {
    T wgt = T(0);
    if (i0[o] == i) wgt += T(1) - lam[o];
    if (i1[o] == i) wgt += lam[o];
    return wgt;
}

template <typename T>
__global__ void upsample2d_forward(const T* __restrict__ x, T* __restrict__ y, const int* __restrict__ row0,
                                   const int* __restrict__ row1, const T* __restrict__ rlam,
                                   const int* __restrict__ col0, const int* __restrict__ col1,
                                   const T* __restrict__ clam, int n, int c, int h, int w, int out_h, int out_w) {
    const long long total = (long long)n * c * out_h * out_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, out_h, out_w);
        const int ox = at.x, oy = at.y;
        const T* xp = x + at.plane * h * w;
        const T ly = rlam[oy], lx = clam[ox];
        const T* r0 = xp + (long long)row0[oy] * w;
        const T* r1 = xp + (long long)row1[oy] * w;
        T top = r0[col0[ox]] * (T(1) - lx);
        T bottom = ly != T(0) ? r1[col0[ox]] * (T(1) - lx) : T(0);
        if (lx != T(0)) {
            top += r0[col1[ox]] * lx;
            if (ly != T(0)) bottom += r1[col1[ox]] * lx;
        }
        y[idx] = ly != T(0) ? top * (T(1) - ly) + bottom * ly : top;
    }
}

// dx[b, ci, iy, ix] = sum over the outputs (oy, ox) reading it of wy * wx * dy: rows outer,
// columns inner, both ascending.
template <typename T>
__global__ void upsample2d_backward(const T* __restrict__ dy, T* __restrict__ dx, const int* __restrict__ row0,
                                    const int* __restrict__ row1, const T* __restrict__ rlam,
                                    const int* __restrict__ rfirst, const int* __restrict__ rlast,
                                    const int* __restrict__ col0, const int* __restrict__ col1,
                                    const T* __restrict__ clam, const int* __restrict__ cfirst,
                                    const int* __restrict__ clast, int n, int c, int h, int w, int out_h,
                                    int out_w) {
    const long long total = (long long)n * c * h * w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, h, w);
        const int ix = at.x, iy = at.y;
        const T* dyp = dy + at.plane * out_h * out_w;
        T sum = T(0);
        for (int oy = rfirst[iy]; oy <= rlast[iy]; ++oy) {
            const T wy = dn_up_weight(iy, oy, row0, row1, rlam);
            if (wy == T(0)) continue;
            T row = T(0);
            for (int ox = cfirst[ix]; ox <= clast[ix]; ++ox) {
                row += dn_up_weight(ix, ox, col0, col1, clam) * dyp[(long long)oy * out_w + ox];
            }
            sum += wy * row;
        }
        dx[idx] = sum;
    }
}
