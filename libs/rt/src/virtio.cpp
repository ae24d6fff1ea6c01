// The virtio 1.x PCI transport (rt/virtio.hpp).

#include <rt/virtio.hpp>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/moat.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/pci.hpp>

namespace rt::virtio {

namespace {

// Offsets in the common configuration structure (virtio 1.x, 4.1.4.3).
enum Common : uint32_t {
    kDeviceFeatureSelect = 0x00,
    kDeviceFeature = 0x04,
    kDriverFeatureSelect = 0x08,
    kDriverFeature = 0x0C,
    kMsixConfig = 0x10,
    kNumQueues = 0x12,
    kDeviceStatus = 0x14,
    kQueueSelect = 0x16,
    kQueueSize = 0x18,
    kQueueMsixVector = 0x1A,
    kQueueEnable = 0x1C,
    kQueueNotifyOff = 0x1E,
    kQueueDesc = 0x20,
    kQueueDriver = 0x28,
    kQueueDevice = 0x30,
};

// Vendor capability types (virtio_pci_cap.cfg_type).
enum CfgType : uint8_t { kCommonCfg = 1, kNotifyCfg = 2, kIsrCfg = 3, kDeviceCfg = 4 };

constexpr uint16_t kNoVector = 0xFFFF;
constexpr uint16_t kUsedNoNotify = 1;

// The avail and used rings: flags and idx, then the ring.
struct Avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[kMaxQueueSize];
};
struct UsedElem {
    uint32_t id;
    uint32_t len;
};
struct Used {
    uint16_t flags;
    uint16_t idx;
    UsedElem ring[kMaxQueueSize];
};
static_assert(sizeof(Avail) <= 4096 && sizeof(Used) <= 4096);

template <typename T>
T rd(volatile uint8_t* base, uint32_t off) {
    return *reinterpret_cast<volatile T*>(base + off);
}
template <typename T>
void wr(volatile uint8_t* base, uint32_t off, T v) {
    *reinterpret_cast<volatile T*>(base + off) = v;
}
// 64-bit fields as two 32-bit writes, low half first (4.1.3.1).
void wr64(volatile uint8_t* base, uint32_t off, uint64_t v) {
    wr<uint32_t>(base, off, uint32_t(v));
    wr<uint32_t>(base, off + 4, uint32_t(v >> 32));
}

inline void barrier() { asm volatile("mfence" ::: "memory"); }

long config_read(uint32_t bdf, uint16_t off, uint8_t size, uint32_t* out) { return pci_config_read(bdf, off, size, out); }
long config_write(uint32_t bdf, uint16_t off, uint8_t size, uint32_t value) {
    return pci_config_write(bdf, off, size, value);
}

struct Region {
    bool found;
    uint8_t bar;
    uint32_t offset, length, extra;
};

}  // namespace

// ---- Queue ----

int Queue::add(const Buf* bufs, unsigned n) {
    if (!pages_ || n == 0 || n > nfree_) return -1;
    for (unsigned i = 0; i < n; ++i) {
        uint64_t va = reinterpret_cast<uint64_t>(bufs[i].va);
        if (bufs[i].len == 0 || (va & 0xFFF) + bufs[i].len > 4096 || maddr_of(bufs[i].va) == 0) return -1;
    }
    Desc* desc = reinterpret_cast<Desc*>(pages_->desc);
    uint16_t head = free_head_, cur = head, last = head;
    for (unsigned i = 0; i < n; ++i) {
        Desc& d = desc[cur];
        d.addr = maddr_of(bufs[i].va);
        d.len = bufs[i].len;
        d.flags = uint16_t((bufs[i].device_writes ? kDescWrite : 0) | (i + 1 < n ? kDescNext : 0));
        last = cur;
        cur = d.next;
    }
    free_head_ = desc[last].next;
    nfree_ = uint16_t(nfree_ - n);
    chain_len_[head] = uint16_t(n);
    Avail* avail = reinterpret_cast<Avail*>(pages_->avail);
    avail->ring[avail_idx_ & (size_ - 1)] = head;
    barrier();   // the descriptors and the ring entry before the index
    ++avail_idx_;
    *reinterpret_cast<volatile uint16_t*>(&avail->idx) = avail_idx_;
    ++pending_;
    return head;
}

void Queue::kick() {
    if (!pending_) return;
    pending_ = 0;
    barrier();   // the index before the device's flag is looked at
    const Used* used = reinterpret_cast<const Used*>(pages_->used);
    if (*reinterpret_cast<const volatile uint16_t*>(&used->flags) & kUsedNoNotify) return;
    *notify_ = index_;
}

bool Queue::has_used() const {
    if (!pages_) return false;
    const Used* used = reinterpret_cast<const Used*>(pages_->used);
    return *reinterpret_cast<const volatile uint16_t*>(&used->idx) != last_used_;
}

bool Queue::take_used(uint16_t* head, uint32_t* written) {
    if (!has_used()) return false;
    barrier();   // the index before the entry it covers
    const Used* used = reinterpret_cast<const Used*>(pages_->used);
    UsedElem e = used->ring[last_used_ & (size_ - 1)];
    ++last_used_;
    // The device is trusted with DMA anyway, but a bad id must not corrupt
    // our free list: such an entry is skipped.
    if (e.id >= size_ || chain_len_[e.id] == 0) return take_used(head, written);
    Desc* desc = reinterpret_cast<Desc*>(pages_->desc);
    uint16_t last = uint16_t(e.id);
    for (uint16_t i = 1; i < chain_len_[e.id]; ++i) last = desc[last].next;
    desc[last].next = free_head_;
    free_head_ = uint16_t(e.id);
    nfree_ = uint16_t(nfree_ + chain_len_[e.id]);
    chain_len_[e.id] = 0;
    *head = uint16_t(e.id);
    *written = e.len;
    return true;
}

// ---- Device ----

bool Device::fail(const char* why) {
    error_ = why;
    return false;
}

bool Device::open(uint32_t bdf, uint8_t (*window)[4096]) {
    bdf_ = bdf;
    abi::MoatPciInfo info{};
    if (pci_info(bdf, &info) != 0) return fail("no PciDevice capability for the function");
    if (info.vendor != 0x1af4) return fail("not a virtio function (vendor is not 1af4)");
    irq_line_ = info.irq_line;

    uint32_t status = 0, cap = 0;
    if (config_read(bdf, 0x06, 2, &status) != 0 || !(status & 0x10)) return fail("no PCI capability list");
    if (config_read(bdf, 0x34, 1, &cap) != 0) return fail("config space unreadable");
    Region regions[5] = {};
    for (unsigned guard = 0; cap >= 0x40 && cap < 0x100 && guard < 48; ++guard) {
        uint32_t head = 0;
        if (config_read(bdf, uint16_t(cap & ~3u), 4, &head) != 0) return fail("config space unreadable");
        uint8_t id = uint8_t(head), next = uint8_t(head >> 8);
        uint8_t type = uint8_t(head >> 24);
        if (id == 0x09 && type >= kCommonCfg && type <= kDeviceCfg && !regions[type].found) {
            uint32_t bar = 0, off = 0, len = 0, extra = 0;
            if (config_read(bdf, uint16_t(cap + 4), 1, &bar) != 0 || config_read(bdf, uint16_t(cap + 8), 4, &off) != 0 ||
                config_read(bdf, uint16_t(cap + 12), 4, &len) != 0)
                return fail("config space unreadable");
            if (type == kNotifyCfg && config_read(bdf, uint16_t(cap + 16), 4, &extra) != 0)
                return fail("config space unreadable");
            if (bar < 6) regions[type] = {true, uint8_t(bar), off, len, extra};
        }
        cap = next;
    }
    volatile uint8_t* mapped[5] = {};
    for (uint8_t t = kCommonCfg; t <= kDeviceCfg; ++t) {
        const Region& r = regions[t];
        if (!r.found) return fail("a virtio capability is missing (not a modern virtio device?)");
        const abi::MoatPciBar& bar = info.bars[r.bar];
        if (bar.is_io || bar.size == 0 || uint64_t(r.offset) + r.length > bar.size)
            return fail("a virtio region is not inside a memory BAR");
        uint64_t pa = bar.base + r.offset;
        uint32_t need = t == kCommonCfg ? 0x38 : t == kIsrCfg ? 1 : t == kNotifyCfg ? 2 : r.length;
        if ((pa & 0xFFF) + need > 4096) return fail("a virtio region spans pages");
        uint8_t* va = window[t - 1];
        long rc = update_va_mapping(ptr(va), (pa & ~0xFFFull) | kPteP | kPteRw | kPteA | kPteD | 0x18 /* PCD|PWT */);
        if (rc != 0) return fail("mapping a BAR page was refused (no Mmio capability?)");
        mapped[t] = va + (pa & 0xFFF);
    }
    common_ = mapped[kCommonCfg];
    notify_base_ = mapped[kNotifyCfg];
    notify_mult_ = regions[kNotifyCfg].extra;
    notify_len_ = regions[kNotifyCfg].length;
    isr_ = mapped[kIsrCfg];
    device_cfg_ = mapped[kDeviceCfg];

    // Memory decoding and bus mastering on, INTx not disabled.
    uint32_t cmd = 0;
    if (config_read(bdf, 0x04, 2, &cmd) != 0) return fail("config space unreadable");
    if (config_write(bdf, 0x04, 2, (cmd | 0x6) & ~0x400u) != 0) return fail("command register write refused");

    reset();
    wr<uint8_t>(common_, kDeviceStatus, kStatusAcknowledge);
    wr<uint8_t>(common_, kDeviceStatus, kStatusAcknowledge | kStatusDriver);
    wr<uint16_t>(common_, kMsixConfig, kNoVector);
    return true;
}

void Device::reset() {
    if (!common_) return;
    wr<uint8_t>(common_, kDeviceStatus, 0);
    // The device says it is done resetting by reading back 0.
    for (unsigned i = 0; i < 1000000 && rd<uint8_t>(common_, kDeviceStatus) != 0; ++i) asm volatile("pause");
}

uint8_t Device::status() const { return common_ ? rd<uint8_t>(common_, kDeviceStatus) : 0; }

uint16_t Device::num_queues() const { return common_ ? rd<uint16_t>(common_, kNumQueues) : 0; }

bool Device::negotiate(uint64_t wanted) {
    if (!common_) return fail("not open");
    wr<uint32_t>(common_, kDeviceFeatureSelect, 0);
    uint64_t offered = rd<uint32_t>(common_, kDeviceFeature);
    wr<uint32_t>(common_, kDeviceFeatureSelect, 1);
    offered |= uint64_t(rd<uint32_t>(common_, kDeviceFeature)) << 32;
    if (!(offered & kFVersion1)) return fail("the device does not offer VIRTIO_F_VERSION_1");
    // ACCESS_PLATFORM only says the device's addresses are the platform's
    // (through the IOMMU): they already are, machine addresses of our frames.
    features_ = offered & (wanted | kFVersion1 | kFAccessPlatform);
    wr<uint32_t>(common_, kDriverFeatureSelect, 0);
    wr<uint32_t>(common_, kDriverFeature, uint32_t(features_));
    wr<uint32_t>(common_, kDriverFeatureSelect, 1);
    wr<uint32_t>(common_, kDriverFeature, uint32_t(features_ >> 32));
    wr<uint8_t>(common_, kDeviceStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    if (!(rd<uint8_t>(common_, kDeviceStatus) & kStatusFeaturesOk)) {
        wr<uint8_t>(common_, kDeviceStatus, kStatusFailed);
        return fail("the device refused the features");
    }
    return true;
}

bool Device::setup_queue(uint16_t index, Queue& q, Queue::Pages* pages, uint16_t max_size) {
    if (!common_) return fail("not open");
    if (index >= num_queues()) return fail("no such queue");
    wr<uint16_t>(common_, kQueueSelect, index);
    uint16_t dev_max = rd<uint16_t>(common_, kQueueSize);
    if (dev_max == 0) return fail("the queue is not available");
    uint16_t want = max_size < dev_max ? max_size : dev_max;
    if (want > kMaxQueueSize) want = kMaxQueueSize;
    uint16_t size = 1;
    while (uint16_t(size * 2) <= want && size < kMaxQueueSize) size = uint16_t(size * 2);
    uint64_t desc = maddr_of(pages->desc), avail = maddr_of(pages->avail), used = maddr_of(pages->used);
    if (!desc || !avail || !used) return fail("queue pages outside the initial region");
    uint32_t notify_off = uint32_t(rd<uint16_t>(common_, kQueueNotifyOff)) * notify_mult_;
    if (notify_off + 2 > notify_len_ ||
        (reinterpret_cast<uint64_t>(notify_base_) & 0xFFF) + notify_off + 2 > 4096)
        return fail("the queue's notify address is outside the mapped page");

    for (auto& b : pages->desc) b = 0;
    for (auto& b : pages->avail) b = 0;
    for (auto& b : pages->used) b = 0;
    Desc* d = reinterpret_cast<Desc*>(pages->desc);
    for (uint16_t i = 0; i < size; ++i) d[i].next = uint16_t(i + 1);
    q.pages_ = pages;
    q.size_ = size;
    q.index_ = index;
    q.free_head_ = 0;
    q.nfree_ = size;
    q.avail_idx_ = 0;
    q.last_used_ = 0;
    q.pending_ = 0;
    for (auto& c : q.chain_len_) c = 0;
    q.notify_ = reinterpret_cast<volatile uint16_t*>(notify_base_ + notify_off);

    wr<uint16_t>(common_, kQueueSize, size);
    wr<uint16_t>(common_, kQueueMsixVector, kNoVector);
    wr64(common_, kQueueDesc, desc);
    wr64(common_, kQueueDriver, avail);
    wr64(common_, kQueueDevice, used);
    wr<uint16_t>(common_, kQueueEnable, 1);
    return true;
}

void Device::start() {
    if (common_) wr<uint8_t>(common_, kDeviceStatus, uint8_t(rd<uint8_t>(common_, kDeviceStatus) | kStatusDriverOk));
}

long Device::irq_port() {
    if (irq_port_ > 0) return irq_port_;
    if (irq_line_ == 0xFF) return abi::neg(abi::Errno::enodev);
    abi::EvtchnBindPirq bp{irq_line_, 0, 0};
    long r = evtchn_op(abi::EvtchnOp::bind_pirq, &bp);
    if (r != 0) return r;
    irq_port_ = long(bp.port);
    return irq_port_;
}

uint8_t Device::read_isr() { return isr_ ? *isr_ : 0; }

void Device::ack_irq() {
    if (irq_port_ <= 0) return;
    abi::EvtchnUnmask u{uint32_t(irq_port_)};
    (void)evtchn_op(abi::EvtchnOp::unmask, &u);
}

}  // namespace rt::virtio
