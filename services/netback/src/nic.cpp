// virtio-net on QEMU's virtio-net-pci (netback.hpp).

#include "netback.hpp"

#include <rt/caps.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/mm.hpp>
#include <rt/netfront.hpp>
#include <rt/time.hpp>
#include <rt/virtio.hpp>

namespace netback {

namespace {

constexpr uint64_t kFMac = 1ull << 5;
constexpr size_t kHdr = 12;         // virtio_net_hdr with num_buffers (VERSION_1)
constexpr unsigned kRxBufs = 128;   // 2 KiB each, two per page
constexpr unsigned kTxBufs = 256;
constexpr unsigned kRxBatch = 64;   // received frames switched per pass
constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr size_t kBufSize = 2048;

alignas(4096) uint8_t g_window[4][4096];
rt::virtio::Device g_dev;
rt::virtio::Queue g_rxq, g_txq;
rt::virtio::Queue::Pages g_rxq_pages, g_txq_pages;
alignas(4096) uint8_t g_rx_bufs[kRxBufs / 2][4096];
alignas(4096) uint8_t g_tx_bufs[kTxBufs / 2][4096];
int16_t g_rx_buf_of_head[rt::virtio::kMaxQueueSize];
int16_t g_tx_buf_of_head[rt::virtio::kMaxQueueSize];
uint16_t g_tx_free[kTxBufs];
unsigned g_tx_nfree;
bool g_up;
bool g_irq_fired;
long g_irq_port;
uint64_t g_rx_frames, g_tx_frames, g_tx_dropped, g_rx_bad;

uint8_t* rx_buf(unsigned i) { return g_rx_bufs[i / 2] + (i % 2) * kBufSize; }
uint8_t* tx_buf(unsigned i) { return g_tx_bufs[i / 2] + (i % 2) * kBufSize; }

bool post_rx(unsigned i) {
    rt::virtio::Buf b{rx_buf(i), kBufSize, true};
    int head = g_rxq.add(&b, 1);
    if (head < 0) return false;
    g_rx_buf_of_head[head] = int16_t(i);
    return true;
}

void reap_tx() {
    uint16_t head;
    uint32_t written;
    while (g_txq.take_used(&head, &written)) {
        int16_t b = g_tx_buf_of_head[head];
        if (b < 0) continue;
        g_tx_buf_of_head[head] = -1;
        g_tx_free[g_tx_nfree++] = uint16_t(b);
    }
}

}  // namespace

bool nic_open() {
    for (auto& h : g_rx_buf_of_head) h = -1;
    for (auto& h : g_tx_buf_of_head) h = -1;
    // The function the manifest gave us (its PciDevice capability).
    long bdf = rt::pci_function_held();
    if (bdf < 0) {
        rt::printf("no NIC: we hold no PCI function\n");
        return false;
    }
    if (!g_dev.open(uint32_t(bdf), g_window) || !g_dev.negotiate(rt::virtio::kFVersion1 | kFMac) ||
        !g_dev.setup_queue(kRxQueue, g_rxq, &g_rxq_pages) || !g_dev.setup_queue(kTxQueue, g_txq, &g_txq_pages)) {
        rt::printf("no NIC at %02lx:%02lx.%lx: %s\n", bdf >> 8, (bdf >> 3) & 31, bdf & 7, g_dev.error());
        return false;
    }
    g_irq_port = g_dev.irq_port();
    if (g_irq_port <= 0) {
        rt::printf("NIC: its interrupt line cannot be bound (%ld)\n", g_irq_port);
        g_dev.reset();
        return false;
    }
    g_dev.start();
    unsigned posted = 0;
    for (unsigned i = 0; i < kRxBufs; ++i) posted += post_rx(i);
    g_rxq.kick();
    for (unsigned i = 0; i < kTxBufs; ++i) g_tx_free[i] = uint16_t(kTxBufs - 1 - i);
    g_tx_nfree = kTxBufs;
    net::Mac mac{};
    if (g_dev.features() & kFMac)
        for (unsigned i = 0; i < 6; ++i) mac.b[i] = g_dev.device_config()[i];
    rt::printf("NIC %02lx:%02lx.%lx: virtio-net, mac %02x:%02x:%02x:%02x:%02x:%02x, %u RX buffers, queues of %u/%u\n",
               bdf >> 8, (bdf >> 3) & 31, bdf & 7,
               mac.b[0], mac.b[1], mac.b[2], mac.b[3], mac.b[4], mac.b[5], posted, g_rxq.size(), g_txq.size());
    g_up = true;
    return true;
}

bool nic_up() { return g_up; }
long nic_irq_port() { return g_up ? g_irq_port : 0; }

void nic_irq_begin() {
    g_irq_fired = true;
    (void)g_dev.read_isr();
}

void nic_irq_end() {
    if (!g_irq_fired) return;
    g_irq_fired = false;
    g_dev.ack_irq();
}

bool nic_poll() {
    if (!g_up) return false;
    reap_tx();
    // Switch a batch, run the copies into the vifs, then give the buffers
    // back to the device (not before: the copies read them).
    uint16_t taken[kRxBatch];
    unsigned n = 0;
    uint16_t head;
    uint32_t written;
    while (n < kRxBatch && g_rxq.take_used(&head, &written)) {
        int16_t b = g_rx_buf_of_head[head];
        if (b < 0) continue;
        g_rx_buf_of_head[head] = -1;
        taken[n++] = uint16_t(b);
        if (written < kHdr + net::kEthHeaderLen || written > kBufSize) {
            ++g_rx_bad;
            continue;
        }
        size_t len = written - kHdr;
        if (len > net::kMaxFrameLen) {
            ++g_rx_bad;
            continue;
        }
        ++g_rx_frames;
        deliver(rx_buf(b) + kHdr, len, kNicPort);
    }
    rx_flush();
    for (unsigned i = 0; i < n; ++i) (void)post_rx(taken[i]);
    if (n) g_rxq.kick();
    return g_rxq.has_used();
}

bool nic_send(const uint8_t* frame, size_t len) {
    if (!g_up || len > net::kMaxFrameLen) return false;
    if (g_tx_nfree == 0) reap_tx();
    if (g_tx_nfree == 0) {
        ++g_tx_dropped;
        return false;
    }
    unsigned b = g_tx_free[--g_tx_nfree];
    uint8_t* p = tx_buf(b);
    for (size_t i = 0; i < kHdr; ++i) p[i] = 0;
    __builtin_memcpy(p + kHdr, frame, len);
    rt::virtio::Buf buf{p, uint32_t(kHdr + len), false};
    int head = g_txq.add(&buf, 1);
    if (head < 0) {
        g_tx_free[g_tx_nfree++] = uint16_t(b);
        ++g_tx_dropped;
        return false;
    }
    g_tx_buf_of_head[head] = int16_t(b);
    ++g_tx_frames;
    return true;
}

void nic_kick() {
    if (g_up) g_txq.kick();
}

namespace {

// Waits for the device to finish sent frames (its interrupt, or a tenth of
// a second, whichever comes first) and takes their buffers back.
void wait_tx_progress() {
    g_txq.kick();
    if (!g_txq.has_used()) {
        uint32_t port = uint32_t(g_irq_port);
        (void)rt::wait_ports(&port, 1, rt::now_ns() + 100'000'000);
        (void)g_dev.read_isr();
        g_dev.ack_irq();
    }
    reap_tx();
}

}  // namespace

uint64_t nic_bench(unsigned n, size_t len, unsigned batch) {
    if (!g_up || len < net::kMinFrameLen || len > net::kMaxFrameLen || batch == 0) return 0;
    // Broadcast frames of a local experimental EtherType: QEMU's user
    // network reads and drops them.
    uint8_t frame[net::kMaxFrameLen] = {};
    for (unsigned i = 0; i < 6; ++i) frame[i] = 0xFF;
    frame[6] = 0x02;
    frame[12] = 0x88;
    frame[13] = 0xB5;
    uint64_t frames = g_tx_frames, dropped = g_tx_dropped, best = 0;
    // Guest time passes while we sleep for the device too (under -icount
    // the clock follows the host's while every vCPU is idle): that is the
    // host's time emulating the NIC, not the driver's, so it is left out.
    for (unsigned done = 0; done + batch <= n; done += batch) {
        uint64_t t0 = rt::now_ns(), waited = 0;
        auto wait = [&] {
            uint64_t w0 = rt::now_ns();
            wait_tx_progress();
            waited += rt::now_ns() - w0;
        };
        for (unsigned sent = 0; sent < batch;) {
            if (g_tx_nfree == 0) reap_tx();
            if (g_tx_nfree == 0) {
                wait();
                continue;
            }
            (void)nic_send(frame, len);
            ++sent;
            if (sent % 32 == 0) g_txq.kick();   // as the switch's passes do
        }
        while (g_tx_nfree < kTxBufs) wait();
        uint64_t t = rt::now_ns() - t0 - waited;
        if (!best || t < best) best = t;
    }
    g_tx_frames = frames;   // not the switch's frames
    g_tx_dropped = dropped;
    return best ? best : 1;
}

void nic_print_stats() {
    if (g_up)
        rt::printf("NIC: %lu frames received (%lu bad), %lu sent, %lu dropped (no buffer)\n", g_rx_frames, g_rx_bad,
                   g_tx_frames, g_tx_dropped);
}

}  // namespace netback
