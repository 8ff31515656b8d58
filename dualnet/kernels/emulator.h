// Just enough of CUDA for g++ to compile dualnet's kernel sources for the CPU emulator.
//
// Two ways to run a block (docs/gpu-emulator.md):
// - sequential: the block's threads run one after another to completion (kernels that never
//   synchronise: the fast path, no context switch at all);
// - fibers: every thread of the block is a fiber on this one OS thread (a 10-instruction stack
//   switch on x86-64, ucontext elsewhere: glibc's swapcontext makes a syscall); a thread runs
//   until it reaches a barrier or a warp primitive, then the scheduler resumes another. Which
//   READY thread runs next is the schedule: in order, reversed, or seeded random (which also
//   preempts at shared-memory accesses), so a missing barrier changes the output.
// The built-in index variables are thread_local globals, set by the scheduler before it resumes
// a thread. CUDA's rules are checked and a broken one is reported (not crashed on): every live
// thread must reach the same __syncthreads(), no thread may exit while others wait, shared arrays
// are bounds-checked, poisoned (0xFF bytes: NaN, -1) at block start and at most 48 KiB per block.
#pragma once
#define DN_EMULATOR 1
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;
static const int warpSize = 32;
inline int __popc(unsigned int v) { return __builtin_popcount(v); }

using std::max;
using std::min;
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;
using std::fabs;
using std::floor;
using std::ceil;

namespace dn {

// --- the context switch -------------------------------------------------------------------
#if defined(__x86_64__)
// Save the callee-saved registers, MXCSR and the x87 control word on the current stack, store
// the stack pointer in *from, load `to` and pop the same from there (System V ABI).
extern "C" void dn_ctx_switch(void** from, void* to);
asm(R"(
    .text
    .p2align 4
    .hidden dn_ctx_switch
    .type dn_ctx_switch, @function
dn_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dn_ctx_switch, .-dn_ctx_switch
)");
struct Context { void* sp = nullptr; };
inline void ctx_switch(Context* from, Context* to) { dn_ctx_switch(&from->sp, to->sp); }
// A fresh context whose first switch-in "returns" into fn with the stack aligned as after a call.
inline void ctx_make(Context* c, char* stack, size_t size, void (*fn)()) {
    uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;           // fn's return address: fn never returns
    *--sp = (void*)fn;         // popped by ret
    for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    uint32_t ctl[2];
    asm volatile("stmxcsr %0" : "=m"(ctl[0]));
    asm volatile("fnstcw %0" : "=m"(ctl[1]));
    --sp;
    memcpy(sp, ctl, 8);
    c->sp = sp;
}
#else
struct Context { ucontext_t uc; };
inline void ctx_switch(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }
inline void ctx_make(Context* c, char* stack, size_t size, void (*fn)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, fn, 0);
}
#endif

enum { WARP = 32, MAX_THREADS = 1024, SHARED_LIMIT = 48 * 1024, STACK = 64 * 1024 };
enum Schedule { IN_ORDER = 0, REVERSED = 1, RANDOM = 2 };
enum State { READY, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
    Context ctx;
    int state;
    int line;          // source line of the barrier / warp primitive it waits at
    const char* what;  // "__syncthreads()", "__shfl_sync", ...
};

// Everything about the launch running on this OS thread.
struct Launch {
    const char* kernel = nullptr;
    bool fibers = false;
    int schedule = IN_ORDER;
    uint64_t rng = 0;
    char* err = nullptr;
    int errlen = 0;
    bool failed = false;
    unsigned long long epoch = 0;  // incremented per block: shared arrays re-poison on a new epoch
    size_t shared_bytes = 0;       // shared bytes touched by the current block
    size_t shared_peak = 0;        // the most any block touched
    unsigned nthreads = 0;
    unsigned current = 0;          // the running fiber
    Fiber* fiber = nullptr;        // the OS thread's pool (see stacks())
    char* stacks = nullptr;
    size_t slot = 0;               // bytes per stack, its guard page included
    unsigned queue[MAX_THREADS];   // READY fibers in the order the schedule resumes them (a ring)
    unsigned head = 0, count = 0;
    Context main;
    void (*body)(void*) = nullptr;
    void* body_arg = nullptr;
    unsigned char xchg[2][MAX_THREADS][8];  // warp exchange slots, double-buffered by phase
    unsigned char phase[MAX_THREADS];
};
static thread_local Launch* cur = nullptr;
static thread_local unsigned long long epochs = 0;

inline void fail(const char* fmt, ...) {
    Launch* L = cur;
    if (L->failed) return;  // the first problem is the one to report
    L->failed = true;
    int used = snprintf(L->err, L->errlen, "kernel %s, block (%u, %u, %u), thread %u: ", L->kernel,
                        blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x);
    if (used < 0 || used >= L->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err + used, L->errlen - used, fmt, ap);
    va_end(ap);
}

inline uint64_t next_random(Launch* L) {  // splitmix64: a seeded, portable stream
    uint64_t z = (L->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// defined by the block scheduler (emulator_scheduler.h)
inline void push_ready(Launch* L, unsigned t);
inline void switch_away(Launch* L);

// The running fiber stops at a barrier, a warp primitive (or a preemption: state READY) and
// hands the OS thread to the next fiber.
inline void suspend(Launch* L, int state, int line, const char* what) {
    Fiber& f = L->fiber[L->current];
    f.state = state;
    f.line = line;
    f.what = what;
    if (state == READY) push_ready(L, L->current);
    switch_away(L);
}

// The random schedule preempts a thread at a shared access one time in four.
inline void maybe_preempt(Launch* L) {
    if (L->fibers && L->schedule == RANDOM && (next_random(L) & 3) == 0) suspend(L, READY, 0, "");
}

inline unsigned warp_mask(Launch* L, unsigned tid) {
    const unsigned base = tid / WARP * WARP;
    const unsigned lanes = std::min<unsigned>(WARP, L->nthreads - base);
    return lanes == WARP ? 0xFFFFFFFFu : ((1u << lanes) - 1u);
}

inline bool cooperative(Launch* L, const char* what) {
    if (!L->fibers) {
        fail("calls %s but is declared without a block size in signatures.py, so its threads "
             "run one after another; declare Kernel(..., block=N) to run it cooperatively", what);
        return false;
    }
    return true;
}

inline void syncthreads(int line) {
    Launch* L = cur;
    if (cooperative(L, "__syncthreads()")) suspend(L, AT_BLOCK, line, "__syncthreads()");
}

inline bool warp_arrive(unsigned mask, int line, const char* what) {
    Launch* L = cur;
    if (!cooperative(L, what)) return false;
    const unsigned want = warp_mask(L, threadIdx.x);
    if (mask != want) {
        fail("%s at line %d with mask 0x%08x; the emulator supports only the full mask of the "
             "warp's threads (0x%08x)", what, line, mask, want);
        return false;
    }
    suspend(L, AT_WARP, line, what);
    return true;
}

inline void syncwarp(unsigned mask, int line) { warp_arrive(mask, line, "__syncwarp"); }

// Every lane publishes v, the warp meets, each reads lane src's value (src < 0: its own).
template <typename T>
T exchange(unsigned mask, T v, int line, const char* what, int (*pick)(int, int, int), int arg, int width) {
    static_assert(sizeof(T) <= 8, "warp exchange of a type wider than 8 bytes");
    Launch* L = cur;
    const unsigned tid = threadIdx.x;
    unsigned char& ph = L->phase[tid];
    memcpy(L->xchg[ph][tid], &v, sizeof(T));
    if (!warp_arrive(mask, line, what)) return v;
    if (width <= 0 || width > WARP || (width & (width - 1))) {
        fail("%s at line %d: width %d is not a power of two in [1, 32]", what, line, width);
        return v;
    }
    const int lane = (int)(tid % WARP);
    const int seg = lane / width * width;
    const int src = pick(lane - seg, arg, width);
    T out = v;
    const unsigned from = tid - (unsigned)lane + (unsigned)(seg + src);
    if (src >= 0 && from < L->nthreads) memcpy(&out, L->xchg[ph][from], sizeof(T));
    ph ^= 1;  // the next exchange writes the other buffer; the one after waits for this one's readers
    return out;
}

inline int pick_idx(int, int src, int width) { return ((src % width) + width) % width; }
inline int pick_down(int lane, int d, int width) { return lane + d < width ? lane + d : -1; }
inline int pick_up(int lane, int d, int) { return lane - d >= 0 ? lane - d : -1; }
inline int pick_xor(int lane, int m, int width) { return (lane ^ m) < width ? (lane ^ m) : -1; }

template <typename T> T shfl(int line, unsigned mask, T v, int src, int width = WARP) {
    return exchange(mask, v, line, "__shfl_sync", pick_idx, src, width);
}
template <typename T> T shfl_down(int line, unsigned mask, T v, int d, int width = WARP) {
    return exchange(mask, v, line, "__shfl_down_sync", pick_down, d, width);
}
template <typename T> T shfl_up(int line, unsigned mask, T v, int d, int width = WARP) {
    return exchange(mask, v, line, "__shfl_up_sync", pick_up, d, width);
}
template <typename T> T shfl_xor(int line, unsigned mask, T v, int m, int width = WARP) {
    return exchange(mask, v, line, "__shfl_xor_sync", pick_xor, m, width);
}

inline unsigned ballot(unsigned mask, int pred, int line) {
    unsigned bits = 0;
    Launch* L = cur;
    const unsigned tid = threadIdx.x;
    unsigned char& ph = L->phase[tid];
    const unsigned me = pred ? 1u : 0u;
    memcpy(L->xchg[ph][tid], &me, sizeof me);
    if (!warp_arrive(mask, line, "__ballot_sync")) return 0;
    const unsigned base = tid / WARP * WARP;
    for (unsigned l = 0; l < WARP && base + l < L->nthreads; ++l) {
        unsigned v;
        memcpy(&v, L->xchg[ph][base + l], sizeof v);
        bits |= v << l;
    }
    ph ^= 1;
    return bits;
}

// A block's __shared__ array: bounds-checked, poisoned with 0xFF bytes when a new block first
// touches it, counted against the 48 KiB a block may use. One per OS thread (thread_local), so
// the fibers of a block share it and concurrent launches on other threads do not.
template <typename T, long long N>
struct Shared {
    static_assert(sizeof(T) * N <= SHARED_LIMIT, "a __shared__ array larger than 48 KiB");
    T data[N];
    unsigned long long epoch = 0;
    const char* name;
    explicit Shared(const char* nm) : name(nm) {}
    T& operator[](long long i) {
        Launch* L = cur;
        if (epoch != L->epoch) {
            memset(static_cast<void*>(data), 0xFF, sizeof data);
            epoch = L->epoch;
            L->shared_bytes += sizeof data;
            if (L->shared_bytes > SHARED_LIMIT)
                fail("uses %zu bytes of shared memory per block; the limit is %d (48 KiB)",
                     L->shared_bytes, (int)SHARED_LIMIT);
        }
        maybe_preempt(L);
        if (i < 0 || i >= N) {
            fail("shared array %s[%lld] indexed at %lld, out of bounds", name, N, i);
            static thread_local T scratch;
            return scratch;
        }
        return data[i];
    }
};

// A 16-byte vector access (DnVec in device.cuh) must be 16-byte aligned, as on a GPU.
inline void check_aligned16(const void* p, const char* what) {
    if ((uintptr_t)p & 15u)
        fail("a 16-byte vector %s at %p is not 16-byte aligned (a GPU faults: misaligned address); "
             "check the kernel's alignment test before its vector path", what, p);
}

}  // namespace dn

#define DN_SHARED(T, name, n) static thread_local dn::Shared<T, (n)> name(#name)
#define __shared__ static_assert(false, "declare shared memory with DN_SHARED(type, name, count)");
#define __syncthreads() dn::syncthreads(__LINE__)
#define __syncwarp(mask) dn::syncwarp((mask), __LINE__)
#define __shfl_sync(...) dn::shfl(__LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) dn::shfl_down(__LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) dn::shfl_up(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) dn::shfl_xor(__LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) dn::ballot((mask), (pred), __LINE__)
