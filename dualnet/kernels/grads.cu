// Gradient accumulation: a layer's weight and bias gradients added in one launch; the
// per-channel sums a bias gradient is.
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

// A linear layer's gradients from its output gradient dy (n, o) and dw = dy^T x (o, k):
// wgrad += dw; and, when has_bias, bgrad[j] += sum over rows b ascending of dy[b, j], each
// bias element gathered by its own thread (n is a batch: a short loop).
template <typename T>
__global__ void linear_grad_accumulate(const T* __restrict__ dw, const T* __restrict__ dy, T* __restrict__ wgrad,
                                       T* __restrict__ bgrad, int n, int o, int k, int has_bias) {
    const long long nw = (long long)o * k;
    const long long total = nw + (long long)has_bias * o;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        if (idx < nw) {
            wgrad[idx] += dw[idx];
        } else {
            const int j = (int)(idx - nw);
            T s = T(0);
            for (int b = 0; b < n; ++b) s += dy[(long long)b * o + j];
            bgrad[j] += s;
        }
    }
}

// y[ch] = sum of x[:, ch, :] for x (n, c, inner): a convolution's bias gradient (dy as (n, o,
// out_h * out_w), or dz as (1, o, n * out_h * out_w)). One block per channel, coalesced strided
// partial sums, then the fixed-order tree: deterministic, one writer per output.
template <typename T>
__global__ void channel_sums(const T* __restrict__ x, T* __restrict__ y, int n, int c, int inner) {
    DN_SHARED(T, scratch, 32);
    T s = T(0);
    dn_channel_each(n, c, inner, blockIdx.x, [&](long long o) { s += x[o]; });
    s = dn_block_sum(s, scratch);
    if (threadIdx.x == 0) y[blockIdx.x] = s;
}
