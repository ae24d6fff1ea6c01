// libs/net packet formats: checksums against known vectors, build/parse
// round trips, malformed packets refused.

#include <net/packet.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

using namespace net;

const Mac kA{{0x00, 0x16, 0x3e, 0x00, 0x00, 0x07}};
const Mac kB{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
constexpr uint32_t kIpA = 0x0A00020F, kIpB = 0x0A000202;

TEST(Checksum, Rfc1071Example) {
    // RFC 1071 section 3: the sum of these words is 0x2ddf0, folded 0xddf2.
    const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(checksum_fold(checksum_add(0, d, sizeof d)), uint16_t(~0xddf2));
}

TEST(Checksum, KnownIpv4Header) {
    // A captured header whose checksum field is 0xb861.
    uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(internet_checksum(h, sizeof h), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    EXPECT_EQ(internet_checksum(h, sizeof h), 0);
}

TEST(Checksum, OddLengthPadsWithZero) {
    const uint8_t d[] = {0x12, 0x34, 0x56};
    EXPECT_EQ(internet_checksum(d, 3), uint16_t(~(0x1234 + 0x5600)));
}

TEST(Checksum, ChainedEqualsWhole) {
    uint8_t d[64];
    for (unsigned i = 0; i < sizeof d; ++i) d[i] = uint8_t(i * 37 + 1);
    EXPECT_EQ(checksum_fold(checksum_add(checksum_add(0, d, 20), d + 20, 44)), internet_checksum(d, 64));
}

TEST(Text, Mac) {
    Mac m;
    ASSERT_TRUE(parse_mac("00:16:3E:00:00:07", 17, m));
    EXPECT_EQ(m, kA);
    EXPECT_FALSE(parse_mac("00:16:3e:00:00:0", 16, m));
    EXPECT_FALSE(parse_mac("00-16-3e-00-00-07", 17, m));
    EXPECT_FALSE(parse_mac("00:16:3g:00:00:07", 17, m));
}

TEST(Text, Ipv4Address) {
    uint32_t a;
    ASSERT_TRUE(parse_ipv4_addr("10.0.2.15", 9, a));
    EXPECT_EQ(a, kIpA);
    ASSERT_TRUE(parse_ipv4_addr("255.255.255.255", 15, a));
    EXPECT_EQ(a, 0xFFFFFFFFu);
    for (const char* bad : {"10.0.2", "10.0.2.256", "10.0.2.015", "10..2.15", "10.0.2.15.", "a.b.c.d", "1234.0.0.1", ""})
        EXPECT_FALSE(parse_ipv4_addr(bad, std::strlen(bad), a)) << bad;
}

TEST(Arp, RoundTrip) {
    uint8_t f[kMaxFrameLen];
    Arp a{kArpRequest, kA, kIpA, Mac{}, kIpB};
    size_t n = build_arp(f, sizeof f, kBroadcastMac, a);
    ASSERT_EQ(n, kMinFrameLen);
    EthFrame e;
    ASSERT_TRUE(parse_eth(f, n, e));
    EXPECT_TRUE(e.dst.is_broadcast());
    EXPECT_EQ(e.src, kA);
    EXPECT_EQ(e.type, kEtherTypeArp);
    Arp b;
    ASSERT_TRUE(parse_arp(e.payload, e.len, b));
    EXPECT_EQ(b.op, kArpRequest);
    EXPECT_EQ(b.sha, kA);
    EXPECT_EQ(b.spa, kIpA);
    EXPECT_EQ(b.tpa, kIpB);
    EXPECT_EQ(build_arp(f, kMinFrameLen - 1, kBroadcastMac, a), 0u);
}

TEST(Arp, Malformed) {
    uint8_t f[kMaxFrameLen];
    size_t n = build_arp(f, sizeof f, kBroadcastMac, Arp{kArpReply, kA, kIpA, kB, kIpB});
    Arp a;
    uint8_t* p = f + kEthHeaderLen;
    EXPECT_FALSE(parse_arp(p, kArpLen - 1, a));
    p[4] = 8;   // hardware address length
    EXPECT_FALSE(parse_arp(p, n - kEthHeaderLen, a));
    p[4] = 6;
    p[7] = 3;   // op
    EXPECT_FALSE(parse_arp(p, n - kEthHeaderLen, a));
}

TEST(Eth, Malformed) {
    uint8_t f[kMaxFrameLen + 1] = {};
    EthFrame e;
    f[12] = 0x08;
    EXPECT_FALSE(parse_eth(f, 13, e));
    EXPECT_TRUE(parse_eth(f, 14, e));
    EXPECT_FALSE(parse_eth(f, kMaxFrameLen + 1, e));
    f[12] = 0x05;   // an 802.3 length
    EXPECT_FALSE(parse_eth(f, 60, e));
    f[12] = 0x81;   // a VLAN tag
    f[13] = 0x00;
    EXPECT_FALSE(parse_eth(f, 60, e));
}

TEST(Icmp, EchoRoundTrip) {
    uint8_t f[kMaxFrameLen];
    uint8_t data[56];
    for (unsigned i = 0; i < sizeof data; ++i) data[i] = uint8_t(i);
    size_t n = build_icmp_echo(f, sizeof f, kB, kA, kIpA, kIpB, 7, kIcmpEchoRequest, 0x4d54, 3, data, sizeof data);
    ASSERT_EQ(n, kEthHeaderLen + kIpv4HeaderLen + kIcmpHeaderLen + sizeof data);
    EthFrame e;
    Ipv4 ip;
    Icmp icmp;
    ASSERT_TRUE(parse_eth(f, n, e));
    ASSERT_TRUE(parse_ipv4(e.payload, e.len, ip));
    EXPECT_EQ(ip.src, kIpA);
    EXPECT_EQ(ip.dst, kIpB);
    EXPECT_EQ(ip.proto, kIpProtoIcmp);
    EXPECT_EQ(ip.ttl, 64);
    ASSERT_TRUE(parse_icmp(ip.payload, ip.len, icmp));
    EXPECT_EQ(icmp.type, kIcmpEchoRequest);
    EXPECT_EQ(icmp.id, 0x4d54);
    EXPECT_EQ(icmp.seq, 3);
    ASSERT_EQ(icmp.len, sizeof data);
    EXPECT_EQ(std::memcmp(icmp.data, data, sizeof data), 0);

    // The reply built over the request, as the stack does.
    size_t m = build_icmp_echo(f, sizeof f, kA, kB, kIpB, kIpA, 8, kIcmpEchoReply, icmp.id, icmp.seq, icmp.data,
                               icmp.len);
    ASSERT_TRUE(parse_eth(f, m, e) && parse_ipv4(e.payload, e.len, ip) && parse_icmp(ip.payload, ip.len, icmp));
    EXPECT_EQ(icmp.type, kIcmpEchoReply);
    EXPECT_EQ(std::memcmp(icmp.data, data, sizeof data), 0);
}

TEST(Icmp, SmallIsPaddedAndStillParses) {
    uint8_t f[kMaxFrameLen];
    size_t n = build_icmp_echo(f, sizeof f, kB, kA, kIpA, kIpB, 1, kIcmpEchoRequest, 1, 1, nullptr, 0);
    EXPECT_EQ(n, kMinFrameLen);
    EthFrame e;
    Ipv4 ip;
    Icmp icmp;
    ASSERT_TRUE(parse_eth(f, n, e) && parse_ipv4(e.payload, e.len, ip));
    EXPECT_EQ(ip.len, kIcmpHeaderLen);   // the padding is not the packet's
    ASSERT_TRUE(parse_icmp(ip.payload, ip.len, icmp));
    EXPECT_EQ(icmp.len, 0u);
}

TEST(Ipv4, Malformed) {
    uint8_t f[kMaxFrameLen];
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t n = build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 1, 1000, 7, data, sizeof data);
    uint8_t* h = f + kEthHeaderLen;
    size_t len = n - kEthHeaderLen;
    Ipv4 ip;
    ASSERT_TRUE(parse_ipv4(h, len, ip));
    auto broken = [&](auto change) {
        std::vector<uint8_t> c(h, h + len);
        change(c.data());
        return !parse_ipv4(c.data(), c.size(), ip);
    };
    EXPECT_TRUE(broken([](uint8_t* p) { p[0] = 0x65; }));                 // version 6
    EXPECT_TRUE(broken([](uint8_t* p) { p[0] = 0x44; }));                 // header of 16 bytes
    EXPECT_TRUE(broken([](uint8_t* p) { p[0] = 0x4F; }));                 // header longer than the packet... or bad sum
    EXPECT_TRUE(broken([](uint8_t* p) { put16(p + 2, 1500); }));          // longer than what is there
    EXPECT_TRUE(broken([](uint8_t* p) { put16(p + 2, 19); }));            // shorter than its header
    EXPECT_TRUE(broken([](uint8_t* p) { p[12] ^= 1; }));                  // checksum
    EXPECT_TRUE(broken([](uint8_t* p) {                                    // a fragment (MF), checksum fixed
        put16(p + 6, 0x2000);
        put16(p + 10, 0);
        put16(p + 10, internet_checksum(p, 20));
    }));
    EXPECT_TRUE(broken([](uint8_t* p) {                                    // a later fragment
        put16(p + 6, 0x0010);
        put16(p + 10, 0);
        put16(p + 10, internet_checksum(p, 20));
    }));
    EXPECT_FALSE(parse_ipv4(h, 19, ip));
}

TEST(Udp, RoundTripAndChecks) {
    uint8_t f[kMaxFrameLen];
    uint8_t data[100];
    for (unsigned i = 0; i < sizeof data; ++i) data[i] = uint8_t(255 - i);
    size_t n = build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 1, 40000, 7, data, sizeof data);
    EthFrame e;
    Ipv4 ip;
    Udp u;
    ASSERT_TRUE(parse_eth(f, n, e) && parse_ipv4(e.payload, e.len, ip));
    ASSERT_TRUE(parse_udp(ip, u));
    EXPECT_EQ(u.sport, 40000);
    EXPECT_EQ(u.dport, 7);
    ASSERT_EQ(u.len, sizeof data);
    EXPECT_EQ(std::memcmp(u.data, data, sizeof data), 0);

    uint8_t* udp = f + kEthHeaderLen + kIpv4HeaderLen;
    udp[kUdpHeaderLen + 5] ^= 0x40;   // payload corrupted: checksum fails
    EXPECT_FALSE(parse_udp(ip, u));
    put16(udp + 6, 0);                // no checksum: accepted as it is
    EXPECT_TRUE(parse_udp(ip, u));
    put16(udp + 4, uint16_t(ip.len + 1));   // longer than the IP payload
    EXPECT_FALSE(parse_udp(ip, u));
    put16(udp + 4, 7);                      // shorter than its header
    EXPECT_FALSE(parse_udp(ip, u));
    Ipv4 not_udp = ip;
    not_udp.proto = kIpProtoIcmp;
    EXPECT_FALSE(parse_udp(not_udp, u));
}

TEST(Udp, EchoBuiltOverRequest) {
    uint8_t f[kMaxFrameLen];
    uint8_t data[300];
    for (unsigned i = 0; i < sizeof data; ++i) data[i] = uint8_t(i * 7);
    size_t n = build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 1, 40000, 7, data, sizeof data);
    EthFrame e;
    Ipv4 ip;
    Udp u;
    ASSERT_TRUE(parse_eth(f, n, e) && parse_ipv4(e.payload, e.len, ip) && parse_udp(ip, u));
    size_t m = build_udp(f, sizeof f, kA, kB, kIpB, kIpA, 2, u.dport, u.sport, u.data, u.len);
    ASSERT_EQ(m, n);
    ASSERT_TRUE(parse_eth(f, m, e) && parse_ipv4(e.payload, e.len, ip) && parse_udp(ip, u));
    EXPECT_EQ(u.sport, 7);
    EXPECT_EQ(u.dport, 40000);
    EXPECT_EQ(ip.dst, kIpA);
    EXPECT_EQ(std::memcmp(u.data, data, sizeof data), 0);
}

// The sum of a TCP/UDP segment with its pseudo-header: 0 when its checksum is right.
uint16_t l4_sum(const uint8_t* f, size_t n) {
    EthFrame e;
    Ipv4 ip;
    EXPECT_TRUE(parse_eth(f, n, e) && parse_ipv4(e.payload, e.len, ip));
    uint8_t ph[12];
    put32(ph, ip.src);
    put32(ph + 4, ip.dst);
    ph[8] = 0;
    ph[9] = ip.proto;
    put16(ph + 10, uint16_t(ip.len));
    return checksum_fold(checksum_add(checksum_add(0, ph, 12), ip.payload, ip.len));
}

// A frame as a sender using checksum offload hands it over: IPv4 header
// right, transport checksum field holding anything.
size_t blank_udp(uint8_t* f, size_t cap, size_t n_data) {
    std::vector<uint8_t> data(n_data);
    for (size_t i = 0; i < n_data; ++i) data[i] = uint8_t(i * 13 + 5);
    size_t n = build_udp(f, cap, kB, kA, kIpA, kIpB, 9, 5555, 40000, data.data(), n_data);
    put16(f + kEthHeaderLen + kIpv4HeaderLen + 6, 0xBEEF);   // a partial sum, or garbage
    return n;
}

// The same packet turned into a TCP segment (20-byte header + data).
size_t blank_tcp(uint8_t* f, size_t cap, size_t n_data) {
    size_t n = blank_udp(f, cap, n_data + kTcpMinHeaderLen - kUdpHeaderLen);
    uint8_t* iph = f + kEthHeaderLen;
    iph[9] = kIpProtoTcp;
    put16(iph + 10, 0);
    put16(iph + 10, internet_checksum(iph, kIpv4HeaderLen));
    uint8_t* tcp = iph + kIpv4HeaderLen;
    tcp[12] = 5 << 4;   // data offset: 5 words
    tcp[13] = 0x18;     // PSH ACK
    put16(tcp + 16, 0x1234);
    return n;
}

TEST(ChecksumOffload, UdpFilledFromScratch) {
    for (size_t len : {0u, 1u, 2u, 17u, 1000u, 1472u}) {
        uint8_t f[kMaxFrameLen];
        size_t n = blank_udp(f, sizeof f, len);
        ASSERT_NE(n, 0u);
        EXPECT_NE(l4_sum(f, n), 0) << len;
        ASSERT_TRUE(fill_l4_checksum(f, n)) << len;
        EXPECT_EQ(l4_sum(f, n), 0) << len;
        EthFrame e;
        Ipv4 ip;
        Udp u;
        ASSERT_TRUE(parse_eth(f, n, e) && parse_ipv4(e.payload, e.len, ip) && parse_udp(ip, u));
        EXPECT_EQ(u.len, len);
        EXPECT_NE(get16(f + kEthHeaderLen + kIpv4HeaderLen + 6), 0) << "0 would mean no checksum";
    }
}

TEST(ChecksumOffload, UdpZeroSumSentAsAllOnes) {
    // Search payloads until one sums to 0: it must go out as 0xFFFF.
    uint8_t f[kMaxFrameLen];
    bool seen = false;
    for (unsigned v = 0; v < 0x10000 && !seen; ++v) {
        uint8_t d[2] = {uint8_t(v >> 8), uint8_t(v)};
        size_t n = build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 9, 5555, 40000, d, 2);
        if (get16(f + kEthHeaderLen + kIpv4HeaderLen + 6) != 0xFFFF) continue;
        put16(f + kEthHeaderLen + kIpv4HeaderLen + 6, 0);
        ASSERT_TRUE(fill_l4_checksum(f, n));
        EXPECT_EQ(get16(f + kEthHeaderLen + kIpv4HeaderLen + 6), 0xFFFF);
        seen = true;
    }
    EXPECT_TRUE(seen);
}

TEST(ChecksumOffload, TcpFilledFromScratch) {
    for (size_t len : {0u, 1u, 100u, 1460u}) {
        uint8_t f[kMaxFrameLen];
        size_t n = blank_tcp(f, sizeof f, len);
        ASSERT_NE(n, 0u);
        ASSERT_TRUE(fill_l4_checksum(f, n)) << len;
        EXPECT_EQ(l4_sum(f, n), 0) << len;
    }
}

TEST(ChecksumOffload, HostileFramesRefusedUntouched) {
    uint8_t f[kMaxFrameLen], before[kMaxFrameLen];
    auto refused = [&](size_t n) {
        std::memcpy(before, f, n);
        bool ok = fill_l4_checksum(f, n);
        EXPECT_EQ(std::memcmp(before, f, n), 0);
        return !ok;
    };
    uint8_t* iph = f + kEthHeaderLen;
    uint8_t* l4 = iph + kIpv4HeaderLen;
    auto fix_ip = [&] {
        put16(iph + 10, 0);
        put16(iph + 10, internet_checksum(iph, kIpv4HeaderLen));
    };

    size_t n = blank_udp(f, sizeof f, 100);
    put16(l4 + 4, uint16_t(100 + kUdpHeaderLen + 1));   // UDP length past the IP payload
    EXPECT_TRUE(refused(n));
    put16(l4 + 4, 7);                                    // shorter than its header
    EXPECT_TRUE(refused(n));

    n = blank_udp(f, sizeof f, 100);
    iph[6] |= 0x20;                                      // a fragment: the rest is elsewhere
    fix_ip();
    EXPECT_TRUE(refused(n));

    n = blank_udp(f, sizeof f, 100);
    iph[11] ^= 1;                                        // a wrong IP header checksum
    EXPECT_TRUE(refused(n));

    n = blank_udp(f, sizeof f, 100);
    put16(iph + 2, uint16_t(n));                          // IP total length past the frame
    fix_ip();
    EXPECT_TRUE(refused(n));

    n = blank_udp(f, sizeof f, 100);
    iph[9] = kIpProtoIcmp;                               // no offload for anything else
    fix_ip();
    EXPECT_TRUE(refused(n));

    n = blank_tcp(f, sizeof f, 10);
    l4[12] = 15 << 4;                                    // data offset 60 bytes > 30 there
    EXPECT_TRUE(refused(n));
    l4[12] = 4 << 4;                                     // data offset under the minimum
    EXPECT_TRUE(refused(n));

    n = blank_tcp(f, sizeof f, 0);
    put16(iph + 2, uint16_t(kIpv4HeaderLen + 19));       // a TCP header cut short
    fix_ip();
    EXPECT_TRUE(refused(n));

    n = blank_udp(f, sizeof f, 100);
    put16(f + 12, 0x86DD);                               // IPv6: not offered
    EXPECT_TRUE(refused(n));
    EXPECT_TRUE(refused(10));                            // shorter than an Ethernet header
}

TEST(Build, TooBigRefused) {
    static uint8_t f[2 * kMaxFrameLen];
    static uint8_t data[kMaxFrameLen];
    EXPECT_EQ(build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 1, 1, 1, data, 1473), 0u);
    EXPECT_EQ(build_udp(f, sizeof f, kB, kA, kIpA, kIpB, 1, 1, 1, data, 1472), kMaxFrameLen);
    EXPECT_EQ(build_icmp_echo(f, sizeof f, kB, kA, kIpA, kIpB, 1, 8, 1, 1, data, 1473), 0u);
    EXPECT_EQ(build_udp(f, 100, kB, kA, kIpA, kIpB, 1, 1, 1, data, 200), 0u);
}

}  // namespace
