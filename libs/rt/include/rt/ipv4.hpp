#pragma once
// Enough IPv4 for the demo guests, over one netfront: a static address,
// ARP (answers requests for our address, resolves others through a small
// cache), ICMP echo (answers pings, sends them and counts replies) and a
// UDP echo service (each datagram to the port goes back to its sender byte
// for byte). Everything else that arrives is counted and dropped (or handed
// to a raw hook, for benchmarks).
//
// Nothing runs in the background: received frames are handled inside
// poll(), and inside ping()/resolve() while they wait.

#include <cstddef>
#include <cstdint>

#include <net/packet.hpp>
#include <rt/netfront.hpp>

namespace rt {

// "key=10.0.2.15" on the command line; false if missing or not an address.
bool cmdline_ipv4(const char* key, uint32_t& out);

class Ipv4Stack {
public:
    static constexpr unsigned kArpEntries = 8;

    void init(Netfront& nf, uint32_t addr) {
        nf_ = &nf;
        addr_ = addr;
    }
    uint32_t addr() const { return addr_; }

    // Serves UDP echo on `port` (0: off). Datagrams whose payload is exactly
    // `marker` (if given) are echoed too and counted in stats().udp_markers.
    void set_udp_echo(uint16_t port, const char* marker = nullptr) {
        udp_echo_port_ = port;
        udp_marker_ = marker;
    }
    // Called with every UDP datagram to us on `port` that is not the echo
    // port (checksum and lengths checked; views into the frame, valid
    // during the call). nullptr: off.
    using UdpHook = void (*)(const net::Ipv4& ip, const net::Udp& udp, void* ctx);
    void set_udp_hook(uint16_t port, UdpHook hook, void* ctx) {
        udp_hook_port_ = port;
        udp_hook_ = hook;
        udp_ctx_ = ctx;
    }
    // Called with every received frame the stack does not handle itself.
    void set_raw_hook(void (*hook)(const uint8_t* frame, size_t len, void* ctx), void* ctx) {
        raw_hook_ = hook;
        raw_ctx_ = ctx;
    }

    // Handles one received frame; false if none came by `deadline` (0: do not wait).
    bool poll(uint64_t deadline);
    // Asks who has `ip` (broadcast ARP request); the answer lands in the cache.
    bool send_arp_request(uint32_t ip);
    // The MAC of `ip` on our link, asking again every `retry_ns`; false by the deadline.
    bool resolve(uint32_t ip, net::Mac& out, uint64_t deadline, uint64_t retry_ns = 200'000'000);
    // Sends `count` echo requests to `ip`, one at a time, each waiting up to
    // `wait_ns` for its reply; the number of replies received.
    unsigned ping(uint32_t ip, unsigned count, uint64_t wait_ns);
    bool send_udp(uint32_t dst, const net::Mac& dst_mac, uint16_t sport, uint16_t dport, const void* data, size_t n);
    // The cached MAC of `ip`, if any.
    bool arp_lookup(uint32_t ip, net::Mac& out) const;

    struct Stats {
        uint64_t arp_requests_answered, arp_replies_learned, echo_requests_answered, echo_replies_received,
            udp_echoed, udp_markers, dropped;
    };
    const Stats& stats() const { return stats_; }

private:
    void handle(uint8_t* frame, size_t len);
    void handle_arp(const net::Arp& a);
    void handle_ipv4(uint8_t* frame, const net::EthFrame& eth, const net::Ipv4& ip);
    void learn(uint32_t ip, const net::Mac& mac);
    bool send(const uint8_t* frame, size_t len);

    struct ArpEntry {
        uint32_t ip;
        net::Mac mac;
        bool used;
    };
    Netfront* nf_ = nullptr;
    uint32_t addr_ = 0;
    uint16_t udp_echo_port_ = 0;
    const char* udp_marker_ = nullptr;
    uint16_t ip_id_ = 1;
    uint16_t ping_id_ = 0x4d54;   // "MT"
    ArpEntry arp_[kArpEntries] = {};
    unsigned arp_next_ = 0;
    // The reply ping() waits for.
    uint16_t want_seq_ = 0;
    uint32_t want_from_ = 0;
    bool got_reply_ = false;
    void (*raw_hook_)(const uint8_t*, size_t, void*) = nullptr;
    UdpHook udp_hook_ = nullptr;
    void* udp_ctx_ = nullptr;
    uint16_t udp_hook_port_ = 0;
    void* raw_ctx_ = nullptr;
    Stats stats_{};
    uint8_t frame_[net::kMaxFrameLen + 2] = {};
    uint8_t out_[net::kMaxFrameLen + 2] = {};
};

}  // namespace rt
