// Compiled with the kernel flags only: proves the abi headers need nothing
// beyond the freestanding headers.
#include <abi/abi.hpp>

namespace {
static_assert(sizeof(abi::StartInfo) == 1168);
static_assert(sizeof(abi::SharedInfo) == 3136);
}  // namespace

// One symbol so the object is not empty.
extern "C" unsigned moat_abi_freestanding_check() {
  return static_cast<unsigned>(sizeof(abi::VcpuGuestContext));
}
