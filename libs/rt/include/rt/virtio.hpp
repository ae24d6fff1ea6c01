#pragma once
// A virtio 1.x PCI transport for driver domains (the "modern" interface of
// QEMU's virtio-*-pci devices): the vendor capabilities in the function's
// config space locate the common, notify, ISR and device-specific regions
// in its memory BARs; the driver maps them (an Mmio capability per BAR),
// negotiates features, and sets up split virtqueues whose three parts each
// sit in their own page. Nothing here needs machine-contiguous memory: a
// buffer handed to the device is at most one page and never crosses a page
// boundary, and its machine address comes from the domain's P2M (maddr_of).
//
// Interrupts: legacy INTx (MSI-X stays disabled), bound as an event channel
// by the domain's Irq capability. On an event the driver reads the ISR
// (which lowers the line), handles the used rings, then acknowledges the
// line with ack_irq() (EVTCHNOP_unmask, which the core turns into an IOAPIC
// unmask).
//
// Without an IOMMU the device can reach all of memory: a driver domain is
// trusted with DMA (docs/capabilities.md). With one (QEMU's intel-iommu and
// iommu_platform=on, docs/drivers.md) the device offers
// VIRTIO_F_ACCESS_PLATFORM and its DMA goes through the domain's I/O page
// table, whose I/O addresses are machine addresses: the addresses this driver
// gives the device do not change.
//
// Single-threaded, as domains are; not for use from event handlers.

#include <cstddef>
#include <cstdint>

namespace rt::virtio {

// Device status bits.
inline constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                         kStatusNeedsReset = 0x40, kStatusFailed = 0x80;
// Transport feature bits.
inline constexpr uint64_t kFVersion1 = 1ull << 32;
// The device's DMA goes through the platform's IOMMU (VIRTIO_F_ACCESS_PLATFORM).
// A device that offers it refuses FEATURES_OK unless the driver accepts it.
inline constexpr uint64_t kFAccessPlatform = 1ull << 33;

// Descriptor flags.
inline constexpr uint16_t kDescNext = 1, kDescWrite = 2;

struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(Desc) == 16);

// The most descriptors a queue has here: the descriptor table fills exactly
// one page.
inline constexpr uint16_t kMaxQueueSize = 256;

// One buffer of a chain: where it is in our address space (inside the
// initial region, so that its machine address is known), its length (the
// buffer must not cross a page boundary), and whether the device writes it.
struct Buf {
    const void* va;
    uint32_t len;
    bool device_writes;
};

// A split virtqueue. The caller provides the storage (static, in its image);
// Device::setup_queue fills it in.
class Queue {
public:
    // Page-aligned storage for the three parts.
    struct alignas(4096) Pages {
        uint8_t desc[4096];
        uint8_t avail[4096];
        uint8_t used[4096];
    };

    uint16_t size() const { return size_; }
    uint16_t free_descriptors() const { return nfree_; }
    // Places a chain of n buffers (device-readable ones first) in the avail
    // ring; returns its head id, or -1 if there are not enough free
    // descriptors or a buffer is not usable (crosses a page, outside the
    // initial region). The device is not told until kick().
    int add(const Buf* bufs, unsigned n);
    // Tells the device about the chains added since the last kick (unless
    // it asked not to be told).
    void kick();
    // A chain the device finished: its head id and the bytes it wrote.
    // False if there is none. The chain's descriptors are free again.
    bool take_used(uint16_t* head, uint32_t* written);
    // Whether the device has finished chains that take_used has not taken.
    bool has_used() const;

private:
    friend class Device;
    Pages* pages_ = nullptr;
    uint16_t size_ = 0;
    uint16_t index_ = 0;
    uint16_t free_head_ = 0;
    uint16_t nfree_ = 0;
    uint16_t avail_idx_ = 0;
    uint16_t last_used_ = 0;
    uint16_t pending_ = 0;           // chains added since the last kick
    volatile uint16_t* notify_ = nullptr;
    uint16_t chain_len_[kMaxQueueSize] = {};
};

class Device {
public:
    // Opens the function `bdf` (bus << 8 | device << 3 | function) the
    // domain holds a PciDevice capability for: finds the virtio
    // capabilities, maps the regions (into `window`, which the caller
    // provides: 4 pages of its own, page-aligned, never used for anything
    // else afterwards), enables memory decoding and bus mastering, resets
    // the device and acknowledges it. On failure returns false and error()
    // says why.
    bool open(uint32_t bdf, uint8_t (*window)[4096]);
    // Offers the device's features intersected with `wanted` (kFVersion1 is
    // always required; kFAccessPlatform is always accepted when offered) and
    // checks that the device accepts them.
    bool negotiate(uint64_t wanted);
    uint64_t features() const { return features_; }
    // The device-specific configuration region (mapped).
    volatile uint8_t* device_config() const { return device_cfg_; }
    uint16_t num_queues() const;
    // Sets up queue `index` with at most `max_size` entries (the device's
    // own maximum if smaller) in `pages`.
    bool setup_queue(uint16_t index, Queue& q, Queue::Pages* pages, uint16_t max_size = kMaxQueueSize);
    // Sets DRIVER_OK: the device starts using the queues.
    void start();
    // Resets the device (it forgets the queues and stops DMA).
    void reset();

    // The event channel for the function's interrupt line (binds it the
    // first time), or a negative errno.
    long irq_port();
    // Reads (and so clears) the ISR: bit 0 a queue was used, bit 1 the
    // configuration changed.
    uint8_t read_isr();
    // Acknowledges the interrupt: the line may fire again.
    void ack_irq();

    uint8_t status() const;
    const char* error() const { return error_; }
    uint32_t bdf() const { return bdf_; }

private:
    bool fail(const char* why);
    uint32_t bdf_ = 0;
    uint8_t irq_line_ = 0xFF;
    long irq_port_ = 0;
    uint64_t features_ = 0;
    const char* error_ = "";
    volatile uint8_t* common_ = nullptr;
    volatile uint8_t* isr_ = nullptr;
    volatile uint8_t* device_cfg_ = nullptr;
    volatile uint8_t* notify_base_ = nullptr;
    uint32_t notify_mult_ = 0;
    uint32_t notify_len_ = 0;
};

}  // namespace rt::virtio
