#pragma once
// Layout of the shared request/response rings used by split PV drivers
// (blkif, netif, ...): a 64-byte header of free-running indices, then the
// entries. Each entry slot is a union of one request and one response.

#include <cstddef>
#include <cstdint>

#include <abi/types.hpp>

namespace abi {

using RingIdx = uint32_t;  // free-running; slot = idx & (size - 1)

struct SringHeader {
  RingIdx req_prod;   // written by the frontend
  RingIdx req_event;  // backend wants a notification when req_prod passes this
  RingIdx rsp_prod;   // written by the backend
  RingIdx rsp_event;  // frontend wants a notification when rsp_prod passes this
  // Per-protocol private bytes and padding up to the entries.
  uint8_t pad[48];
};
static_assert(sizeof(SringHeader) == 64);
static_assert(offsetof(SringHeader, req_prod) == 0);
static_assert(offsetof(SringHeader, req_event) == 4);
static_assert(offsetof(SringHeader, rsp_prod) == 8);
static_assert(offsetof(SringHeader, rsp_event) == 12);
static_assert(offsetof(SringHeader, pad) == 16);

inline constexpr std::size_t kSringEntriesOffset = 64;

// Number of entries of entry_size bytes that fit a ring of ring_bytes bytes:
// the largest power of two not above what the space after the header holds.
constexpr std::size_t sring_entries(std::size_t ring_bytes, std::size_t entry_size) {
  if (entry_size == 0 || ring_bytes <= kSringEntriesOffset) return 0;
  std::size_t n = (ring_bytes - kSringEntriesOffset) / entry_size;
  std::size_t p = 1;
  if (n == 0) return 0;
  while (p * 2 <= n) p *= 2;
  return p;
}
static_assert(sring_entries(4096, 112) == 32);  // blkif on one page
static_assert(sring_entries(4096, 12) == 256);  // netif tx on one page

// Whether the peer asked to be notified of the move from old_idx to new_idx.
constexpr bool sring_needs_notify(RingIdx event, RingIdx old_idx, RingIdx new_idx) {
  return static_cast<RingIdx>(new_idx - event) < static_cast<RingIdx>(new_idx - old_idx);
}

}  // namespace abi
