#pragma once
// How the ring code touches memory shared with a peer domain.
//
// Everything the peer can write is read through this policy and nothing else,
// so the rules are in one place:
//   * indices are loaded/stored as atomics (acquire/release where they publish
//     or consume entries, relaxed where they only steer notifications);
//   * an entry is copied out exactly once, with volatile atomic word loads that
//     the compiler may neither repeat nor defer (a plain memcpy into a local may
//     legally be elided and the shared slot re-read later: the XSA-155
//     "compiler-induced double fetch"), followed by a compiler barrier;
//   * full barriers (Xen's mb()) are sequentially consistent fences, which is
//     what makes the store-index/fence/load-event Dekker pattern of the event
//     suppression race-free under the C++ memory model.
//
// The policy is a template parameter of FrontRing/BackRing so that tests can
// substitute one that simulates a concurrent, hostile peer (it flips bytes
// behind each read and records what was read); production code uses
// DirectSharedMemory.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <abi/io_ring.hpp>

namespace ring {

using abi::RingIdx;

namespace detail {

template <std::size_t N>
struct WordOf;
template <> struct WordOf<1> { using type = uint8_t; };
template <> struct WordOf<2> { using type = uint16_t; };
template <> struct WordOf<4> { using type = uint32_t; };
template <> struct WordOf<8> { using type = uint64_t; };

// Widest access that every object of type T is aligned for (at most 8 bytes).
template <typename T>
inline constexpr std::size_t kCopyGrain = alignof(T) >= 8 ? 8 : alignof(T);

}  // namespace detail

struct DirectSharedMemory {
  static RingIdx load_acquire(const RingIdx* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
  static RingIdx load_relaxed(const RingIdx* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
  static void store_release(RingIdx* p, RingIdx v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
  static void store_relaxed(RingIdx* p, RingIdx v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
  // Xen's mb(): orders an earlier store before a later load.
  static void full_fence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

  // Copies *src (shared) into dst (private): each byte of the slot is read
  // exactly once. The caller has already acquired the producer index that
  // covers the slot.
  template <typename T>
  static void copy_in(T& dst, const T* src) {
    static_assert(std::is_trivially_copyable_v<T>);
    constexpr std::size_t g = detail::kCopyGrain<T>;
    using W = typename detail::WordOf<g>::type;
    static_assert(sizeof(T) % g == 0);
    const volatile W* s = reinterpret_cast<const volatile W*>(src);
    unsigned char* d = reinterpret_cast<unsigned char*>(&dst);
    for (std::size_t i = 0; i < sizeof(T) / g; ++i) {
      W w = __atomic_load_n(s + i, __ATOMIC_RELAXED);
      __builtin_memcpy(d + i * g, &w, g);
    }
    // Nothing below may be satisfied by going back to the shared slot.
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
  }

  // Copies src (private) into the shared slot *dst. Published later by a
  // release store of the producer index.
  template <typename T>
  static void copy_out(T* dst, const T& src) {
    static_assert(std::is_trivially_copyable_v<T>);
    __builtin_memcpy(static_cast<void*>(dst), &src, sizeof(T));
  }
};

}  // namespace ring
