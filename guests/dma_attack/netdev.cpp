// The hostile driver domain's virtio-net function (netdev.hpp).

#include "netdev.hpp"

#include "common.hpp"

#include <rt/virtio.hpp>

namespace dma {

namespace {

constexpr uint64_t kFMac = 1ull << 5;
constexpr uint32_t kHdr = 12;          // virtio_net_hdr with num_buffers (VERSION_1)
constexpr uint32_t kRxLen = 2048;
constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr uint64_t kReplyNs = 5 * kSecond;
// QEMU's user network: we are 10.0.2.15, its gateway 10.0.2.2.
constexpr uint8_t kOurIp[4] = {10, 0, 2, 15}, kGatewayIp[4] = {10, 0, 2, 2};

uint32_t g_bdf;
alignas(4096) uint8_t g_window[4][4096];
rt::virtio::Device g_dev;
rt::virtio::Queue g_rxq, g_txq;
alignas(4096) rt::virtio::Queue::Pages g_rx_pages, g_tx_pages;
alignas(4096) uint8_t g_rx[4096];
alignas(4096) uint8_t g_tx[4096];
alignas(4096) uint8_t g_placeholder[4096];
uint8_t g_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

// The ARP request for the gateway, after the (zero) virtio-net header.
uint32_t arp_request(uint8_t* p) {
    for (uint32_t i = 0; i < kHdr + 60; ++i) p[i] = 0;
    uint8_t* f = p + kHdr;
    for (unsigned i = 0; i < 6; ++i) f[i] = 0xFF, f[6 + i] = g_mac[i];
    f[12] = 0x08, f[13] = 0x06;                   // ARP
    f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0;  // Ethernet, IPv4
    f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;     // sizes, request
    for (unsigned i = 0; i < 6; ++i) f[22 + i] = g_mac[i];
    for (unsigned i = 0; i < 4; ++i) f[28 + i] = kOurIp[i], f[38 + i] = kGatewayIp[i];
    return kHdr + 60;
}

}  // namespace

bool net_open(uint32_t bdf) {
    g_bdf = bdf;
    auto fail = [&](const char* what) {
        rt::printf("virtio-net %02x:%02x.%x: %s: %s\n", bdf >> 8, (bdf >> 3) & 31, bdf & 7, what, g_dev.error());
        return false;
    };
    if (!g_dev.open(bdf, g_window)) return fail("open");
    if (!g_dev.negotiate(rt::virtio::kFVersion1 | rt::virtio::kFAccessPlatform | kFMac)) return fail("features");
    if (!g_dev.setup_queue(kRxQueue, g_rxq, &g_rx_pages, 16) || !g_dev.setup_queue(kTxQueue, g_txq, &g_tx_pages, 16))
        return fail("queues");
    if (g_dev.features() & kFMac)
        for (unsigned i = 0; i < 6; ++i) g_mac[i] = g_dev.device_config()[i];
    g_dev.start();
    return true;
}

bool net_reinit() {
    g_dev.reset();
    return net_open(g_bdf);
}

uint64_t net_own_buffer_maddr() { return rt::maddr_of(g_rx); }

Outcome net_arp_into(uint64_t maddr) {
    if ((maddr & 0xFFF) + kRxLen > 4096) return Outcome::io_error;
    for (auto& b : g_rx) b = 0;
    rt::virtio::Buf rx{g_placeholder + (maddr & 0xFFF), kRxLen, true};
    int head = g_rxq.add(&rx, 1);
    if (head < 0) return Outcome::io_error;
    reinterpret_cast<rt::virtio::Desc*>(g_rx_pages.desc)[head].addr = maddr;
    asm volatile("mfence" ::: "memory");
    g_rxq.kick();
    rt::virtio::Buf tx{g_tx, arp_request(g_tx), false};
    if (g_txq.add(&tx, 1) < 0) return Outcome::io_error;
    g_txq.kick();
    const uint64_t deadline = rt::now_ns() + kReplyNs;
    for (;;) {
        uint16_t id;
        uint32_t written;
        while (g_txq.take_used(&id, &written)) {}
        if (g_rxq.take_used(&id, &written)) return written > kHdr ? Outcome::done : Outcome::io_error;
        if (g_dev.status() & rt::virtio::kStatusNeedsReset) return Outcome::needs_reset;
        if (rt::now_ns() > deadline) return Outcome::no_answer;
        sleep_ns(100'000);
    }
}

bool net_own_buffer_holds_reply() {
    const uint8_t* f = g_rx + kHdr;
    bool ok = f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2;
    for (unsigned i = 0; i < 4; ++i) ok &= f[28 + i] == kGatewayIp[i] && f[38 + i] == kOurIp[i];
    for (unsigned i = 0; i < 6; ++i) ok &= f[i] == g_mac[i];
    return ok;
}

}  // namespace dma
