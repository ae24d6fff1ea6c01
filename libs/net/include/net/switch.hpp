#pragma once
// A learning Ethernet switch's forwarding table (IEEE 802.1D in miniature),
// for netback: port 0 is the NIC, ports 1.. the guests' vifs.
//
// For each frame: its source MAC (if unicast) is learned on the port it
// came in by; a unicast destination learned on another port goes there
// only; broadcast, multicast and unknown destinations are flooded to every
// port but the one the frame came in by; a destination learned on the
// incoming port itself is dropped (never back to its source).
//
// The table is bounded (static storage) and set-associative: kSets sets of
// kWays entries, a MAC's set chosen by a hash of it, so learning and lookup
// look at kWays entries, not the whole table. Entries age: one not seen as
// a source for max_age (the caller's clock, e.g. ns) is gone. Learning into
// a full set replaces its least recently seen entry, so a flood of made-up
// source addresses costs old entries (and some unicast frames then flood)
// but never memory or correctness. A port that goes away is forgotten at
// once (forget_port), so a restarted guest is learned anew.

#include <cstddef>
#include <cstdint>

#include <net/packet.hpp>

namespace net {

struct Forward {
    enum Kind : uint8_t { drop, unicast, flood } kind;
    unsigned port;   // for unicast
};

class LearningSwitch {
public:
    static constexpr unsigned kSets = 32, kWays = 8;
    static constexpr unsigned kEntries = kSets * kWays;
    static constexpr unsigned kNoPort = ~0u;

    constexpr explicit LearningSwitch(uint64_t max_age) : max_age_(max_age) {}

    // Learns the frame's source on in_port and says where the frame goes.
    // A frame too short for an Ethernet header is dropped.
    Forward decide(const uint8_t* frame, size_t len, unsigned in_port, uint64_t now);

    // The port `mac` was learned on, or kNoPort (unknown or aged out).
    unsigned lookup(const Mac& mac, uint64_t now) const;
    // Drops every entry learned on `port`.
    void forget_port(unsigned port);
    // Live entries (for stats and tests).
    unsigned size(uint64_t now) const;
    // The set a MAC belongs to (for tests).
    static unsigned set_of(const Mac& mac);

private:
    struct Entry {
        uint64_t key;    // the MAC as a number; 0: unused (the zero MAC is never learned)
        uint64_t seen;
        unsigned port;
    };
    static uint64_t key_of(const Mac& m) {
        return uint64_t(m.b[0]) << 40 | uint64_t(m.b[1]) << 32 | uint64_t(m.b[2]) << 24 | uint64_t(m.b[3]) << 16 |
               uint64_t(m.b[4]) << 8 | m.b[5];
    }
    static unsigned set_of_key(uint64_t key);
    bool live(const Entry& e, uint64_t now) const { return e.key && now - e.seen < max_age_; }
    void learn(uint64_t key, unsigned port, uint64_t now);
    unsigned lookup_key(uint64_t key, uint64_t now) const;

    uint64_t max_age_;
    Entry table_[kEntries] = {};
};

}  // namespace net
