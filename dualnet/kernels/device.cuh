// Device code shared by the kernel sources: `#include "device.cuh"` in a .cu file splices this
// text in (KernelTable.read_source), for NVRTC and the emulator alike.
#ifndef DN_DEVICE_CUH
#define DN_DEVICE_CUH

// A block's shared array: `DN_SHARED(T, name, count);` is `__shared__ T name[count];` on a GPU;
// the emulator's version is bounds-checked and poisoned at block start (emulator.h).
#ifndef DN_EMULATOR
#define DN_SHARED(T, name, n) __shared__ T name[n]
#endif

#define DN_FULL_MASK 0xFFFFFFFFu

#endif  // DN_DEVICE_CUH
