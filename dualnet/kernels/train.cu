// The training loop's own device work: one batch gathered, one step's tally.

#include "device.cuh"

// xb[r] = images[order[start + r]] (per elements each), yb[r] = labels[order[start + r]]:
// one thread per output element, xb's first, then yb's.
template <typename T>
__global__ void gather_batch(const T* __restrict__ images, const int* __restrict__ labels,
                             const int* __restrict__ order, T* __restrict__ xb, int* __restrict__ yb,
                             int count, int per, int total, int start, int b) {
    const long long nx = (long long)b * per;
    DN_FOR_EACH(idx, nx + b) {
        if (idx < nx) {
            const long long r = idx / per;
            xb[idx] = images[(long long)order[start + r] * per + idx % per];
        } else {
            yb[idx - nx] = labels[order[start + (int)(idx - nx)]];
        }
    }
}

// One step's tally, kept on the device until the loop reports. Block 0 (DN_BLOCK threads):
//   tally[slot] = loss * n (the batch's loss sum); tally[cap + slot] = the number of rows whose
//   first maximal logit (the first NaN, if any: NaN wins, as argmax's does) is the label: one
//   warp per row, lanes over columns, the warp's candidates combined by (NaN, value, lowest
//   column), the per-warp counts summed in a fixed tree.
// Block 1 + t: scans grad[t * chunk, (t + 1) * chunk) with its threads (coalesced) and, if a
//   value is not finite and tally[2 * cap + t] is still 0, stores step there (the first bad step,
//   from 1).
// Values are T; counts and steps are exact below 2**24 in float.

// Does candidate (v, j) beat (bv, bj) as the first maximal logit (NaN first)? j < 0: no candidate.
template <typename T>
__device__ __forceinline__ bool dn_beats(T v, int j, T bv, int bj) {
    if (j < 0) return false;
    if (bj < 0) return true;
    const bool vnan = v != v, bnan = bv != bv;
    if (vnan != bnan) return vnan;
    if (!vnan && v != bv) return v > bv;
    return j < bj;
}

template <typename T>
__global__ void step_stats(const T* __restrict__ loss, const T* __restrict__ logits, const int* __restrict__ labels,
                           const T* __restrict__ grad, T* __restrict__ tally, int n, int k, long long size,
                           int chunk, int nchunks, int cap, int slot, int step) {
    DN_SHARED(T, scratch, 32);
    if (blockIdx.x == 0) {
        const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
        T correct = T(0);
        for (int r = threadIdx.x >> 5; r < n; r += warps) {
            const T* row = logits + (long long)r * k;
            T bv = T(0);
            int bj = -1;
            for (int j = lane; j < k; j += 32) {
                const T v = row[j];
                if (dn_beats(v, j, bv, bj)) {
                    bv = v;
                    bj = j;
                }
            }
            for (int off = 16; off > 0; off >>= 1) {
                const T v = __shfl_down_sync(DN_FULL_MASK, bv, off);
                const int j = __shfl_down_sync(DN_FULL_MASK, bj, off);
                if (lane + off < 32 && dn_beats(v, j, bv, bj)) {
                    bv = v;
                    bj = j;
                }
            }
            if (lane == 0 && bj == labels[r]) correct += T(1);
        }
        correct = dn_block_sum(correct, scratch);
        if (threadIdx.x == 0) {
            tally[slot] = loss[0] * (T)n;
            tally[cap + slot] = correct;
        }
    } else {
        const long long t = blockIdx.x - 1;
        const long long lo = t * chunk;
        const long long hi = lo + chunk < size ? lo + chunk : size;
        T bad = T(0);
        for (long long e = lo + threadIdx.x; e < hi; e += blockDim.x) {
            const T g = grad[e];
            if (!(g - g == T(0))) bad = T(1);  // inf - inf and NaN - NaN are NaN
        }
        bad = dn_block_sum(bad, scratch);
        T* flag = tally + 2 * (long long)cap + t;
        if (threadIdx.x == 0 && bad > T(0) && *flag == T(0)) *flag = (T)step;
    }
}
