#include <net/packet.hpp>

namespace net {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void put_mac(uint8_t* p, const Mac& m) { __builtin_memcpy(p, m.b, 6); }
Mac get_mac(const uint8_t* p) {
    Mac m;
    __builtin_memcpy(m.b, p, 6);
    return m;
}

void zero(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = 0;
}

size_t padded(size_t n) { return n < kMinFrameLen ? kMinFrameLen : n; }

void write_eth(uint8_t* f, const Mac& dst, const Mac& src, uint16_t type) {
    put_mac(f, dst);
    put_mac(f + 6, src);
    put16(f + 12, type);
}

// A 20-byte IPv4 header for `l4len` bytes of payload, with its checksum.
void write_ipv4(uint8_t* h, uint32_t sip, uint32_t dip, uint8_t proto, uint16_t id, size_t l4len) {
    h[0] = 0x45;
    h[1] = 0;
    put16(h + 2, uint16_t(kIpv4HeaderLen + l4len));
    put16(h + 4, id);
    put16(h + 6, 0);
    h[8] = 64;
    h[9] = proto;
    put16(h + 10, 0);
    put32(h + 12, sip);
    put32(h + 16, dip);
    put16(h + 10, internet_checksum(h, kIpv4HeaderLen));
}

uint32_t pseudo_header_sum(uint32_t sip, uint32_t dip, uint8_t proto, size_t len) {
    uint8_t ph[12];
    put32(ph, sip);
    put32(ph + 4, dip);
    ph[8] = 0;
    ph[9] = proto;
    put16(ph + 10, uint16_t(len));
    return checksum_add(0, ph, sizeof ph);
}

}  // namespace

bool parse_mac(const char* s, size_t n, Mac& out) {
    if (n != 17) return false;
    Mac m;
    for (unsigned i = 0; i < 6; ++i) {
        int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) return false;
        m.b[i] = uint8_t(hi << 4 | lo);
    }
    out = m;
    return true;
}

bool parse_ipv4_addr(const char* s, size_t n, uint32_t& out) {
    uint32_t addr = 0;
    size_t i = 0;
    for (unsigned part = 0; part < 4; ++part) {
        if (part > 0) {
            if (i >= n || s[i] != '.') return false;
            ++i;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3) v = v * 10 + unsigned(s[i++] - '0');
        size_t digits = i - start;
        if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) return false;
        addr = addr << 8 | v;
    }
    if (i != n) return false;
    out = addr;
    return true;
}

uint32_t checksum_add(uint32_t sum, const uint8_t* p, size_t n) {
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 1 < n; i += 2) s += uint32_t(p[i] << 8 | p[i + 1]);
    if (i < n) s += uint32_t(p[i] << 8);
    while (s >> 32) s = (s & 0xFFFFFFFFu) + (s >> 32);
    // Keep the running sum far from overflowing 32 bits for the next call.
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return uint32_t(s);
}

uint16_t checksum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return uint16_t(~sum);
}

bool parse_eth(const uint8_t* f, size_t n, EthFrame& out) {
    if (n < kEthHeaderLen || n > kMaxFrameLen) return false;
    uint16_t type = get16(f + 12);
    if (type < 0x0600 || type == 0x8100) return false;   // 802.3 length, or a VLAN tag
    out.dst = get_mac(f);
    out.src = get_mac(f + 6);
    out.type = type;
    out.payload = f + kEthHeaderLen;
    out.len = n - kEthHeaderLen;
    return true;
}

bool parse_arp(const uint8_t* p, size_t n, Arp& out) {
    if (n < kArpLen) return false;
    if (get16(p) != 1 || get16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4) return false;
    uint16_t op = get16(p + 6);
    if (op != kArpRequest && op != kArpReply) return false;
    out.op = op;
    out.sha = get_mac(p + 8);
    out.spa = get32(p + 14);
    out.tha = get_mac(p + 18);
    out.tpa = get32(p + 24);
    return true;
}

size_t build_arp(uint8_t* frame, size_t cap, const Mac& dst, const Arp& a) {
    size_t len = padded(kEthHeaderLen + kArpLen);
    if (cap < len) return 0;
    zero(frame, len);
    write_eth(frame, dst, a.sha, kEtherTypeArp);
    uint8_t* p = frame + kEthHeaderLen;
    put16(p, 1);
    put16(p + 2, kEtherTypeIpv4);
    p[4] = 6;
    p[5] = 4;
    put16(p + 6, a.op);
    put_mac(p + 8, a.sha);
    put32(p + 14, a.spa);
    put_mac(p + 18, a.tha);
    put32(p + 24, a.tpa);
    return len;
}

bool parse_ipv4(const uint8_t* p, size_t n, Ipv4& out) {
    if (n < kIpv4HeaderLen || (p[0] >> 4) != 4) return false;
    size_t ihl = size_t(p[0] & 0xF) * 4;
    size_t total = get16(p + 2);
    if (ihl < kIpv4HeaderLen || ihl > n || total < ihl || total > n) return false;
    uint16_t frag = get16(p + 6);
    if ((frag & 0x2000) || (frag & 0x1FFF)) return false;   // MF, or a fragment offset
    if (internet_checksum(p, ihl) != 0) return false;
    out.src = get32(p + 12);
    out.dst = get32(p + 16);
    out.proto = p[9];
    out.ttl = p[8];
    out.id = get16(p + 4);
    out.payload = p + ihl;
    out.len = total - ihl;
    return true;
}

bool parse_icmp(const uint8_t* p, size_t n, Icmp& out) {
    if (n < kIcmpHeaderLen || internet_checksum(p, n) != 0) return false;
    out.type = p[0];
    out.code = p[1];
    out.id = get16(p + 4);
    out.seq = get16(p + 6);
    out.data = p + kIcmpHeaderLen;
    out.len = n - kIcmpHeaderLen;
    return true;
}

bool parse_udp(const Ipv4& ip, Udp& out) {
    if (ip.proto != kIpProtoUdp || ip.len < kUdpHeaderLen) return false;
    const uint8_t* p = ip.payload;
    size_t len = get16(p + 4);
    if (len < kUdpHeaderLen || len > ip.len) return false;
    if (get16(p + 6) != 0) {
        uint32_t sum = pseudo_header_sum(ip.src, ip.dst, kIpProtoUdp, len);
        if (checksum_fold(checksum_add(sum, p, len)) != 0) return false;
    }
    out.sport = get16(p);
    out.dport = get16(p + 2);
    out.data = p + kUdpHeaderLen;
    out.len = len - kUdpHeaderLen;
    return true;
}

bool fill_l4_checksum(uint8_t* f, size_t n) {
    EthFrame eth;
    Ipv4 ip;
    if (!parse_eth(f, n, eth) || eth.type != kEtherTypeIpv4 || !parse_ipv4(eth.payload, eth.len, ip)) return false;
    // ip.payload points into f (parse_* return views of the caller's bytes).
    uint8_t* l4 = f + (ip.payload - f);
    size_t len = ip.len;
    size_t field;
    if (ip.proto == kIpProtoTcp) {
        if (len < kTcpMinHeaderLen || size_t(l4[12] >> 4) * 4 < kTcpMinHeaderLen || size_t(l4[12] >> 4) * 4 > len)
            return false;
        field = 16;
    } else if (ip.proto == kIpProtoUdp) {
        if (len < kUdpHeaderLen) return false;
        size_t ulen = get16(l4 + 4);
        if (ulen < kUdpHeaderLen || ulen > len) return false;
        len = ulen;
        field = 6;
    } else {
        return false;
    }
    put16(l4 + field, 0);
    uint16_t sum = checksum_fold(checksum_add(pseudo_header_sum(ip.src, ip.dst, ip.proto, len), l4, len));
    if (sum == 0 && ip.proto == kIpProtoUdp) sum = 0xFFFF;
    put16(l4 + field, sum);
    return true;
}

namespace {

// The Ethernet and IPv4 headers of a frame carrying `hdr` bytes of a
// transport header and then n bytes of data (which may lie inside frame:
// a reply built over its request, so it is moved first), padded to the
// minimum frame. The transport header's place, or nullptr if it does not
// fit; *total is the frame's length.
uint8_t* begin_ipv4_frame(uint8_t* frame, size_t cap, const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip,
                          uint8_t proto, uint16_t ip_id, size_t hdr, const uint8_t* data, size_t n, size_t* total) {
    size_t l4 = hdr + n;
    size_t raw = kEthHeaderLen + kIpv4HeaderLen + l4;
    if (raw > kMaxFrameLen || cap < padded(raw)) return nullptr;
    uint8_t* l4p = frame + kEthHeaderLen + kIpv4HeaderLen;
    if (n) __builtin_memmove(l4p + hdr, data, n);
    zero(frame, kEthHeaderLen + kIpv4HeaderLen + hdr);
    zero(frame + raw, padded(raw) - raw);
    write_eth(frame, dst, src, kEtherTypeIpv4);
    write_ipv4(frame + kEthHeaderLen, sip, dip, proto, ip_id, l4);
    *total = padded(raw);
    return l4p;
}

}  // namespace

size_t build_icmp_echo(uint8_t* frame, size_t cap, const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip,
                       uint16_t ip_id, uint8_t type, uint16_t id, uint16_t seq, const uint8_t* data, size_t n) {
    size_t total = 0;
    uint8_t* icmp = begin_ipv4_frame(frame, cap, dst, src, sip, dip, kIpProtoIcmp, ip_id, kIcmpHeaderLen, data, n, &total);
    if (!icmp) return 0;
    icmp[0] = type;
    icmp[1] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 4, id);
    put16(icmp + 6, seq);
    put16(icmp + 2, internet_checksum(icmp, kIcmpHeaderLen + n));
    return total;
}

size_t build_udp(uint8_t* frame, size_t cap, const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip,
                 uint16_t ip_id, uint16_t sport, uint16_t dport, const uint8_t* data, size_t n) {
    size_t total = 0;
    uint8_t* udp = begin_ipv4_frame(frame, cap, dst, src, sip, dip, kIpProtoUdp, ip_id, kUdpHeaderLen, data, n, &total);
    if (!udp) return 0;
    size_t l4 = kUdpHeaderLen + n;
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, uint16_t(l4));
    put16(udp + 6, 0);
    uint16_t sum = checksum_fold(checksum_add(pseudo_header_sum(sip, dip, kIpProtoUdp, l4), udp, l4));
    put16(udp + 6, sum == 0 ? 0xFFFF : sum);   // 0 means "no checksum"
    return total;
}

}  // namespace net
