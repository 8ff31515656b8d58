// Batch normalization, training forward and backward, in gather-style passes (each output has one writer).
//
// x, y, dy, dx : (n, c, inner) C-contiguous (inner = H*W for BatchNorm2d, L or 1 for BatchNorm1d).
// Per-channel statistics are reduced in two deterministic stages: one thread per (b, ch) row sums
// its `inner` contiguous values, then one thread per channel combines the n rows in ascending b.
// Every row holds the same count, so the rows' means and centred sums of squares combine exactly
// (Chan et al.): M2 = sum_b M2_b + inner * sum_b (mean_b - mean)^2, with no cancellation.

__device__ __forceinline__ float dn_norm_rsqrt(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double dn_norm_rsqrt(double v) { return 1.0 / sqrt(v); }

// row_mean[b, ch] = mean of x[b, ch, :]; row_m2[b, ch] = sum of (x - row_mean)^2 (two passes).
template <typename T>
__global__ void bn_row_moments(const T* __restrict__ x, T* __restrict__ row_mean, T* __restrict__ row_m2,
                               int n, int c, int inner) {
    const long long total = (long long)n * c;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const T* p = x + idx * inner;
        T sum = T(0);
        for (int k = 0; k < inner; ++k) sum += p[k];
        const T mean = sum / (T)inner;
        T m2 = T(0);
        for (int k = 0; k < inner; ++k) {
            const T d = p[k] - mean;
            m2 += d * d;
        }
        row_mean[idx] = mean;
        row_m2[idx] = m2;
    }
}

// One thread per channel: combine the rows into the batch mean and biased variance, then
// inv_std = 1 / sqrt(var + eps), scale = weight * inv_std, and update the running statistics
// in place: running = (1 - momentum) * running + momentum * stat, unbiased variance M2 / (m - 1).
template <typename T>
__global__ void bn_channel_stats(const T* __restrict__ row_mean, const T* __restrict__ row_m2,
                                 const T* __restrict__ weight, T* __restrict__ running_mean,
                                 T* __restrict__ running_var, T* __restrict__ mean, T* __restrict__ inv_std,
                                 T* __restrict__ scale, int n, int c, int inner, T eps, T momentum) {
    for (long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x; ch < c;
         ch += (long long)blockDim.x * gridDim.x) {
        T sum = T(0);
        for (int b = 0; b < n; ++b) sum += row_mean[(long long)b * c + ch];
        const T mu = sum / (T)n;
        T within = T(0), between = T(0);
        for (int b = 0; b < n; ++b) {
            const long long r = (long long)b * c + ch;
            const T d = row_mean[r] - mu;
            within += row_m2[r];
            between += d * d;
        }
        const T m2 = within + (T)inner * between;
        const T count = (T)n * (T)inner;
        const T is = dn_norm_rsqrt(m2 / count + eps);
        mean[ch] = mu;
        inv_std[ch] = is;
        scale[ch] = weight[ch] * is;
        running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mu;
        running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * (m2 / (count - T(1)));
    }
}

// y = (x - mean[ch]) * scale[ch] + bias[ch]: training (batch statistics) and eval (running ones).
template <typename T>
__global__ void bn_apply(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ scale,
                         const T* __restrict__ bias, T* __restrict__ y, int n, int c, int inner) {
    const long long total = (long long)n * c * inner;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)((idx / inner) % c);
        y[idx] = (x[idx] - mean[ch]) * scale[ch] + bias[ch];
    }
}

// row_dy[b, ch] = sum of dy[b, ch, :]; row_dyx[b, ch] = sum of dy * (x - mean[ch]).
template <typename T>
__global__ void bn_row_grads(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                             T* __restrict__ row_dy, T* __restrict__ row_dyx, int n, int c, int inner) {
    const long long total = (long long)n * c;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const T* g = dy + idx * inner;
        const T* p = x + idx * inner;
        const T mu = mean[idx % c];
        T s = T(0), sx = T(0);
        for (int k = 0; k < inner; ++k) {
            s += g[k];
            sx += g[k] * (p[k] - mu);
        }
        row_dy[idx] = s;
        row_dyx[idx] = sx;
    }
}

// One thread per channel: dbias = sum_b row_dy, dweight = inv_std * sum_b row_dyx (= sum dy * xhat).
template <typename T>
__global__ void bn_channel_grads(const T* __restrict__ row_dy, const T* __restrict__ row_dyx,
                                 const T* __restrict__ inv_std, T* __restrict__ dweight, T* __restrict__ dbias,
                                 int n, int c) {
    for (long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x; ch < c;
         ch += (long long)blockDim.x * gridDim.x) {
        T s = T(0), sx = T(0);
        for (int b = 0; b < n; ++b) {
            s += row_dy[(long long)b * c + ch];
            sx += row_dyx[(long long)b * c + ch];
        }
        dbias[ch] = s;
        dweight[ch] = sx * inv_std[ch];
    }
}

// dx = scale * (dy - dbias / m - xhat * dweight / m), xhat = (x - mean) * inv_std, m = n * inner,
// scale = weight * inv_std.
template <typename T>
__global__ void bn_input_grad(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                              const T* __restrict__ inv_std, const T* __restrict__ scale,
                              const T* __restrict__ dweight, const T* __restrict__ dbias, T* __restrict__ dx,
                              int n, int c, int inner) {
    const long long total = (long long)n * c * inner;
    const T m = (T)n * (T)inner;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)((idx / inner) % c);
        const T xhat = (x[idx] - mean[ch]) * inv_std[ch];
        dx[idx] = scale[ch] * (dy[idx] - dbias[ch] / m - xhat * (dweight[ch] / m));
    }
}
