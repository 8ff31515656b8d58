// A convolution's input gradient as one implicit GEMM: no column gradient, no col2im.
//
// dy     : (o, n, out_h, out_w)   channel-major, C-contiguous (the layout the GPU table's products use)
// weight : (o, c, kh, kw)         groups == 1 (grouped convolutions take the column path)
// add    : (n, c, h, w)           read when has_add: the other path's gradient (a residual block's)
// dx     : (n, c, h, w)           every element written once
//
// dx[b, ch, y, x] = sum over (i, j, oc) of weight[oc, ch, i, j] * dy[oc, b, oy, ox]
//                   where y + ph - i*dh = oy*sh and x + pw - j*dw = ox*sw, 0 <= oy < out_h, 0 <= ox < out_w
//                   (+ add[b, ch, y, x] after the whole sum, when has_add: one rounding, as dx + add)
//
// As a GEMM: M = c (rows of dx's channels), N = n*h*w (dx's pixels), K = kh*kw*o. A block computes a
// tile of bm channels x bn pixels (bm = 16, 32 or 64; bn = 4096 / bm, so every tile is 4096 outputs)
// with its DN_BLOCK (256) threads, each 4 channels x 4 pixels in registers. K runs in one fixed order,
// tap (i, j) outer, output channel inner, DN_DGRAD_BK channels per step: each step stages a bk x bm
// tile of weights and a bk x bn tile of dy gathered for the tap into shared memory, then every thread
// does bk x 16 multiply-adds from it. Each dx element is summed by one thread in that order (one writer,
// no split K): the same bits run to run, and under every schedule the emulator tries.
//
// Strides: a tap (i, j) reaches pixel (y, x) only when y + ph - i*dh and x + pw - j*dw are multiples of
// sh and sw, which depends on y mod sh and x mod sw alone. So the pixels are taken phase by phase
// (phase (ry, rx): y = ry + yq*sh, x = rx + xq*sw), every tile within one phase (each phase padded to
// ceil(h / sh) x ceil(w / sw) positions per image, the extra ones neither read nor written), and a
// block skips the taps that cannot reach its phase: a stride-2 3x3 layer multiplies 9/4 taps per
// pixel on average, not 9. For stride 1 there is one phase and every tap is taken.
//
// The gather: a thread loads one fixed pixel column of the dy tile for the whole K loop, so its pixel
// (b, y, x) is decoded once (32-bit divisions) and, per tap, where it reads dy (or that the tap misses
// it at the border: a zero); along the inner output-channel loop the address only advances by dy's
// channel stride. A zero from the padding is multiplied like any value, so a weight that is infinite
// or NaN gives NaN there where the reference (which skips padding) gives a number.
#include "device.cuh"

// output channels (K rows) per step of the K loop
#define DN_DGRAD_BK 8
// the largest tile in channels and in pixels (bm = 16: bn = 256)
#define DN_DGRAD_MAX_BM 64
#define DN_DGRAD_MAX_BN 256

// The pixel of phase (ry, rx) at index p of the phase (images, then rows, then columns of the phase's
// hq x wq grid): its image b and its (y, x); false when p or (y, x) is past the end.
__device__ __forceinline__ bool dn_dgrad_pixel(int p, int per, int hq, int wq, int ry, int rx, int sh, int sw,
                                               int h, int w, int& b, int& y, int& x) {
    if (p >= per) return false;
    b = p / (hq * wq);
    const int r = p - b * (hq * wq);
    const int yq = r / wq;
    y = ry + yq * sh;
    x = rx + (r - yq * wq) * sw;
    return y < h && x < w;
}

// The tile loop, with index type I for dy's and dx's offsets (unsigned when every offset fits in 32
// bits, else long long), for the tile at channel c0 and at pixel p0 of phase (ry, rx). a_tile:
// [kk][m] of bk x bm weights; b_tile: [kk][p] of bk x bn gathered dy.
template <typename I, typename T, typename SA, typename SB>
__device__ __forceinline__ void conv_dgrad_tile(const T* __restrict__ dy, const T* __restrict__ weight,
                                                const T* __restrict__ add, T* __restrict__ dx, int n, int c, int h,
                                                int w, int o, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                                int dw, int out_h, int out_w, int bm, int has_add, int c0, int p0,
                                                int ry, int rx, SA& a_tile, SB& b_tile) {
    const int t = threadIdx.x;
    const int bn = (DN_BLOCK * 16) / bm;
    const int tn = bn / 4;                    // threads across a tile's pixels
    const int tx = t % tn, ty = t / tn;       // outputs: channels c0 + 4*ty + r, pixels p0 + tx + s*tn
    const int hq = (h + sh - 1) / sh, wq = (w + sw - 1) / sw, per = n * hq * wq;  // a phase's positions
    const int hw = h * w, taps = kh * kw;
    const I plane = (I)n * (I)out_h * (I)out_w;  // dy's channel stride

    // the dy tile's column this thread loads, and its rows (kk = lk0, lk0 + lk_step, ... < BK)
    const int lp = t % bn, lk0 = t / bn, lk_step = DN_BLOCK / bn;
    int lb = 0, ly = 0, lx = 0;
    const bool l_in = dn_dgrad_pixel(p0 + lp, per, hq, wq, ry, rx, sh, sw, h, w, lb, ly, lx);
    // the weight tile's column (channel) this thread loads, and its rows
    const int am = t % bm, ak0 = t / bm, ak_step = DN_BLOCK / bm;
    const bool a_in = c0 + am < c;

    T acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) acc[r][s] = T(0);

    for (int tap = 0; tap < taps; ++tap) {
        const int i = tap / kw, j = tap - i * kw;
        // the same for the whole block (its phase): does tap (i, j) reach this phase at all?
        const int my = (ry + ph - i * dh) % sh, mx = (rx + pw - j * dw) % sw;
        if (my != 0 || mx != 0) continue;  // (C's % keeps the sign: a multiple gives 0 either way)
        // where this thread's pixel reads dy for tap (i, j), if the tap covers it
        bool hit = false;
        I src = 0;
        if (l_in) {
            const int vy = ly + ph - i * dh, vx = lx + pw - j * dw;  // = oy*sh, ox*sw (multiples, by phase)
            if (vy >= 0 && vx >= 0) {
                const int oy = vy / sh, ox = vx / sw;
                if (oy < out_h && ox < out_w) {
                    hit = true;
                    src = ((I)lb * (I)out_h + (I)oy) * (I)out_w + (I)ox;
                }
            }
        }
        for (int o0 = 0; o0 < o; o0 += DN_DGRAD_BK) {
            for (int kk = lk0; kk < DN_DGRAD_BK; kk += lk_step) {
                const int oc = o0 + kk;
                b_tile[kk * bn + lp] = (hit && oc < o) ? dy[(I)oc * plane + src] : T(0);
            }
            for (int kk = ak0; kk < DN_DGRAD_BK; kk += ak_step) {
                const int oc = o0 + kk;
                a_tile[kk * bm + am] =
                    (a_in && oc < o) ? weight[((long long)oc * c + c0 + am) * taps + tap] : T(0);
            }
            __syncthreads();
            for (int kk = 0; kk < DN_DGRAD_BK; ++kk) {
                T a[4], b[4];
                for (int r = 0; r < 4; ++r) a[r] = a_tile[kk * bm + 4 * ty + r];
                for (int s = 0; s < 4; ++s) b[s] = b_tile[kk * bn + tx + s * tn];
                for (int r = 0; r < 4; ++r)
                    for (int s = 0; s < 4; ++s) acc[r][s] += a[r] * b[s];
            }
            __syncthreads();  // the next step overwrites the tiles
        }
    }

    for (int s = 0; s < 4; ++s) {
        int b = 0, y = 0, x = 0;
        if (!dn_dgrad_pixel(p0 + tx + s * tn, per, hq, wq, ry, rx, sh, sw, h, w, b, y, x)) continue;
        for (int r = 0; r < 4; ++r) {
            const int ch = c0 + 4 * ty + r;
            if (ch >= c) continue;
            const I at = ((I)b * (I)c + (I)ch) * (I)hw + (I)(y * w + x);
            dx[at] = has_add ? acc[r][s] + add[at] : acc[r][s];
        }
    }
}

// One block per tile: grid (sh*sw phases x ceil(n * ceil(h/sh) * ceil(w/sw) / bn) tiles each,
// ceil(c / bm)), DN_BLOCK threads. bm: 16, 32 or 64 (the GPU table picks the smallest that holds c,
// so a 16-channel layer wastes no rows).
template <typename T>
__global__ void conv_dgrad(const T* __restrict__ dy, const T* __restrict__ weight, const T* __restrict__ add,
                           T* __restrict__ dx, int n, int c, int h, int w, int o, int kh, int kw, int sh, int sw,
                           int ph, int pw, int dh, int dw, int out_h, int out_w, int bm, int has_add) {
    DN_SHARED(T, a_tile, DN_DGRAD_BK * DN_DGRAD_MAX_BM);
    DN_SHARED(T, b_tile, DN_DGRAD_BK * DN_DGRAD_MAX_BN);
    const int bn = (DN_BLOCK * 16) / bm;
    const int tiles = (n * ((h + sh - 1) / sh) * ((w + sw - 1) / sw) + bn - 1) / bn;  // per phase
    const int phase = blockIdx.x / tiles;
    const int c0 = blockIdx.y * bm, p0 = (blockIdx.x - phase * tiles) * bn;  // the tile's first channel, pixel
    const int ry = phase / sw, rx = phase - (phase / sw) * sw;
    const long long big = (long long)n * c * h * w > (long long)o * n * out_h * out_w
                              ? (long long)n * c * h * w : (long long)o * n * out_h * out_w;
    if (big <= 0x7FFFFFFFll) {
        conv_dgrad_tile<unsigned>(dy, weight, add, dx, n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w,
                                  bm, has_add, c0, p0, ry, rx, a_tile, b_tile);
    } else {
        conv_dgrad_tile<long long>(dy, weight, add, dx, n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w,
                                   bm, has_add, c0, p0, ry, rx, a_tile, b_tile);
    }
}
