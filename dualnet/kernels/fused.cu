// Convolution + bias + ReLU + max pooling in one pass, and the gradient it routes back.
//
// x (n, c, h, w), weight (o, c, kh, kw) (groups == 1), bias (o,), all C-contiguous.
// The convolution output z (n, o, out_h, out_w) is never stored: each pooled output recomputes
// the z values of its window. ReLU is monotone, so relu(max z) = max relu(z): the window's first
// maximum of z is found (row-major scan, a strictly greater value replaces the current one, as in
// maxpool_forward), y = max(best, 0), and argmax = oy * out_w + ox of the winner. Where best <= 0
// the gradient is zero whichever element won, so the choice among ReLU's zeros cannot matter.

// The window scan and the windows covering a position are max pooling's own (device.cuh).
#include "device.cuh"

// y, argmax: (n, o, pout_h, pout_w). z = sum over (ci, i, j) ascending of x * w, plus the bias.
template <typename T>
__global__ void conv_relu_maxpool_forward(const T* __restrict__ x, const T* __restrict__ weight,
                                          const T* __restrict__ bias, T* __restrict__ y,
                                          int* __restrict__ argmax, int n, int c, int h, int w, int o,
                                          int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                          int out_h, int out_w, int pkh, int pkw, int psh, int psw,
                                          int pph, int ppw, int pout_h, int pout_w, int has_bias) {
    const long long total = (long long)n * o * pout_h * pout_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, pout_h, pout_w);
        const int px = at.x, py = at.y;
        const int oc = (int)(at.plane % o);
        const long long b = idx / ((long long)pout_w * pout_h * o);
        const T* wo = weight + (long long)oc * c * kh * kw;
        const T* xb = x + b * c * h * w;
        // the pooling window scans the conv output z (out_h x out_w), computing each z it visits
        T best;
        const int arg = dn_window_first_max(py, px, pkh, pkw, psh, psw, pph, ppw, out_h, out_w, [&](int oy, int ox) {
            T z = T(0);
            for (int ci = 0; ci < c; ++ci) {
                const T* xc = xb + (long long)ci * h * w;
                const T* wc = wo + (long long)ci * kh * kw;
                dn_window_taps(oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, h, w, [&](int iy, int ix, int i, int j) {
                    z += xc[iy * w + ix] * wc[i * kw + j];
                });
            }
            if (has_bias) z += bias[oc];
            return z;
        }, best);
        y[idx] = best > T(0) ? best : T(0);
        argmax[idx] = arg;
    }
}

// dz in the channel-major layout (o, n, out_h * out_w) the weight-gradient product reads:
// dz[oc, b, oy, ox] = sum of dy over the pooling windows (py ascending, px ascending) whose argmax
// is (oy, ox) and whose output is positive (the ReLU's gradient mask).
template <typename T>
__global__ void conv_relu_maxpool_dz(const T* __restrict__ dy, const T* __restrict__ y,
                                     const int* __restrict__ argmax, T* __restrict__ dz, int n, int o,
                                     int out_h, int out_w, int pkh, int pkw, int psh, int psw, int pph,
                                     int ppw, int pout_h, int pout_w) {
    const long long total = (long long)o * n * out_h * out_w;
    DN_FOR_EACH(idx, total) {
        const DnPixel at = dn_pixel(idx, out_h, out_w);
        const int ox = at.x, oy = at.y;
        const long long b = at.plane % n;
        const long long oc = idx / ((long long)out_w * out_h * n);
        const long long base = (b * o + oc) * pout_h * pout_w;
        const int me = oy * out_w + ox;
        T sum = T(0);
        dn_windows_covering(oy, ox, pkh, pkw, psh, psw, pph, ppw, pout_h, pout_w, [&](int py, int px) {
            const long long k = base + (long long)py * pout_w + px;
            if (argmax[k] == me && y[k] > T(0)) sum += dy[k];
        });
        dz[idx] = sum;
    }
}
