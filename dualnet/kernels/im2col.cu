// im2col / col2im for 2-D convolution (dilated, strided, zero-padded).
//
// x    : (n, c, h, w)                       C-contiguous
// cols : (c, kh, kw, n, out_h, out_w)       C-contiguous
//
// cols[ci, i, j, b, oy, ox] = x[b, ci, oy*sh - ph + i*dh, ox*sw - pw + j*dw]   (0 outside the image)
//
// Both kernels take the same scalar arguments in the same order.  One thread per OUTPUT element
// (gather), grid-stride loop over a 64-bit flat index; each output has exactly one writer, so
// col2im is deterministic.

template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols,
                       int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)c * kh * kw * n * out_h * out_w;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long r = idx;
        const int ox = (int)(r % out_w); r /= out_w;
        const int oy = (int)(r % out_h); r /= out_h;
        const int b = (int)(r % n); r /= n;
        const int j = (int)(r % kw); r /= kw;
        const int i = (int)(r % kh); r /= kh;
        const int ci = (int)r;
        const int iy = oy * sh - ph + i * dh;
        const int ix = ox * sw - pw + j * dw;
        T v = T(0);
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
            v = x[(((long long)b * c + ci) * h + iy) * w + ix];
        }
        cols[idx] = v;
    }
}

// x[b, ci, y, xx] = sum of every cols element that im2col would have copied from it,
// accumulated with i (kernel row) outer and j (kernel column) inner, both ascending.
template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ x,
                       int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                       int ph, int pw, int dh, int dw, int out_h, int out_w) {
    const long long total = (long long)n * c * h * w;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long r = idx;
        const int xx = (int)(r % w); r /= w;
        const int y = (int)(r % h); r /= h;
        const int ci = (int)(r % c); r /= c;
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
                sum += cols[((((long long)ci * kh + i) * kw + j) * n + b) * out_h * out_w
                            + (long long)oy * out_w + ox];
            }
        }
        x[idx] = sum;
    }
}
