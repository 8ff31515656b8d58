// Softmax cross-entropy, forward (one warp per row) and backward (one thread per element).
// logits, probs, dlogits : (n, k) C-contiguous; labels, loss : (n,).
#include "device.cuh"

// One warp per row (DN_BLOCK / 32 rows per block): lane l takes columns l, l + 32, ...
// m = row max; s = sum_j exp(l_j - m) (each lane's columns ascending, then the warp's fixed
// shuffle tree); probs = exp(l - m) / s; loss = log(s) - (l[label] - m): the shifted logit first,
// so that near |m| ~ 50 the small terms of log(s) are not rounded away in log(s) + m (the
// reference and the CPU table use this order). A label outside [0, k) yields loss = NaN (never an
// out-of-bounds read). A NaN logit makes s, every prob and the loss NaN, as in the reference.
template <typename T>
__global__ void softmax_xent_forward(const T* __restrict__ logits, const int* __restrict__ labels,
                                     T* __restrict__ probs, T* __restrict__ loss, int n, int k) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return;  // the whole warp: row is the same for its 32 lanes
    const T* l = logits + (long long)row * k;
    T* p = probs + (long long)row * k;
    T m = l[lane < k ? lane : 0];
    for (int j = lane + 32; j < k; j += 32) m = l[j] > m ? l[j] : m;
    for (int off = 16; off > 0; off >>= 1) {
        const T other = __shfl_down_sync(DN_FULL_MASK, m, off);
        m = other > m ? other : m;
    }
    m = __shfl_sync(DN_FULL_MASK, m, 0);
    T s = T(0);
    for (int j = lane; j < k; j += 32) s += dn_exp(l[j] - m);
    s = __shfl_sync(DN_FULL_MASK, dn_warp_sum(s), 0);
    for (int j = lane; j < k; j += 32) p[j] = dn_exp(l[j] - m) / s;
    if (lane == 0) {
        const int label = labels[row];
        const T picked = (label >= 0 && label < k) ? l[label] : dn_sqrt(T(-1));
        loss[row] = dn_log(s) - (picked - m);
    }
}

// dlogits[row, j] = (probs[row, j] - (j == labels[row])) * scale.
template <typename T>
__global__ void softmax_xent_backward(const T* __restrict__ probs, const int* __restrict__ labels,
                                      T* __restrict__ dlogits, int n, int k, T scale) {
    const long long total = (long long)n * k;
    DN_FOR_EACH(idx, total) {
        const int j = (int)(idx % k);
        const T hit = (j == labels[idx / k]) ? T(1) : T(0);
        dlogits[idx] = (probs[idx] - hit) * scale;
    }
}
