// The emulator's block scheduler: runs a grid's blocks one after another on this OS thread, each
// block's threads sequentially or as fibers (emulator.h's header comment), and checks CUDA's
// barrier rules whenever no thread is ready. The emulator compiles this file right after
// emulator.h (dualnet/kernels/emulator.py: HEADERS), inside the same translation unit.

namespace dn {

inline void fiber_entry() {
    Launch* L = cur;
    L->body(L->body_arg);
    L->fiber[L->current].state = DONE;
    switch_away(L);  // never resumed
}

// MAX_THREADS fiber stacks per OS thread, mapped once and kept until the thread exits: each sits
// above a PROT_NONE page, so a stack overflow faults instead of corrupting the neighbouring fiber.
struct StackPool {
    char* stacks = nullptr;
    Fiber* fibers = nullptr;
    size_t bytes = 0;
    ~StackPool() {
        if (stacks) munmap(stacks, bytes);
        delete[] fibers;
    }
};
static thread_local StackPool pool;

inline bool ensure_stacks(Launch* L) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    L->slot = STACK + page;
    if (!pool.stacks) {
        const size_t bytes = L->slot * MAX_THREADS;
        void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return false;
        pool.stacks = static_cast<char*>(m);
        pool.bytes = bytes;
        for (unsigned t = 0; t < MAX_THREADS; ++t) mprotect(pool.stacks + t * L->slot, page, PROT_NONE);
        pool.fibers = new Fiber[MAX_THREADS];
    }
    L->stacks = pool.stacks;
    L->fiber = pool.fibers;
    return true;
}

inline void push_ready(Launch* L, unsigned t) {
    L->fiber[t].state = READY;
    L->queue[(L->head + L->count++) % MAX_THREADS] = t;
}

inline void set_thread(unsigned t) {
    threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0;
}

// Queue threads [lo, hi) in the schedule's order (random: any order, picks are random).
inline void release_range(Launch* L, unsigned lo, unsigned hi) {
    if (L->schedule == REVERSED) {
        for (unsigned t = hi; t-- > lo;) push_ready(L, t);
    } else {
        for (unsigned t = lo; t < hi; ++t) push_ready(L, t);
    }
}

// After no thread is READY: release a warp whose every thread waits at the same warp primitive,
// else the block when every thread waits at the same __syncthreads(). Anything else is a rule
// broken: reported, and the block abandoned. Returns false when the block is over.
inline bool release(Launch* L) {
    const unsigned n = L->nthreads;
    bool released = false;
    for (unsigned base = 0; base < n; base += WARP) {
        const unsigned end = std::min<unsigned>(n, base + WARP);
        unsigned at = 0, done = 0, first = base;
        for (unsigned t = base; t < end; ++t) {
            if (L->fiber[t].state == AT_WARP) { if (!at++) first = t; }
            else if (L->fiber[t].state == DONE) ++done;
        }
        if (!at) continue;
        for (unsigned t = base; t < end; ++t) {
            const Fiber& f = L->fiber[t];
            if (f.state == AT_WARP && (f.line != L->fiber[first].line || f.what != L->fiber[first].what)) {
                set_thread(t);
                fail("divergent warp: waits at %s (line %d) while thread %u waits at %s (line %d)", f.what,
                     f.line, first, L->fiber[first].what, L->fiber[first].line);
                return false;
            }
        }
        if (at + done == end - base && done) {
            for (unsigned t = base; t < end; ++t) if (L->fiber[t].state == DONE) { set_thread(t); break; }
            fail("exited while %u threads of its warp wait at %s (line %d)", at, L->fiber[first].what,
                 L->fiber[first].line);
            return false;
        }
        if (at == end - base) {
            release_range(L, base, end);
            released = true;
        }
    }
    if (released) return true;
    unsigned at = 0, done = 0, first = 0, exited = 0;
    for (unsigned t = 0; t < n; ++t) {
        const Fiber& f = L->fiber[t];
        if (f.state == AT_BLOCK) { if (!at++) first = t; }
        else if (f.state == DONE) { if (!done++) exited = t; }
    }
    if (done == n) return false;
    for (unsigned t = 0; t < n; ++t) {
        const Fiber& f = L->fiber[t];
        if (f.state == AT_WARP) {
            set_thread(t);
            if (at) fail("divergent: waits at %s (line %d) while thread %u waits at __syncthreads() (line %d)",
                         f.what, f.line, first, L->fiber[first].line);
            else fail("waits at %s (line %d) but some threads of its warp exited", f.what, f.line);
            return false;
        }
        if (f.state == AT_BLOCK && f.line != L->fiber[first].line) {
            set_thread(t);
            fail("divergent __syncthreads(): waits at line %d while thread %u waits at line %d", f.line, first,
                 L->fiber[first].line);
            return false;
        }
    }
    if (done) {
        set_thread(exited);
        fail("exited while %u threads wait at __syncthreads() (line %d)", at, L->fiber[first].line);
        return false;
    }
    release_range(L, 0, n);
    return true;
}

inline int pick(Launch* L) {
    if (!L->count) return -1;
    if (L->schedule == RANDOM) {  // swap a random queued thread to the front
        const unsigned k = (L->head + (unsigned)(next_random(L) % L->count)) % MAX_THREADS;
        std::swap(L->queue[k], L->queue[L->head]);
    }
    const unsigned t = L->queue[L->head];
    L->head = (L->head + 1) % MAX_THREADS;
    --L->count;
    return (int)t;
}

// The fiber to run next, or -1 when the block is over (every thread done, or a rule broken).
inline int next_fiber(Launch* L) {
    for (;;) {
        if (L->failed) return -1;
        const int t = pick(L);
        if (t >= 0) return t;
        if (!release(L)) return -1;
    }
}

// Switch from the running fiber straight to the next one (no round trip through the
// scheduler's own context: half the switches), or back to run_block_fibers when the block is over.
inline void switch_away(Launch* L) {
    const unsigned me = L->current;
    const int t = next_fiber(L);
    if (t == (int)me) return;  // preempted and picked again
    if (t < 0) {
        ctx_switch(&L->fiber[me].ctx, &L->main);
        return;
    }
    L->current = (unsigned)t;
    set_thread((unsigned)t);
    ctx_switch(&L->fiber[me].ctx, &L->fiber[t].ctx);
}

inline void run_block_fibers(Launch* L) {
    const unsigned n = L->nthreads;
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = L->fiber[t];
        ctx_make(&f.ctx, L->stacks + (size_t)t * L->slot + (L->slot - STACK), STACK, fiber_entry);
        f.line = 0;
        L->phase[t] = 0;
    }
    L->head = L->count = 0;
    release_range(L, 0, n);
    const int t = next_fiber(L);
    if (t < 0) return;
    L->current = (unsigned)t;
    set_thread((unsigned)t);
    ctx_switch(&L->main, &L->fiber[t].ctx);  // back here when the block is over
}

// Run the grid: blocks in order (reversed under the reversed schedule), each block's threads
// sequentially or as fibers. Returns 0, or 1 with the first problem in err.
template <typename F>
int run_grid(const char* kernel, bool fibers, F& body, const unsigned* dims, int schedule, unsigned long long seed,
             char* err, int errlen, unsigned long long* shared_peak) {
    Launch* L = new Launch();
    Launch* outer = cur;
    cur = L;
    L->kernel = kernel;
    L->fibers = fibers;
    L->schedule = schedule;
    L->rng = seed;
    L->err = err;
    L->errlen = errlen;
    gridDim = dim3(dims[0], dims[1], dims[2]);
    blockDim = dim3(dims[3], 1, 1);
    L->nthreads = dims[3];
    L->body = [](void* f) { (*static_cast<F*>(f))(); };
    L->body_arg = &body;
    if (fibers && !ensure_stacks(L)) fail("cannot map %d fiber stacks", (int)MAX_THREADS);
    const unsigned long long blocks = (unsigned long long)dims[0] * dims[1] * dims[2];
    for (unsigned long long i = 0; i < blocks && !L->failed; ++i) {
        unsigned long long b = schedule == REVERSED ? blocks - 1 - i : i;
        blockIdx.x = (unsigned)(b % dims[0]);
        blockIdx.y = (unsigned)(b / dims[0] % dims[1]);
        blockIdx.z = (unsigned)(b / dims[0] / dims[1]);
        L->epoch = ++epochs;
        L->shared_bytes = 0;
        if (fibers) {
            run_block_fibers(L);
        } else if (schedule == REVERSED) {
            for (unsigned t = dims[3]; t-- > 0 && !L->failed;) { set_thread(t); body(); }
        } else {
            for (unsigned t = 0; t < dims[3]; ++t) { set_thread(t); body(); }
        }
        L->shared_peak = std::max(L->shared_peak, L->shared_bytes);
    }
    const int rc = L->failed ? 1 : 0;
    *shared_peak = L->shared_peak;
    delete L;
    cur = outer;
    return rc;
}

}  // namespace dn
