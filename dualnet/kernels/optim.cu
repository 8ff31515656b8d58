// Optimizer steps, elementwise over size elements (PyTorch semantics, no dampening).
// Expressions are evaluated left to right exactly as written, like the NumPy reference.

#include "device.cuh"

// g = grad + weight_decay * param            (grad itself when weight_decay == 0)
// if momentum != 0: v = momentum * v + g;  g = nesterov ? g + momentum * v : v
// param -= lr * g
// velocity is neither read nor written when momentum == 0.
template <typename T>
__global__ void sgd_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ velocity,
                           long long size, T lr, T momentum, T weight_decay, int nesterov) {
    DN_FOR_EACH(idx, size) {
        const T p = param[idx];
        T g = grad[idx];
        if (weight_decay != T(0)) g += weight_decay * p;
        if (momentum != T(0)) {
            const T v = momentum * velocity[idx] + g;
            velocity[idx] = v;
            g = nesterov ? g + momentum * v : v;
        }
        param[idx] = p - lr * g;
    }
}

// Adam's moment update and step on element idx, from the parameter value p and gradient g:
// m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * (g * g)
// param = p - lr * (m / bias_correction1) / (sqrt(v / bias_correction2) + eps)
template <typename T>
__device__ __forceinline__ void dn_adam_step(T* __restrict__ param, T* __restrict__ m, T* __restrict__ v,
                                             long long idx, T p, T g, T lr, T beta1, T beta2, T eps,
                                             T bias_correction1, T bias_correction2) {
    const T mi = beta1 * m[idx] + (T(1) - beta1) * g;
    const T vi = beta2 * v[idx] + (T(1) - beta2) * (g * g);
    m[idx] = mi;
    v[idx] = vi;
    param[idx] = p - lr * (mi / bias_correction1) / (dn_sqrt(vi / bias_correction2) + eps);
}

// g = grad + weight_decay * param            (grad itself when weight_decay == 0)
// m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * (g * g)
// param -= lr * (m / bias_correction1) / (sqrt(v / bias_correction2) + eps)
template <typename T>
__global__ void adam_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, long long size, T lr, T beta1, T beta2, T eps,
                            T weight_decay, T bias_correction1, T bias_correction2) {
    DN_FOR_EACH(idx, size) {
        const T p = param[idx];
        T g = grad[idx];
        if (weight_decay != T(0)) g += weight_decay * p;
        dn_adam_step(param, m, v, idx, p, g, lr, beta1, beta2, eps, bias_correction1, bias_correction2);
    }
}

// AdamW (decoupled weight decay): p = decay * p with decay = 1 - lr * weight_decay (computed by
// the caller, once, in double); then Adam's step on that p with no decay in the gradient.
template <typename T>
__global__ void adamw_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                             T* __restrict__ v, long long size, T lr, T beta1, T beta2, T eps,
                             T decay, T bias_correction1, T bias_correction2) {
    DN_FOR_EACH(idx, size) {
        dn_adam_step(param, m, v, idx, param[idx] * decay, grad[idx], lr, beta1, beta2, eps, bias_correction1,
                     bias_correction2);
    }
}
