// Gradient accumulation: gradients an op returned (batch norm's) added in one launch; the
// per-channel sums a bias gradient is, added into its buffer.
#include "device.cuh"

// wgrad[i] += dw[i] for i < nw, then bgrad[i - nw] += db[i - nw]: one thread per element.
template <typename T>
__global__ void accumulate_grads(const T* __restrict__ dw, const T* __restrict__ db, T* __restrict__ wgrad,
                                 T* __restrict__ bgrad, long long nw, long long nb) {
    const long long total = nw + nb;
    DN_FOR_EACH(idx, total) {
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
