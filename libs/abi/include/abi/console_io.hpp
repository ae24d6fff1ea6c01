#pragma once
// The PV console ring page (start_info console.domU.mfn). "in" carries bytes
// to the guest, "out" bytes from it; indices are free-running.

#include <cstddef>
#include <cstdint>

namespace abi {

using XenconsRingIdx = uint32_t;

inline constexpr std::size_t kXenconsInSize = 1024;
inline constexpr std::size_t kXenconsOutSize = 2048;

// XenconsInterface::connection (newer Xen; the byte reads 0 = connected on
// older backends that never touch it).
inline constexpr uint8_t kXenconsConnected = 0;
inline constexpr uint8_t kXenconsDisconnected = 1;

struct XenconsInterface {
  char in[kXenconsInSize];
  char out[kXenconsOutSize];
  XenconsRingIdx in_cons, in_prod;
  XenconsRingIdx out_cons, out_prod;
  uint8_t connection;
};
static_assert(sizeof(XenconsInterface) == 3092);
static_assert(offsetof(XenconsInterface, in) == 0);
static_assert(offsetof(XenconsInterface, out) == 1024);
static_assert(offsetof(XenconsInterface, in_cons) == 3072);
static_assert(offsetof(XenconsInterface, in_prod) == 3076);
static_assert(offsetof(XenconsInterface, out_cons) == 3080);
static_assert(offsetof(XenconsInterface, out_prod) == 3084);
static_assert(offsetof(XenconsInterface, connection) == 3088);

constexpr std::size_t xencons_in_slot(XenconsRingIdx idx) { return idx & (kXenconsInSize - 1); }
constexpr std::size_t xencons_out_slot(XenconsRingIdx idx) { return idx & (kXenconsOutSize - 1); }

}  // namespace abi
