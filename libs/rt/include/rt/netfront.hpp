#pragma once
// netfront: a guest's end of Xen's network interface (abi/netif.hpp), one
// vif (device/vif/<n>) connected over xenbus to its back-end (netback).
//
// connect() follows Xen's front-end: it reads the back-end's path, id and
// our MAC from device/vif/<n>, grants the TX and RX ring pages and the
// buffer pages, allocates an event channel for the back-end, waits for the
// back-end's InitWait (feature-rx-copy=1 is required: the back-end copies
// frames into our pages, it never maps them), writes tx-ring-ref,
// rx-ring-ref, event-channel, request-rx-copy=1 and state Connected (4) in
// one transaction, and waits for the back-end's Connected.
//
// Buffers (static, in the object): kTxSlots half pages for frames on their
// way out (granted read-only, two per page), kRxBuffers whole pages posted
// on the RX ring (granted writable), reposted as soon as a frame is taken.
// Grant references: kRefBase and up (the first ones after Xen's reserved
// ones are left to the domain).
//
// Responses from the back-end are checked (ids in range and outstanding,
// lengths and offsets inside the page); anything else is counted as an
// error and ignored.
//
// Single-threaded, as domains are; not for use from event handlers.

#include <cstddef>
#include <cstdint>

#include <abi/netif.hpp>
#include <net/packet.hpp>
#include <ring/ring.hpp>
#include <rt/events.hpp>

namespace rt {



class Netfront {
public:
    static constexpr unsigned kTxSlots = 128;
    static constexpr unsigned kRxBuffers = 128;
    static constexpr uint32_t kRefBase = 16;

    using TxRing = ring::FrontRing<abi::NetifTxRequest, abi::NetifTxResponse>;
    using RxRing = ring::FrontRing<abi::NetifRxRequest, abi::NetifRxResponse>;

    // Connects vif `n`; false (error() says why) if the nodes are missing,
    // a hypercall fails, or the back-end is not Connected by `deadline`.
    bool connect(unsigned n, uint64_t deadline);
    bool connected() const { return connected_; }
    const char* error() const { return error_; }
    const net::Mac& mac() const { return mac_; }
    uint16_t backend_id() const { return backend_; }
    uint32_t port() const { return port_; }

    // Queues one frame (14..1514 bytes) for the back-end, waiting until
    // `deadline` for a free TX slot if all are in flight. False if the
    // frame is no frame, the deadline passed or the connection is broken.
    // With `more`, the back-end is not told yet (as Linux's xmit_more): the
    // next send without it, or push(), tells it about all of them.
    bool send(const void* frame, size_t len, uint64_t deadline, bool more = false);
    // Publishes the frames queued with `more` (notifying the back-end if it asked).
    void push();
    // Waits until every frame sent has been answered (or the deadline).
    bool flush(uint64_t deadline);
    // The next received frame into buf (at most cap bytes, the rest cut
    // off); its length, or 0 if none came by `deadline` (0: do not wait).
    size_t receive(void* buf, size_t cap, uint64_t deadline);
    // Writes state Closed (6): the back-end lets go of the rings.
    void close();

    struct Stats {
        uint64_t tx_frames, tx_errors, rx_frames, rx_errors, bad_responses;
    };
    const Stats& stats() const { return stats_; }

    // The raw rings and grants, for tests that misbehave on purpose.
    TxRing& tx_ring() { return tx_; }
    RxRing& rx_ring() { return rx_; }
    uint32_t tx_buffer_ref(unsigned slot) const { return kRefBase + 2 + slot / 2; }
    uint16_t tx_buffer_offset(unsigned slot) const { return uint16_t((slot % 2) * 2048); }
    uint8_t* tx_buffer(unsigned slot) { return tx_pages_[slot / 2] + (slot % 2) * 2048; }
    void notify_backend();
    uint32_t rx_buffer_ref(unsigned id) const { return kRefBase + 2 + kTxSlots / 2 + id; }
    abi::SringHeader* tx_shared() { return reinterpret_cast<abi::SringHeader*>(tx_ring_page_); }
    abi::SringHeader* rx_shared() { return reinterpret_cast<abi::SringHeader*>(rx_ring_page_); }
    const char* backend_path() const { return backend_path_; }
    // After the back-end closed the connection: takes the grants back,
    // says Initialising (1) and connects again with fresh rings.
    bool reconnect(uint64_t deadline);

private:
    bool fail(const char* why);
    void close_port();
    bool publish(const char* dir);
    void reap_tx();
    bool wait_event(uint64_t deadline);

    bool connected_ = false;
    unsigned vif_ = 0;
    const char* error_ = "";
    net::Mac mac_{};
    uint16_t backend_ = 0;
    uint32_t port_ = 0;
    char backend_path_[96] = {};
    TxRing tx_;
    RxRing rx_;
    uint16_t tx_free_[kTxSlots] = {};   // stack of free TX slots
    unsigned tx_nfree_ = 0;
    bool tx_busy_[kTxSlots] = {};
    Stats stats_{};

    alignas(4096) uint8_t tx_ring_page_[4096];
    alignas(4096) uint8_t rx_ring_page_[4096];
    alignas(4096) uint8_t tx_pages_[kTxSlots / 2][4096];
    alignas(4096) uint8_t rx_pages_[kRxBuffers][4096];
};

}  // namespace rt
