// Two threads, one producer and one consumer, passing 64-byte messages:
//   BM_Ring        through ring::FrontRing/BackRing over a 4 KiB shared ring
//                  (32 entries): the producer is the front end, the consumer
//                  the back end, which answers each request with a small
//                  response so the front end can reuse the slot (that is the
//                  Xen protocol: a slot is free once its response is taken);
//   BM_BoostSpsc   through boost::lockfree::spsc_queue<Msg64, capacity<32>>.
// Both spin on the indices (no events), both pin the two threads to two CPUs
// when there are two. Figures: user counters ring_msgs_per_s and
// boost_spsc_msgs_per_s (messages per second of wall-clock time).
#include <ring/ring.hpp>

#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

struct Msg64 {
  uint64_t seq;
  uint64_t words[7];
};
static_assert(sizeof(Msg64) == 64);

struct Ack {
  uint64_t seq;
};

constexpr uint64_t kMsgsPerIteration = 1u << 20;

inline void cpu_relax() { __builtin_ia32_pause(); }

void pin_to(unsigned cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

inline void fill(Msg64& m, uint64_t seq) {
  m.seq = seq;
  for (int i = 0; i < 7; ++i) m.words[i] = seq + static_cast<uint64_t>(i);
}

// The consumer folds every message into a checksum the producer can verify.
inline uint64_t fold(const Msg64& m) { return m.seq ^ m.words[6]; }
uint64_t expected_sum(uint64_t n) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s += i ^ (i + 6);
  return s;
}

struct alignas(4096) Page {
  unsigned char bytes[4096];
};

void BM_Ring(benchmark::State& state) {
  using Shared = ring::SharedRing<Msg64, Ack>;
  static_assert(Shared::entries(4096) == 32);
  auto* page = new Page;
  const uint64_t want = expected_sum(kMsgsPerIteration);
  uint64_t total = 0;
  double seconds = 0;
  pin_to(0);
  for (auto _ : state) {
    // FrontRing/BackRing are alignas(64): the producer's private indices and
    // the consumer's do not share a cache line although they sit side by side.
    ring::FrontRing<Msg64, Ack> front;
    ring::BackRing<Msg64, Ack> back;
    if (!front.init(page, sizeof(Page)) || !back.init(page, sizeof(Page))) {
      state.SkipWithError("ring init");
      break;
    }
    uint64_t sum = 0;
    bool broken = false;
    auto t0 = std::chrono::steady_clock::now();
    std::thread consumer([&] {
      pin_to(1);
      uint64_t done = 0, s = 0;
      Msg64 m;
      while (done < kMsgsPerIteration) {
        unsigned n = 0;
        while (back.take_request(m)) {
          s += fold(m);
          back.push_response(Ack{m.seq});
          ++n;
        }
        if (n) {
          back.push_responses();
          done += n;
        } else if (back.broken()) {
          break;
        } else {
          cpu_relax();
        }
      }
      sum = s;
      broken = back.broken();
    });
    uint64_t sent = 0, acked = 0;
    while (acked < kMsgsPerIteration) {
      unsigned n = 0;
      Msg64* slot;
      while (sent < kMsgsPerIteration && (slot = front.next_request()) != nullptr) {
        fill(*slot, sent++);
        ++n;
      }
      if (n) front.push_requests();
      Ack a;
      unsigned k = 0;
      while (front.take_response(a)) ++k;
      acked += k;
      if (front.broken()) break;
      if (!n && !k) cpu_relax();
    }
    consumer.join();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += kMsgsPerIteration;
    if (broken || front.broken() || sum != want) {
      state.SkipWithError("ring: lost or corrupted messages");
      break;
    }
  }
  delete page;
  state.counters["ring_msgs_per_s"] = seconds > 0 ? static_cast<double>(total) / seconds : 0;
  state.SetItemsProcessed(static_cast<int64_t>(total));
}

void BM_BoostSpsc(benchmark::State& state) {
  using Queue = boost::lockfree::spsc_queue<Msg64, boost::lockfree::capacity<32>>;
  auto* q = new Queue;
  const uint64_t want = expected_sum(kMsgsPerIteration);
  uint64_t total = 0;
  double seconds = 0;
  pin_to(0);
  for (auto _ : state) {
    uint64_t sum = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::thread consumer([&] {
      pin_to(1);
      uint64_t done = 0, s = 0;
      Msg64 m;
      while (done < kMsgsPerIteration) {
        if (q->pop(m)) {
          s += fold(m);
          ++done;
        } else {
          cpu_relax();
        }
      }
      sum = s;
    });
    Msg64 m;
    for (uint64_t sent = 0; sent < kMsgsPerIteration;) {
      fill(m, sent);
      if (q->push(m)) ++sent;
      else cpu_relax();
    }
    consumer.join();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += kMsgsPerIteration;
    if (sum != want) {
      state.SkipWithError("boost: lost or corrupted messages");
      break;
    }
  }
  delete q;
  state.counters["boost_spsc_msgs_per_s"] = seconds > 0 ? static_cast<double>(total) / seconds : 0;
  state.SetItemsProcessed(static_cast<int64_t>(total));
}

BENCHMARK(BM_Ring)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BoostSpsc)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
