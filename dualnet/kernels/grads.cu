// Gradient accumulation: gradients an op returned (batch norm's) added in one launch; the
// per-channel sums a bias gradient is, added into its buffer.
#include "device.cuh"

// wgrad[i] += dw[i] for i < nw, then bgrad[i - nw] += db[i - nw]: one thread per element.
template <typename T>
__global__ void accumulate_grads(const T* __restrict__ dw, const T* __restrict__ db, T* __restrict__ wgrad,
                                 T* __restrict__ bgrad, long long nw, long long nb) {
    const long long total = nw + nb;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        if (idx < nw) wgrad[idx] += dw[idx];
        else bgrad[idx - nw] += db[idx - nw];
    }
}

// y[ch] += sum of x[:, ch, :] for x (n, c, inner): a bias gradient added into its buffer (a
// convolution's dy as (1, o, n * out_h * out_w) channel-major, a linear layer's dy as (n, o, 1)).
// One block per channel, coalesced strided partial sums, then the fixed-order tree:
// deterministic, one writer per output; the add is one rounding, as `y += sums` is.
template <typename T>
__global__ void channel_sums(const T* __restrict__ x, T* __restrict__ y, int n, int c, int inner) {
    DN_SHARED(T, scratch, 32);
    T s = T(0);
    dn_channel_each(n, c, inner, blockIdx.x, [&](long long o) { s += x[o]; });
    s = dn_block_sum(s, scratch);
    if (threadIdx.x == 0) y[blockIdx.x] += s;
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
