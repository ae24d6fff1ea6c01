#pragma once
// Ethernet II, ARP (IPv4 over Ethernet), IPv4, ICMP echo and UDP: what
// netback's switch and the guests' small IPv4 stack read and write.
//
// Parsing never trusts the bytes: every length is checked against what is
// there before anything is read, and a view (pointer + length) into the
// caller's buffer is returned only for bytes inside it. Builders write a
// whole frame into a caller's buffer and return its length (0 if it does
// not fit), padding it to the Ethernet minimum of 60 bytes.
//
// Multi-byte fields are big-endian on the wire; the structs below hold host
// values. IPv4 addresses are host-order uint32_t (10.0.2.15 = 0x0A00020F).

#include <cstddef>
#include <cstdint>

namespace net {

struct Mac {
    uint8_t b[6];
    // Two loads a side, not a call (compared on every frame).
    bool operator==(const Mac& o) const {
        uint32_t x, y;
        uint16_t z, w;
        __builtin_memcpy(&x, b, 4);
        __builtin_memcpy(&y, o.b, 4);
        __builtin_memcpy(&z, b + 4, 2);
        __builtin_memcpy(&w, o.b + 4, 2);
        return x == y && z == w;
    }
    bool operator!=(const Mac& o) const { return !(*this == o); }
    // Group addresses (broadcast included) have the I/G bit set.
    bool is_multicast() const { return b[0] & 1; }
    bool is_broadcast() const { return (b[0] & b[1] & b[2] & b[3] & b[4] & b[5]) == 0xFF; }
    bool is_zero() const { return (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0; }
};
inline constexpr Mac kBroadcastMac{{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}};

// "00:16:3e:00:00:07" (exactly 17 characters, hex digits either case).
bool parse_mac(const char* s, size_t n, Mac& out);
// "10.0.2.15" (four decimal bytes, no leading zeros, nothing else).
bool parse_ipv4_addr(const char* s, size_t n, uint32_t& out);

inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
inline void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
inline void put32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kArpLen = 28;
inline constexpr size_t kIpv4HeaderLen = 20;   // without options (what we build)
inline constexpr size_t kIcmpHeaderLen = 8;
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kMinFrameLen = 60;     // Ethernet minimum without FCS
inline constexpr size_t kMaxFrameLen = 1514;   // 1500 bytes of payload, no FCS
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr size_t kTcpMinHeaderLen = 20;
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

// The Internet checksum (RFC 1071): a running one's-complement sum of
// 16-bit big-endian words (an odd last byte padded with zero), folded and
// complemented at the end. Sums may be chained: the running sum of a
// region that starts at an odd offset is not what this computes, so chain
// only even-length parts (all our headers are).
uint32_t checksum_add(uint32_t sum, const uint8_t* p, size_t n);
uint16_t checksum_fold(uint32_t sum);
inline uint16_t internet_checksum(const uint8_t* p, size_t n) { return checksum_fold(checksum_add(0, p, n)); }

struct EthFrame {
    Mac dst, src;
    uint16_t type;
    const uint8_t* payload;
    size_t len;   // of payload (padding included: upper layers use their own lengths)
};
// False for fewer than 14 bytes or more than kMaxFrameLen, or an 802.1Q or
// 802.3 length type (we speak Ethernet II without VLAN tags).
bool parse_eth(const uint8_t* f, size_t n, EthFrame& out);

struct Arp {
    uint16_t op;   // kArpRequest / kArpReply
    Mac sha;
    uint32_t spa;
    Mac tha;
    uint32_t tpa;
};
// Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4) with op 1 or 2.
bool parse_arp(const uint8_t* p, size_t n, Arp& out);
// Ethernet header (dst, a.sha as source) and the ARP packet.
size_t build_arp(uint8_t* frame, size_t cap, const Mac& dst, const Arp& a);

struct Ipv4 {
    uint32_t src, dst;
    uint8_t proto, ttl;
    uint16_t id;
    const uint8_t* payload;
    size_t len;   // from the header's total length, not the frame's
};
// Version 4, header length 20..60 within the packet, total length >= the
// header and <= n, a right header checksum, not a fragment (MF set or an
// offset: we do not reassemble).
bool parse_ipv4(const uint8_t* p, size_t n, Ipv4& out);

struct Icmp {
    uint8_t type, code;
    uint16_t id, seq;   // echo request/reply
    const uint8_t* data;
    size_t len;
};
// At least 8 bytes and a right checksum over all of them.
bool parse_icmp(const uint8_t* p, size_t n, Icmp& out);

struct Udp {
    uint16_t sport, dport;
    const uint8_t* data;
    size_t len;
};
// UDP in `ip`: length field between 8 and the IP payload, and the checksum
// (pseudo-header included) right unless it is 0 (none sent).
bool parse_udp(const Ipv4& ip, Udp& out);

// Checksum offload for a sender that left its transport checksum blank
// (netif's NETTXF_csum_blank, Linux's CHECKSUM_PARTIAL): computes the TCP
// or UDP checksum of the IPv4 packet in the Ethernet frame f[0..n) from
// scratch (pseudo-header included; whatever the sender left in the field
// is ignored) and writes it. A UDP sum of 0 goes out as 0xFFFF. False, and
// nothing written, unless the frame parses as IPv4 (right header checksum,
// not a fragment) carrying a whole TCP header (data offset inside the
// packet) or a UDP header whose length field fits the packet.
bool fill_l4_checksum(uint8_t* f, size_t n);

// Ethernet + IPv4 (TTL 64, DF clear, id `ip_id`) + ICMP echo (type
// kIcmpEchoRequest or kIcmpEchoReply) carrying n bytes of data.
size_t build_icmp_echo(uint8_t* frame, size_t cap, const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip,
                       uint16_t ip_id, uint8_t type, uint16_t id, uint16_t seq, const uint8_t* data, size_t n);
// Ethernet + IPv4 + UDP (with its checksum) carrying n bytes of data.
size_t build_udp(uint8_t* frame, size_t cap, const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip,
                 uint16_t ip_id, uint16_t sport, uint16_t dport, const uint8_t* data, size_t n);

}  // namespace net
