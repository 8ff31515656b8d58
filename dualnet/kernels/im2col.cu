// im2col / col2im for 2-D convolution (dilated, strided, zero-padded).
//
// x    : (n, c, h, w)                       C-contiguous
// cols : (c, kh, kw, n, out_h, out_w)       C-contiguous
//
// cols[ci, i, j, b, oy, ox] = x[b, ci, oy*sh - ph + i*dh, ox*sw - pw + j*dw]   (0 outside the image)
//
// Both kernels take the same scalar arguments in the same order.  One thread per OUTPUT element
// (gather), grid-stride loop over a flat index; each output has exactly one writer, so col2im is
// deterministic. The index math is 32-bit (unsigned) whenever both arrays and the grid stride fit
// in it, which is every layer of the zoo: a 64-bit division costs ~4x a 32-bit one, and the
// decode is most of these kernels' instructions.

// True when every flat index of arrays of `a` and `b` elements, plus one grid stride, fits in 32 bits.
__device__ __forceinline__ bool dn_fits_32(long long a, long long b) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    return a + stride <= 0xFFFFFFFFll && b + stride <= 0xFFFFFFFFll;
}

template <typename I, typename T>
__device__ __forceinline__ void im2col_range(const T* __restrict__ x, T* __restrict__ cols, int n, int c, int h,
                                             int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                             int out_h, int out_w, I total) {
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        I r = idx;
        const int ox = (int)(r % (I)out_w); r /= (I)out_w;
        const int oy = (int)(r % (I)out_h); r /= (I)out_h;
        const int b = (int)(r % (I)n); r /= (I)n;
        const int j = (int)(r % (I)kw); r /= (I)kw;
        const int i = (int)(r % (I)kh); r /= (I)kh;
        const int ci = (int)r;
        const int iy = oy * sh - ph + i * dh;
        const int ix = ox * sw - pw + j * dw;
        T v = T(0);
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
            v = x[(((I)b * (I)c + (I)ci) * (I)h + (I)iy) * (I)w + (I)ix];
        }
        cols[idx] = v;
    }
}

template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols,
                       int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)c * kh * kw * n * out_h * out_w;
    if (dn_fits_32(total, (long long)n * c * h * w)) {
        im2col_range<unsigned>(x, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, (unsigned)total);
    } else {
        im2col_range<long long>(x, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, total);
    }
}

// x[b, ci, y, xx] = sum of every cols element that im2col would have copied from it,
// accumulated with i (kernel row) outer and j (kernel column) inner, both ascending.
template <typename I, typename T>
__device__ __forceinline__ void col2im_range(const T* __restrict__ cols, T* __restrict__ x, int n, int c, int h,
                                             int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                             int out_h, int out_w, I total) {
    const I plane = (I)out_h * (I)out_w;
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        I r = idx;
        const int xx = (int)(r % (I)w); r /= (I)w;
        const int y = (int)(r % (I)h); r /= (I)h;
        const int ci = (int)(r % (I)c); r /= (I)c;
        const int b = (int)r;
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const int ty = y + ph - i * dh;  // = oy * sh when row i of window oy covers y
            if (ty < 0) break;               // decreases with i
            if (ty % sh != 0) continue;
            const int oy = ty / sh;
            if (oy >= out_h) continue;
            for (int j = 0; j < kw; ++j) {
                const int tx = xx + pw - j * dw;
                if (tx < 0) break;
                if (tx % sw != 0) continue;
                const int ox = tx / sw;
                if (ox >= out_w) continue;
                sum += cols[((((I)ci * (I)kh + (I)i) * (I)kw + (I)j) * (I)n + (I)b) * plane
                            + (I)oy * (I)out_w + (I)ox];
            }
        }
        x[idx] = sum;
    }
}

template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ x,
                       int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)n * c * h * w;
    if (dn_fits_32(total, (long long)c * kh * kw * n * out_h * out_w)) {
        col2im_range<unsigned>(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, (unsigned)total);
    } else {
        col2im_range<long long>(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, total);
    }
}
