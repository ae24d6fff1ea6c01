// Fuzzes ring::BackRing against a hostile front end.
//
// The input is a script for the front end: between back-end calls it writes
// arbitrary req_prod/event values and entry bytes, and it can "race" the back
// end by rewriting every word of a slot right after the back end read it and
// moving req_prod right after each read of it. The back end consumes with a
// bounded number of calls. Traps (abort) if the back end
//   * consumes more than ring-size requests between two reads of req_prod, or
//     more than ring size without answering (req_cons - rsp_prod_pvt > size);
//   * takes a request at an index outside [req_cons, last req_prod read);
//   * reads a slot twice, or reads anything but the slot of req_cons, or
//     reads outside the ring (the ring is in an exactly sized heap buffer, so
//     ASan reports that too);
//   * returns a request that differs from what the slot held at the moment of
//     its single read;
//   * keeps consuming once broken.
// The same script also runs against the production DirectSharedMemory policy
// (bounds and copy checks only, as nothing races there).
#include <ring/ring.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

using abi::RingIdx;

struct Req {
  uint64_t id;
  uint32_t a, b;
  uint8_t bytes[24];
};
struct Rsp {
  uint64_t id;
  int64_t status;
};
static_assert(sizeof(Req) == 40 && alignof(Req) == 8);
using Entry = ring::RingEntry<Req, Rsp>;

#define CHECK(c)                                                      \
  do {                                                                \
    if (!(c)) {                                                       \
      __builtin_printf("ring_fuzz: check failed: %s (line %d)\n", #c, __LINE__); \
      __builtin_trap();                                               \
    }                                                                 \
  } while (0)

// Script reader: returns zeros past the end.
struct Script {
  const uint8_t* p;
  std::size_t n;
  std::size_t pos = 0;
  bool done() const { return pos >= n; }
  uint8_t u8() { return pos < n ? p[pos++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{u8()} << (8 * i);
    return v;
  }
};

// Observes (and, when racing, disturbs) every access the back end makes.
struct Observer {
  unsigned char* ring_base = nullptr;  // start of the slots
  unsigned entries = 0;
  const RingIdx* req_prod = nullptr;
  bool racing = false;
  uint8_t race_byte = 0;
  RingIdx race_prod_delta = 0;

  // Per take_request.
  int copies = 0;
  const void* copied_from = nullptr;
  alignas(Req) unsigned char seen[sizeof(Req)];  // bytes as read, word by word

  // Per batch (between two reads of req_prod).
  RingIdx last_prod = 0;
  unsigned taken_since_load = 0;
  int prod_loads = 0;
};
Observer obs;

// Shared-memory policy that records every read and, when racing, rewrites
// what it just read (the front end's concurrent writes).
struct RacingShm : ring::DirectSharedMemory {
  static RingIdx load_acquire(const RingIdx* p) {
    RingIdx v = DirectSharedMemory::load_acquire(p);
    if (p == obs.req_prod) {
      obs.last_prod = v;
      obs.taken_since_load = 0;
      ++obs.prod_loads;
      if (obs.racing) *const_cast<RingIdx*>(p) = v + obs.race_prod_delta;
    }
    return v;
  }
  template <typename T>
  static void copy_in(T& dst, const T* src) {
    static_assert(sizeof(T) == sizeof(Req));
    ++obs.copies;
    obs.copied_from = src;
    auto* s = reinterpret_cast<volatile uint64_t*>(const_cast<T*>(src));
    unsigned char* d = reinterpret_cast<unsigned char*>(&dst);
    for (std::size_t i = 0; i < sizeof(T) / 8; ++i) {
      uint64_t w = __atomic_load_n(s + i, __ATOMIC_RELAXED);
      std::memcpy(d + 8 * i, &w, 8);
      std::memcpy(obs.seen + 8 * i, &w, 8);
      if (obs.racing) {
        uint64_t junk;
        std::memset(&junk, obs.race_byte, 8);
        __atomic_store_n(s + i, w ^ junk ^ 0x0101010101010101ull, __ATOMIC_RELAXED);
      }
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
  }
};

// Counts copies for the production policy (it cannot be disturbed).
struct CountingShm : ring::DirectSharedMemory {
  static RingIdx load_acquire(const RingIdx* p) {
    RingIdx v = DirectSharedMemory::load_acquire(p);
    if (p == obs.req_prod) {
      obs.last_prod = v;
      obs.taken_since_load = 0;
      ++obs.prod_loads;
    }
    return v;
  }
  template <typename T>
  static void copy_in(T& dst, const T* src) {
    ++obs.copies;
    obs.copied_from = src;
    std::memcpy(obs.seen, const_cast<const T*>(src), sizeof(T));  // nothing races here
    DirectSharedMemory::copy_in(dst, src);
  }
};

template <typename Shm>
void run(const uint8_t* data, std::size_t size, bool allow_racing) {
  Script s{data, size};
  unsigned entries = 1u << (s.u8() % 7);  // 1..64
  RingIdx start = s.u32();
  std::size_t bytes = abi::kSringEntriesOffset + entries * sizeof(Entry);
  std::unique_ptr<unsigned char[]> mem(new unsigned char[bytes]);
  std::memset(mem.get(), 0, bytes);
  auto* shared = reinterpret_cast<ring::SharedRing<Req, Rsp>*>(mem.get());

  ring::BackRing<Req, Rsp, Shm> back;
  CHECK(back.init(mem.get(), bytes, start));
  CHECK(back.size() == entries);
  shared->hdr.req_prod = start;

  obs = Observer{};
  obs.ring_base = mem.get() + abi::kSringEntriesOffset;
  obs.entries = entries;
  obs.req_prod = &shared->hdr.req_prod;
  obs.last_prod = start;

  unsigned steps = 0;
  while (!s.done() && steps++ < 4096) {
    switch (s.u8() % 10) {
      case 0:  // arbitrary req_prod
        shared->hdr.req_prod = s.u32();
        break;
      case 1:  // plausible req_prod: a little ahead of what the back end consumed
        shared->hdr.req_prod = back.req_cons() + (s.u8() % (2 * entries + 2)) - 1;
        break;
      case 2: {  // write entry bytes
        unsigned slot = s.u8() % entries;
        unsigned char* e = obs.ring_base + slot * sizeof(Entry);
        unsigned len = 1 + s.u8() % sizeof(Entry);
        for (unsigned i = 0; i < len; ++i) e[i] = s.u8();
        break;
      }
      case 3: {  // header scribbles
        RingIdx v = s.u32();
        switch (s.u8() % 4) {
          case 0: shared->hdr.req_event = v; break;
          case 1: shared->hdr.rsp_event = v; break;
          case 2: shared->hdr.rsp_prod = v; break;
          default: shared->hdr.pad[v % sizeof(shared->hdr.pad)] = static_cast<uint8_t>(v >> 8); break;
        }
        break;
      }
      case 4: {  // race mode
        obs.racing = allow_racing && (s.u8() & 1);
        obs.race_byte = s.u8();
        obs.race_prod_delta = s.u32();
        break;
      }
      case 5:
      case 6: {  // back end takes up to k requests
        unsigned k = 1 + s.u8() % 200;
        for (unsigned i = 0; i < k; ++i) {
          RingIdx cons = back.req_cons();
          bool was_broken = back.broken();
          obs.copies = 0;
          obs.copied_from = nullptr;
          Req out;
          std::memset(&out, 0xCC, sizeof out);
          bool got = back.take_request(out);
          if (!got) {
            CHECK(obs.copies == 0);
            CHECK(back.req_cons() == cons);
            break;
          }
          CHECK(!was_broken && !back.broken());
          CHECK(obs.copies == 1);  // read the slot once
          CHECK(back.req_cons() == cons + 1);
          // The slot of req_cons, and nothing else.
          CHECK(obs.copied_from == obs.ring_base + (cons & (entries - 1)) * sizeof(Entry));
          // req_cons stays below the req_prod value read for this batch.
          CHECK(static_cast<RingIdx>(obs.last_prod - cons) >= 1);
          CHECK(static_cast<RingIdx>(obs.last_prod - cons) <= entries);
          CHECK(++obs.taken_since_load <= entries);
          // Never more requests in hand than slots.
          CHECK(static_cast<RingIdx>(back.req_cons() - back.rsp_prod_pvt()) <= entries);
          // The private copy is what the single read saw.
          CHECK(std::memcmp(&out, obs.seen, sizeof out) == 0);
        }
        break;
      }
      case 7: {  // answer up to k requests
        unsigned k = s.u8() % (entries + 2);
        for (unsigned i = 0; i < k; ++i) {
          bool can = back.rsp_prod_pvt() != back.req_cons();
          CHECK(back.push_response(Rsp{i, 0}) == can);
          if (!can) break;
        }
        if (s.u8() & 1) (void)back.push_responses_and_check_notify();
        else back.push_responses();
        break;
      }
      case 8: {
        obs.copies = 0;
        bool work = back.final_check_for_requests();
        CHECK(obs.copies == 0);
        if (back.broken()) CHECK(!work);
        break;
      }
      default: {
        obs.copies = 0;
        unsigned n = back.unconsumed();
        CHECK(obs.copies == 0);
        CHECK(n <= entries);
        CHECK(n <= entries - static_cast<RingIdx>(back.req_cons() - back.rsp_prod_pvt()));
        if (back.broken()) CHECK(n == 0);
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  run<RacingShm>(data, size, true);
  run<CountingShm>(data, size, false);
  return 0;
}
