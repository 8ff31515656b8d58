// The training loop's own device work: one batch gathered, one step's tally.

// xb[r] = images[order[start + r]] (per elements each), yb[r] = labels[order[start + r]]:
// one thread per output element, xb's first, then yb's.
template <typename T>
__global__ void gather_batch(const T* __restrict__ images, const int* __restrict__ labels,
                             const int* __restrict__ order, T* __restrict__ xb, int* __restrict__ yb,
                             int count, int per, int total, int start, int b) {
    const long long nx = (long long)b * per;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < nx + b;
         idx += (long long)blockDim.x * gridDim.x) {
        if (idx < nx) {
            const long long r = idx / per;
            xb[idx] = images[(long long)order[start + r] * per + idx % per];
        } else {
            yb[idx - nx] = labels[order[start + (int)(idx - nx)]];
        }
    }
}

// One step's tally, kept on the device until the loop reports:
//   thread 0:      tally[slot] = loss * n (the batch's loss sum); tally[cap + slot] = the number
//                  of rows whose first maximal logit is the label;
//   thread 1 + t:  scans grad[t * chunk, (t + 1) * chunk) and, if a value is not finite and
//                  tally[2 * cap + t] is still 0, stores step there (the first bad step, from 1).
// Values are T; steps are exact below 2**24 in float.
template <typename T>
__global__ void step_stats(const T* __restrict__ loss, const T* __restrict__ logits, const int* __restrict__ labels,
                           const T* __restrict__ grad, T* __restrict__ tally, int n, int k, long long size,
                           int chunk, int nchunks, int cap, int slot, int step) {
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < 1 + (long long)nchunks;
         idx += (long long)blockDim.x * gridDim.x) {
        if (idx == 0) {
            int correct = 0;
            for (int r = 0; r < n; ++r) {
                const T* row = logits + (long long)r * k;
                int best = 0;
                for (int j = 1; j < k; ++j) {
                    const T v = row[j];
                    const T m = row[best];
                    if (v > m || (v != v && m == m)) best = j;  // NaN wins, as argmax's does
                }
                correct += best == labels[r];
            }
            tally[slot] = loss[0] * (T)n;
            tally[cap + slot] = (T)correct;
        } else {
            const long long t = idx - 1;
            const long long lo = t * chunk;
            const long long hi = lo + chunk < size ? lo + chunk : size;
            bool bad = false;
            for (long long e = lo; e < hi; ++e) {
                const T g = grad[e];
                bad = bad || !(g - g == T(0));  // inf - inf and NaN - NaN are NaN
            }
            T* flag = tally + 2 * (long long)cap + t;
            if (bad && *flag == T(0)) *flag = (T)step;
        }
    }
}
