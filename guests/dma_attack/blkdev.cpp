// The hostile driver domain's virtio-blk function (blkdev.hpp).

#include "blkdev.hpp"

#include "common.hpp"

#include <rt/virtio.hpp>

namespace dma {

namespace {

constexpr uint64_t kFBlkSize = 1ull << 6;
constexpr uint32_t kTIn = 0, kTOut = 1;
// Guest time a request may take (TCG on a loaded host is slow; a blocked
// request stops the device at once, QEMU handling the notify in the write).
constexpr uint64_t kRequestNs = 5 * kSecond;

struct Header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(Header) == 16);

uint32_t g_bdf;
alignas(4096) uint8_t g_window[4][4096];
rt::virtio::Device g_dev;
rt::virtio::Queue g_queue;
alignas(4096) rt::virtio::Queue::Pages g_pages;
// The header and the status byte: ours, in one page, typed writable.
alignas(4096) Header g_header;
alignas(64) volatile uint8_t g_status[64];
// What the data descriptor points at before it is aimed elsewhere (Queue::add
// accepts buffers of our initial region only).
alignas(4096) uint8_t g_placeholder[4096];
uint64_t g_capacity;

// A data buffer of a request: `len` bytes at the machine address `maddr`
// (within one page).
struct Segment {
    uint64_t maddr;
    uint32_t len;
};

Outcome request(uint32_t type, uint64_t sector, const Segment* data, unsigned n) {
    if (n == 0 || n > 2) return Outcome::io_error;
    for (unsigned i = 0; i < n; ++i)
        if (data[i].len == 0 || (data[i].maddr & 0xFFF) + data[i].len > 4096) return Outcome::io_error;
    g_header = Header{type, 0, sector};
    g_status[0] = 0xFF;
    rt::virtio::Buf bufs[4] = {{&g_header, sizeof g_header, false}};
    for (unsigned i = 0; i < n; ++i)
        bufs[1 + i] = {g_placeholder + (data[i].maddr & 0xFFF), data[i].len, type == kTIn};
    bufs[1 + n] = {const_cast<uint8_t*>(&g_status[0]), 1, true};
    int head = g_queue.add(bufs, 2 + n);
    if (head < 0) return Outcome::io_error;
    // Aim the data descriptors: the device is given each address as it
    // would be given any buffer of ours.
    auto* desc = reinterpret_cast<rt::virtio::Desc*>(g_pages.desc);
    for (unsigned i = 0, d = desc[head].next; i < n; ++i, d = desc[d].next) desc[d].addr = data[i].maddr;
    asm volatile("mfence" ::: "memory");
    g_queue.kick();
    const uint64_t deadline = rt::now_ns() + kRequestNs;
    for (;;) {
        uint16_t id;
        uint32_t written;
        if (g_queue.take_used(&id, &written))
            return written && g_status[0] == 0 ? Outcome::done : Outcome::io_error;
        if (g_dev.status() & rt::virtio::kStatusNeedsReset) return Outcome::needs_reset;
        if (rt::now_ns() > deadline) return Outcome::no_answer;
        sleep_ns(100'000);
    }
}

}  // namespace

const char* outcome_name(Outcome o) {
    switch (o) {
    case Outcome::done: return "completed it, status OK";
    case Outcome::io_error: return "completed it with an error";
    case Outcome::needs_reset: return "stopped (needs a reset)";
    case Outcome::no_answer: return "did not answer";
    }
    return "?";
}

bool blk_open(uint32_t bdf) {
    g_bdf = bdf;
    auto fail = [&](const char* what) {
        rt::printf("virtio-blk %02x:%02x.%x: %s: %s\n", bdf >> 8, (bdf >> 3) & 31, bdf & 7, what, g_dev.error());
        return false;
    };
    if (!g_dev.open(bdf, g_window)) return fail("open");
    if (!g_dev.negotiate(rt::virtio::kFVersion1 | rt::virtio::kFAccessPlatform | kFBlkSize)) return fail("features");
    if (!g_dev.setup_queue(0, g_queue, &g_pages, 16)) return fail("queue 0");
    const volatile uint8_t* c = g_dev.device_config();
    g_capacity = 0;
    for (unsigned i = 0; i < 8; ++i) g_capacity |= uint64_t(c[i]) << (8 * i);
    g_dev.start();
    return true;
}

bool blk_reinit() {
    g_dev.reset();
    return blk_open(g_bdf);
}

uint64_t blk_capacity() { return g_capacity; }
rt::virtio::Device& blk_device() { return g_dev; }

Outcome blk_read_to(uint64_t sector, uint64_t maddr, uint32_t len) {
    const Segment s{maddr, len};
    return request(kTIn, sector, &s, 1);
}
Outcome blk_write_from(uint64_t sector, uint64_t maddr, uint32_t len) {
    const Segment s{maddr, len};
    return request(kTOut, sector, &s, 1);
}
Outcome blk_read_split(uint64_t sector, uint64_t head_maddr, uint64_t tail_maddr, uint32_t tail_len) {
    if (tail_len == 0 || tail_len >= kSector) return Outcome::io_error;
    const Segment s[2] = {{head_maddr, kSector - tail_len}, {tail_maddr, tail_len}};
    return request(kTIn, sector, s, 2);
}

void blk_quiet(bool quiet) {
    // VIRTQ_AVAIL_F_NO_INTERRUPT (virtio 1.x 2.7.7); without
    // VIRTIO_F_EVENT_IDX, which we do not negotiate, the device honours it.
    *reinterpret_cast<volatile uint16_t*>(g_pages.avail) = quiet ? 1 : 0;
    asm volatile("mfence" ::: "memory");
}

}  // namespace dma
