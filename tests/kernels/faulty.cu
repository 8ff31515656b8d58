// Deliberately broken kernels (and one correct one) for the emulator's own tests.
// Declared in test_emulator.py's FAULTY table.

template <typename T>
__global__ void scale_ok(const T* x, T* y, int size, T alpha) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = alpha * x[i];
    }
}

template <typename T>
__global__ void fill_long(T* y, long long size, T value) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = value;
    }
}

// off by one: the loop runs to i == size inclusive and writes y[size]
template <typename T>
__global__ void off_by_one(const T* x, T* y, int size) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i <= size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = i < size ? x[i] : T(0);
    }
}

// forgets the last element
template <typename T>
__global__ void skip_last(const T* x, T* y, int size) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size - 1;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = x[i];
    }
}

// shifted by one to the left: writes y[-1], never writes y[size - 1]
template <typename T>
__global__ void write_before(const T* x, T* y, int size) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i - 1] = x[i];
    }
}

// scribbles on its input
template <typename T>
__global__ void writes_input(const T* x, T* y, int size) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = x[i];
        if (i == 2) const_cast<T*>(x)[i] = T(42);
    }
}
