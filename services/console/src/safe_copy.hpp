#pragma once
// Reads and writes of a mapped ring page that return -1 instead of faulting
// if the page was taken away (safe_copy.S). safe_copy_init registers the
// page-fault handler that makes them so; other page faults still crash the
// domain, as before.

#include <cstddef>
#include <cstdint>

extern "C" long safe_copy(void* dst, const void* src, size_t n);
extern "C" long safe_load32(const uint32_t* p, uint32_t* out);
extern "C" long safe_store32(uint32_t* p, uint32_t v);

namespace console {
void safe_copy_init();
}
