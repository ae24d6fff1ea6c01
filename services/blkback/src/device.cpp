// blkback's virtio-blk device (device.hpp).

#include "device.hpp"

#include "virtio_blk.hpp"

#include <rt/console.hpp>
#include <rt/virtio.hpp>

namespace blkback {

namespace {

alignas(4096) uint8_t g_window[4][4096];
rt::virtio::Device g_dev;
rt::virtio::Queue g_queue;
alignas(4096) rt::virtio::Queue::Pages g_queue_pages;
DeviceInfo g_info;
uint32_t g_port;

// Per slot: what the device reads first (header, discard segment), the
// status byte it writes last, and the bounce pages. 32-byte entries never
// cross a page.
struct alignas(32) SlotHead {
    vblk::Header hdr;
    vblk::DiscardSegment discard;
};
SlotHead g_heads[kSlots];
alignas(64) uint8_t g_status[kSlots][64];
alignas(4096) uint8_t g_bounce[kBouncePages][4096];
// Which slot a chain (by its head descriptor) belongs to.
uint8_t g_slot_of_head[rt::virtio::kMaxQueueSize];

template <typename T>
T config(size_t off) {
    T v = 0;
    const volatile uint8_t* c = g_dev.device_config();
    for (unsigned i = 0; i < sizeof(T); ++i) v |= T(c[off + i]) << (8 * i);
    return v;
}

bool submit(unsigned slot, const rt::virtio::Buf* bufs, unsigned n) {
    int head = g_queue.add(bufs, n);
    if (head < 0) return false;
    g_slot_of_head[head] = uint8_t(slot);
    return true;
}

}  // namespace

bool device_open(uint32_t bdf) {
    auto fail = [&](const char* what) {
        rt::printf("virtio-blk %02x:%02x.%x: %s: %s\n", bdf >> 8, (bdf >> 3) & 31, bdf & 7, what,
                   g_dev.error());
        return false;
    };
    if (!g_dev.open(bdf, g_window)) return fail("open");
    if (!g_dev.negotiate(rt::virtio::kFVersion1 | vblk::kFRo | vblk::kFBlkSize | vblk::kFFlush | vblk::kFDiscard |
                         vblk::kFSegMax))
        return fail("features");
    uint64_t f = g_dev.features();
    if (!g_dev.setup_queue(0, g_queue, &g_queue_pages)) return fail("queue 0");
    // Every slot's chain and every bounce page in flight at once.
    if (g_queue.size() < kQueueDescriptors) return fail("queue smaller than 256 descriptors");
    long port = g_dev.irq_port();
    if (port <= 0) return fail("interrupt");
    g_port = uint32_t(port);
    g_info.capacity = config<uint64_t>(vblk::kCfgCapacity);
    g_info.read_only = f & vblk::kFRo;
    g_info.flush = f & vblk::kFFlush;
    g_info.discard = f & vblk::kFDiscard;
    if (f & vblk::kFBlkSize) g_info.block_size = config<uint32_t>(vblk::kCfgBlkSize);
    if (g_info.discard) {
        g_info.max_discard_sectors = config<uint32_t>(vblk::kCfgMaxDiscardSectors);
        uint32_t align = config<uint32_t>(vblk::kCfgDiscardAlignment);
        g_info.discard_alignment = align ? align : 1;
        // One segment per request is all we send.
        if (g_info.max_discard_sectors == 0 || config<uint32_t>(vblk::kCfgMaxDiscardSeg) == 0) g_info.discard = false;
    }
    // Segments of 8 sectors at most and up to kMaxSegments of them: a
    // device that takes fewer per request than that is not one we drive.
    if ((f & vblk::kFSegMax) && config<uint32_t>(vblk::kCfgSegMax) < blk::kMaxSegments)
        return fail("seg_max below blkback's segments per request");
    g_dev.start();
    rt::printf("virtio-blk %02x:%02x.%x: %lu sectors%s%s%s, queue of %u\n", bdf >> 8, (bdf >> 3) & 31,
               bdf & 7, g_info.capacity, g_info.read_only ? ", read-only" : "", g_info.flush ? ", flush" : "",
               g_info.discard ? ", discard" : "", g_queue.size());
    return true;
}

const DeviceInfo& device() { return g_info; }
uint32_t device_port() { return g_port; }
void device_interrupt() { (void)g_dev.read_isr(); }
void device_ack() { g_dev.ack_irq(); }
uint8_t* bounce(unsigned page) { return g_bounce[page % kBouncePages]; }

bool device_submit_rw(unsigned slot, bool write, uint64_t sector, const blk::Checked& c, const uint16_t* pages) {
    if (c.nr_segments > blk::kMaxSegments) return false;
    g_heads[slot].hdr = vblk::Header{write ? vblk::kTOut : vblk::kTIn, 0, sector};
    g_status[slot][0] = 0xFF;
    rt::virtio::Buf bufs[2 + blk::kMaxSegments];
    unsigned n = 0;
    bufs[n++] = {&g_heads[slot].hdr, sizeof(vblk::Header), false};
    for (unsigned i = 0; i < c.nr_segments; ++i)
        bufs[n++] = {bounce(pages[i]) + c.first[i] * blk::kSectorBytes, uint32_t(c.count[i] * blk::kSectorBytes),
                     !write};
    bufs[n++] = {g_status[slot], 1, true};
    return submit(slot, bufs, n);
}

bool device_submit_flush(unsigned slot) {
    g_heads[slot].hdr = vblk::Header{vblk::kTFlush, 0, 0};
    g_status[slot][0] = 0xFF;
    rt::virtio::Buf bufs[2] = {{&g_heads[slot].hdr, sizeof(vblk::Header), false}, {g_status[slot], 1, true}};
    return submit(slot, bufs, 2);
}

bool device_submit_discard(unsigned slot, uint64_t sector, uint32_t sectors) {
    g_heads[slot].hdr = vblk::Header{vblk::kTDiscard, 0, 0};
    g_heads[slot].discard = vblk::DiscardSegment{sector, sectors, 0};
    g_status[slot][0] = 0xFF;
    rt::virtio::Buf bufs[3] = {{&g_heads[slot].hdr, sizeof(vblk::Header), false},
                               {&g_heads[slot].discard, sizeof(vblk::DiscardSegment), false},
                               {g_status[slot], 1, true}};
    return submit(slot, bufs, 3);
}

void device_kick() { g_queue.kick(); }

bool device_take(unsigned* slot, uint8_t* status) {
    uint16_t head;
    uint32_t written;
    if (!g_queue.take_used(&head, &written)) return false;
    *slot = g_slot_of_head[head % rt::virtio::kMaxQueueSize];
    // The status byte is the device's last write; a chain it finished
    // without writing it (written == 0) failed.
    *status = written ? __atomic_load_n(&g_status[*slot][0], __ATOMIC_ACQUIRE) : vblk::kSIoErr;
    return true;
}

}  // namespace blkback
