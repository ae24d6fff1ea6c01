// Fuzzer for libs/net: a frame of arbitrary bytes (the first byte picks the
// input port and a clock step for the switch). Under ASan, any read outside
// the frame is a crash; views returned must lie inside it; an echo reply
// built over the frame (as rt::Ipv4Stack does) must parse back with the
// same payload.

#include <net/packet.hpp>
#include <net/switch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace net;

LearningSwitch g_switch(1000);
uint64_t g_now;

void require(bool ok) {
    if (!ok) std::abort();
}

bool inside(const uint8_t* p, size_t n, const uint8_t* base, size_t len) {
    return p >= base && n <= len && size_t(p - base) <= len - n;
}

void echo_icmp(const uint8_t* f, size_t n, const EthFrame& e, const Ipv4& ip, const Icmp& icmp) {
    // Built over a copy of the frame, like the stack's reply.
    std::vector<uint8_t> buf(kMaxFrameLen + 2);
    std::memcpy(buf.data(), f, n);
    const uint8_t* data = buf.data() + (icmp.data - f);
    std::vector<uint8_t> want(icmp.data, icmp.data + icmp.len);
    size_t m = build_icmp_echo(buf.data(), kMaxFrameLen, e.src, e.dst, ip.dst, ip.src, 1, kIcmpEchoReply, icmp.id,
                               icmp.seq, data, icmp.len);
    if (m == 0) return;   // too big to answer
    EthFrame e2;
    Ipv4 ip2;
    Icmp icmp2;
    require(parse_eth(buf.data(), m, e2) && parse_ipv4(e2.payload, e2.len, ip2) &&
            parse_icmp(ip2.payload, ip2.len, icmp2));
    require(icmp2.len == want.size() && (want.empty() || std::memcmp(icmp2.data, want.data(), want.size()) == 0));
}

void echo_udp(const uint8_t* f, size_t n, const EthFrame& e, const Ipv4& ip, const Udp& u) {
    std::vector<uint8_t> buf(kMaxFrameLen + 2);
    std::memcpy(buf.data(), f, n);
    const uint8_t* data = buf.data() + (u.data - f);
    std::vector<uint8_t> want(u.data, u.data + u.len);
    size_t m = build_udp(buf.data(), kMaxFrameLen, e.src, e.dst, ip.dst, ip.src, 1, u.dport, u.sport, data, u.len);
    if (m == 0) return;
    EthFrame e2;
    Ipv4 ip2;
    Udp u2;
    require(parse_eth(buf.data(), m, e2) && parse_ipv4(e2.payload, e2.len, ip2) && parse_udp(ip2, u2));
    require(u2.len == want.size() && (want.empty() || std::memcmp(u2.data, want.data(), want.size()) == 0));
}

// Random bytes seldom carry right checksums: with bit 3 of the first byte
// the IPv4 header's, the ICMP message's and the UDP datagram's are made
// right (UDP's set to "none"), so the fuzzer reaches the layers above.
void fix_checksums(uint8_t* f, size_t n) {
    if (n < kEthHeaderLen + kIpv4HeaderLen || get16(f + 12) != kEtherTypeIpv4) return;
    uint8_t* h = f + kEthHeaderLen;
    size_t room = n - kEthHeaderLen;
    size_t ihl = size_t(h[0] & 0xF) * 4;
    if (ihl < kIpv4HeaderLen || ihl > room) return;
    put16(h + 10, 0);
    put16(h + 10, internet_checksum(h, ihl));
    size_t total = get16(h + 2);
    if (total < ihl || total > room) return;
    uint8_t* l4 = h + ihl;
    size_t len = total - ihl;
    if (h[9] == kIpProtoIcmp && len >= kIcmpHeaderLen) {
        put16(l4 + 2, 0);
        put16(l4 + 2, internet_checksum(l4, len));
    } else if (h[9] == kIpProtoUdp && len >= kUdpHeaderLen) {
        put16(l4 + 6, 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    unsigned port = data[0] & 7;
    bool fix = data[0] & 8;
    g_now += data[0] >> 4;
    // The frame in a buffer of its own size, so ASan sees any overread.
    std::vector<uint8_t> frame(data + 1, data + size);
    if (fix) fix_checksums(frame.data(), frame.size());
    const uint8_t* f = frame.data();
    size_t n = frame.size();

    Forward fw = g_switch.decide(f, n, port, g_now);
    require(fw.kind != Forward::unicast || fw.port != port);
    require(g_switch.size(g_now) <= LearningSwitch::kEntries);

    EthFrame e;
    if (!parse_eth(f, n, e)) return 0;
    require(inside(e.payload, e.len, f, n));
    if (e.type == kEtherTypeArp) {
        Arp a;
        if (parse_arp(e.payload, e.len, a)) {
            uint8_t out[kMinFrameLen];
            require(build_arp(out, sizeof out, a.sha, a) == kMinFrameLen);
            Arp b;
            EthFrame e2;
            require(parse_eth(out, sizeof out, e2) && parse_arp(e2.payload, e2.len, b));
            require(b.op == a.op && b.sha == a.sha && b.spa == a.spa && b.tha == a.tha && b.tpa == a.tpa);
        }
        return 0;
    }
    Ipv4 ip;
    if (e.type != kEtherTypeIpv4 || !parse_ipv4(e.payload, e.len, ip)) return 0;
    require(inside(ip.payload, ip.len, e.payload, e.len));
    if (ip.proto == kIpProtoIcmp) {
        Icmp icmp;
        if (parse_icmp(ip.payload, ip.len, icmp)) {
            require(inside(icmp.data, icmp.len, ip.payload, ip.len));
            echo_icmp(f, n, e, ip, icmp);
        }
    }
    Udp u;
    if (parse_udp(ip, u)) {
        require(inside(u.data, u.len, ip.payload, ip.len));
        echo_udp(f, n, e, ip, u);
    }
    return 0;
}
