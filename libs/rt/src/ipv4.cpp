// A small IPv4 stack over netfront (rt/ipv4.hpp).

#include <rt/ipv4.hpp>

#include <rt/rt.hpp>
#include <rt/time.hpp>

#include <base/number.hpp>

namespace rt {

bool cmdline_ipv4(const char* key, uint32_t& out) {
    const char* v;
    size_t n;
    return cmdline_value(key, &v, &n) && net::parse_ipv4_addr(v, n, out);
}

bool Ipv4Stack::send(const uint8_t* frame, size_t len) {
    return len && nf_->send(frame, len, now_ns() + 1'000'000'000);
}

bool Ipv4Stack::arp_lookup(uint32_t ip, net::Mac& out) const {
    for (const ArpEntry& e : arp_)
        if (e.used && e.ip == ip) {
            out = e.mac;
            return true;
        }
    return false;
}

void Ipv4Stack::learn(uint32_t ip, const net::Mac& mac) {
    if (mac.is_multicast() || mac.is_zero()) return;
    for (ArpEntry& e : arp_)
        if (e.used && e.ip == ip) {
            e.mac = mac;
            return;
        }
    // Round robin over a small cache: the oldest learned goes first.
    arp_[arp_next_] = ArpEntry{ip, mac, true};
    arp_next_ = (arp_next_ + 1) % kArpEntries;
}

bool Ipv4Stack::send_arp_request(uint32_t ip) {
    net::Arp a{net::kArpRequest, nf_->mac(), addr_, net::Mac{}, ip};
    return send(out_, net::build_arp(out_, sizeof out_, net::kBroadcastMac, a));
}

void Ipv4Stack::handle_arp(const net::Arp& a) {
    // As RFC 826: update a known sender; learn it if the request is for us.
    net::Mac known;
    bool for_us = a.tpa == addr_;
    if (for_us || arp_lookup(a.spa, known)) {
        learn(a.spa, a.sha);
        if (a.op == net::kArpReply) ++stats_.arp_replies_learned;
    }
    if (for_us && a.op == net::kArpRequest) {
        net::Arp r{net::kArpReply, nf_->mac(), addr_, a.sha, a.spa};
        if (send(out_, net::build_arp(out_, sizeof out_, a.sha, r))) ++stats_.arp_requests_answered;
    }
}

void Ipv4Stack::handle_ipv4(uint8_t* frame, const net::EthFrame& eth, const net::Ipv4& ip) {
    if (ip.dst != addr_) {
        ++stats_.dropped;
        return;
    }
    if (ip.proto == net::kIpProtoIcmp) {
        net::Icmp icmp;
        if (!net::parse_icmp(ip.payload, ip.len, icmp)) {
            ++stats_.dropped;
            return;
        }
        if (icmp.type == net::kIcmpEchoRequest && icmp.code == 0) {
            // The reply is built over the request (the data moves into place).
            size_t n = net::build_icmp_echo(frame, net::kMaxFrameLen, eth.src, nf_->mac(), addr_, ip.src, ip_id_++,
                                            net::kIcmpEchoReply, icmp.id, icmp.seq, icmp.data, icmp.len);
            if (send(frame, n)) ++stats_.echo_requests_answered;
        } else if (icmp.type == net::kIcmpEchoReply && icmp.id == ping_id_) {
            ++stats_.echo_replies_received;
            if (icmp.seq == want_seq_ && ip.src == want_from_) got_reply_ = true;
        }
        return;
    }
    net::Udp udp;
    if (ip.proto == net::kIpProtoUdp && udp_hook_ && net::parse_udp(ip, udp) && udp.dport == udp_hook_port_) {
        udp_hook_(ip, udp, udp_ctx_);
        return;
    }
    if (ip.proto == net::kIpProtoUdp && udp_echo_port_ && net::parse_udp(ip, udp) && udp.dport == udp_echo_port_) {
        bool marker = udp_marker_ && udp.len == __builtin_strlen(udp_marker_) &&
                      __builtin_memcmp(udp.data, udp_marker_, udp.len) == 0;
        // The marker counts once it came, whether or not its echo goes out.
        if (marker) ++stats_.udp_markers;
        size_t n = net::build_udp(frame, net::kMaxFrameLen, eth.src, nf_->mac(), addr_, ip.src, ip_id_++, udp.dport,
                                  udp.sport, udp.data, udp.len);
        if (send(frame, n) && !marker) ++stats_.udp_echoed;
        return;
    }
    ++stats_.dropped;
}

void Ipv4Stack::handle(uint8_t* frame, size_t len) {
    net::EthFrame eth;
    if (!net::parse_eth(frame, len, eth) || (eth.dst != nf_->mac() && !eth.dst.is_broadcast())) {
        if (raw_hook_) raw_hook_(frame, len, raw_ctx_);
        else ++stats_.dropped;
        return;
    }
    if (eth.type == net::kEtherTypeArp) {
        net::Arp a;
        if (net::parse_arp(eth.payload, eth.len, a)) handle_arp(a);
        else ++stats_.dropped;
        return;
    }
    net::Ipv4 ip;
    if (eth.type == net::kEtherTypeIpv4 && net::parse_ipv4(eth.payload, eth.len, ip)) {
        handle_ipv4(frame, eth, ip);
        return;
    }
    if (raw_hook_) raw_hook_(frame, len, raw_ctx_);
    else ++stats_.dropped;
}

bool Ipv4Stack::poll(uint64_t deadline) {
    size_t len = nf_->receive(frame_, sizeof frame_, deadline);
    if (!len) return false;
    handle(frame_, len);
    return true;
}

bool Ipv4Stack::resolve(uint32_t ip, net::Mac& out, uint64_t deadline, uint64_t retry_ns) {
    while (!arp_lookup(ip, out)) {
        uint64_t now = now_ns();
        if (now >= deadline) return false;
        (void)send_arp_request(ip);
        uint64_t until = now + retry_ns < deadline ? now + retry_ns : deadline;
        while (!arp_lookup(ip, out) && poll(until)) {
        }
    }
    return true;
}

unsigned Ipv4Stack::ping(uint32_t ip, unsigned count, uint64_t wait_ns) {
    net::Mac mac;
    if (!resolve(ip, mac, now_ns() + wait_ns * 4)) return 0;
    unsigned replies = 0;
    uint8_t data[56];
    for (unsigned i = 0; i < sizeof data; ++i) data[i] = uint8_t(i);
    for (unsigned seq = 1; seq <= count; ++seq) {
        want_seq_ = uint16_t(seq);
        want_from_ = ip;
        got_reply_ = false;
        size_t n = net::build_icmp_echo(out_, sizeof out_, mac, nf_->mac(), addr_, ip, ip_id_++,
                                        net::kIcmpEchoRequest, ping_id_, uint16_t(seq), data, sizeof data);
        if (!send(out_, n)) continue;
        uint64_t deadline = now_ns() + wait_ns;
        while (!got_reply_ && poll(deadline)) {
        }
        replies += got_reply_;
    }
    return replies;
}

bool Ipv4Stack::send_udp(uint32_t dst, const net::Mac& dst_mac, uint16_t sport, uint16_t dport, const void* data,
                         size_t n) {
    size_t len = net::build_udp(out_, sizeof out_, dst_mac, nf_->mac(), addr_, dst, ip_id_++, sport, dport,
                                static_cast<const uint8_t*>(data), n);
    return send(out_, len);
}

}  // namespace rt
