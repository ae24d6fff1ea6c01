// blk_iops_4k (role=bench): 4 KiB reads through blkback, one at a time,
// spread over the disk as blkback's own direct figure spreads them
// (services/blkback: bench-direct); per second of guest time (under
// -icount shift=0, guest time counts instructions, and the host time a
// read waits for QEMU).

#include "common.hpp"

namespace blkguest {

namespace {
alignas(4096) uint8_t g_page[4096];
}

void bench() {
    rt::Blkfront& d = disk();
    bool up = d.connect(0, rt::now_ns() + kConnectNs);
    check(up, "blk.bench.connected", "%s", d.error());
    if (!up) return;
    // As blkback's direct figure: 64 reads not counted, then batches of
    // 100 (the best one printed: host load shows in the time a read waits
    // for QEMU).
    constexpr unsigned kWarmup = 64, kBatch = 100;
    unsigned batches = arg("batches", 20), ok = 0, total = kWarmup + batches * kBatch;
    uint64_t pages = d.info().sectors / 8, t0 = 0, best = ~0ull, sum = 0;
    for (unsigned i = 0; i < total && pages; ++i) {
        if (i >= kWarmup && (i - kWarmup) % kBatch == 0) t0 = rt::now_ns();
        int st = d.read((uint64_t(i) * 7919 % pages) * 8, 8, g_page);
        ok += i >= kWarmup && st == 0;
        if (i >= kWarmup && (i - kWarmup) % kBatch == kBatch - 1) {
            uint64_t t = rt::now_ns() - t0;
            sum += t;
            if (t < best) best = t;
        }
    }
    check(ok == batches * kBatch, "blk.bench.reads", "%u of %u", ok, batches * kBatch);
    rt::printf("blk: %u of %u 4 KiB reads, %lu ns of guest time, best batch of %u %lu ns\n", ok, batches * kBatch, sum,
               kBatch, best);
    if (ok == batches * kBatch && sum > 0)
        rt::printf("BENCH blk_iops_4k %lu\n", uint64_t(uint64_t(ok) * 1'000'000'000ull / sum));
    (void)d.close(rt::now_ns() + kConnectNs);
}

}  // namespace blkguest
