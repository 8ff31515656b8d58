// Backward kernels that end in a parameter gradient added into its buffer, fusing what a layer's
// backward would otherwise launch separately: a linear layer's ReLU mask with its bias gradient,
// and a small convolution's weight and bias gradients straight from its input (no column matrix).
#include "device.cuh"

// The backward of relu(linear(x)) up to the products: dz = y > 0 ? dy : 0 for dy, y (n, o), and
// bgrad[j] += the sum of column j of dz (the linear layer's bias gradient, added into its buffer).
// One warp per column (DN_BLOCK / 32 columns per block): lane l takes rows l, l + 32, ... and the
// warp folds its lanes in the fixed shuffle order: deterministic, one writer per output.
template <typename T>
__global__ void relu_bias_grad(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dz,
                               T* __restrict__ bgrad, int n, int o) {
    const int lane = threadIdx.x & 31;
    const int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (j >= o) return;  // the whole warp
    T s = T(0);
    for (int b = lane; b < n; b += 32) {
        const long long at = (long long)b * o + j;
        const T g = y[at] > T(0) ? dy[at] : T(0);
        dz[at] = g;
        s += g;
    }
    s = dn_warp_sum(s);
    if (lane == 0) bgrad[j] += s;
}

// A small convolution's parameter gradients straight from its input, with no column matrix (the
// fused convolution + ReLU + max pooling's backward, LeNet-sized layers): one block per (tap t,
// output channel oc), grid (c * kh * kw + 1, o). Tap t = (ci * kh + i) * kw + j adds into
// wgrad[oc, t] the sum over (b, oy, ox) of dz[oc, b, oy, ox] * x[b, ci, oy * sh - ph + i * dh,
// ox * sw - pw + j * dw] (zero padding: out-of-range taps add nothing); the last block (t == k)
// adds the sum of dz[oc, ...] into bgrad[oc]. dz: (o, n * out_h * out_w), channel-major, as
// conv_relu_maxpool_dz writes it. Thread u takes positions u, u + B, ...; a fixed-order tree per
// block: deterministic, one writer per output. The caller keeps n * out_h * out_w under 2^31.
template <typename T>
__global__ void conv_wgrad_direct(const T* __restrict__ dz, const T* __restrict__ x, T* __restrict__ wgrad,
                                  T* __restrict__ bgrad, int n, int c, int h, int w, int o, int kh, int kw, int sh,
                                  int sw, int ph, int pw, int dh, int dw, int out_h, int out_w, int has_wgrad,
                                  int has_bgrad) {
    DN_SHARED(T, scratch, 32);
    const int t = blockIdx.x, oc = blockIdx.y;
    const int k = c * kh * kw, hw = out_h * out_w, total = n * hw;
    const T* __restrict__ row = dz + (long long)oc * total;
    T s = T(0);
    if (t == k) {
        for (int q = threadIdx.x; q < total; q += blockDim.x) s += row[q];
    } else if ((int)threadIdx.x < total) {
        const int ci = t / (kh * kw), r = t % (kh * kw);
        const int y0 = (r / kw) * dh - ph, x0 = (r % kw) * dw - pw;
        // position q = (b, oy, ox), decoded once, then advanced by the block's stride with carries
        // (additions only: no division per position)
        const int step = blockDim.x, sb = step / hw, sp = step % hw, soy = sp / out_w, sox = sp % out_w;
        int b = (int)threadIdx.x / hw, oy = (int)threadIdx.x % hw / out_w, ox = (int)threadIdx.x % out_w;
        for (int q = threadIdx.x; q < total; q += step) {
            const int iy = oy * sh + y0, ix = ox * sw + x0;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += row[q] * x[(((long long)b * c + ci) * h + iy) * w + ix];
            ox += sox;
            oy += soy;
            b += sb;
            if (ox >= out_w) {
                ox -= out_w;
                ++oy;
            }
            if (oy >= out_h) {
                oy -= out_h;
                ++b;
            }
        }
    }
    s = dn_block_sum(s, scratch);
    if (threadIdx.x == 0) {
        if (t == k) {
            if (has_bgrad) bgrad[oc] += s;
        } else if (has_wgrad) {
            wgrad[(long long)oc * k + t] += s;
        }
    }
}
