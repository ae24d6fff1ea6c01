#pragma once
// The contents of Xen's 64-bit hypercall page, as a PV domain's builder
// writes it: one `syscall` stub every 32 bytes, int3 between them. Each stub
// saves rcx and r11 (which syscall clobbers), loads the hypercall number,
// and returns; the iret stub is jumped to, not called: it pushes rcx, r11
// and rax to complete the guest's iret frame and never returns.

#include <cstdint>

#include <abi/hypercall.hpp>

namespace abi {

inline void write_hypercall_page(uint8_t* page) {
    __builtin_memset(page, 0xCC, kHypercallPageSize);
    for (unsigned i = 0; i < kHypercallPageEntries; ++i) {
        uint8_t* s = page + i * kHypercallEntrySize;
        if (i == unsigned(Hypercall::iret)) {
            const uint8_t stub[] = {0x51, 0x41, 0x53, 0x50, 0xb8, uint8_t(i), 0, 0, 0, 0x0f, 0x05};
            __builtin_memcpy(s, stub, sizeof stub);
        } else {
            const uint8_t stub[] = {0x51, 0x41, 0x53, 0xb8, uint8_t(i), 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3};
            __builtin_memcpy(s, stub, sizeof stub);
        }
    }
}

}  // namespace abi
