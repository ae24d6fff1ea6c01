#include <net/switch.hpp>

namespace net {

unsigned LearningSwitch::set_of_key(uint64_t key) {
    // Fold the 48 bits: guests' MACs differ mostly in their last bytes.
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return unsigned(h >> 59) % kSets;
}

unsigned LearningSwitch::set_of(const Mac& mac) { return set_of_key(key_of(mac)); }

void LearningSwitch::learn(uint64_t key, unsigned port, uint64_t now) {
    Entry* set = &table_[set_of_key(key) * kWays];
    Entry* slot = nullptr;
    for (unsigned i = 0; i < kWays; ++i)
        if (set[i].key == key) {
            slot = &set[i];   // known (live or aged): refreshed, perhaps moved to another port
            break;
        }
    if (!slot) {
        // A free or aged-out entry; if all are live, the least recently seen gives way.
        Entry* oldest = &set[0];
        for (unsigned i = 0; i < kWays; ++i) {
            if (!live(set[i], now)) {
                slot = &set[i];
                break;
            }
            if (set[i].seen < oldest->seen) oldest = &set[i];
        }
        if (!slot) slot = oldest;
    }
    *slot = Entry{key, now, port};
}

unsigned LearningSwitch::lookup_key(uint64_t key, uint64_t now) const {
    const Entry* set = &table_[set_of_key(key) * kWays];
    for (unsigned i = 0; i < kWays; ++i)
        if (set[i].key == key) return live(set[i], now) ? set[i].port : kNoPort;
    return kNoPort;
}

unsigned LearningSwitch::lookup(const Mac& mac, uint64_t now) const {
    uint64_t key = key_of(mac);
    return key ? lookup_key(key, now) : kNoPort;
}

void LearningSwitch::forget_port(unsigned port) {
    for (Entry& e : table_)
        if (e.key && e.port == port) e.key = 0;
}

unsigned LearningSwitch::size(uint64_t now) const {
    unsigned n = 0;
    for (const Entry& e : table_) n += live(e, now);
    return n;
}

Forward LearningSwitch::decide(const uint8_t* frame, size_t len, unsigned in_port, uint64_t now) {
    if (len < kEthHeaderLen) return Forward{Forward::drop, 0};
    Mac dst, src;
    __builtin_memcpy(dst.b, frame, 6);
    __builtin_memcpy(src.b, frame + 6, 6);
    uint64_t skey = key_of(src);
    if (!src.is_multicast() && skey) learn(skey, in_port, now);
    if (dst.is_multicast()) return Forward{Forward::flood, 0};
    uint64_t dkey = key_of(dst);
    unsigned port = dkey ? lookup_key(dkey, now) : kNoPort;
    if (port == kNoPort) return Forward{Forward::flood, 0};
    if (port == in_port) return Forward{Forward::drop, 0};
    return Forward{Forward::unicast, port};
}

}  // namespace net
