#include <xenstore/path.hpp>
#include <xenstore/watches.hpp>

namespace xs {

void Watches::reset() {
    high_ = 0;
    ev_free_ = kNil;
    ev_bump_ = 0;
    used_events_ = 0;
}

Result<size_t> Watches::add(Domain& d, const char* path, size_t pn, const char* token, size_t tn,
                    uint16_t strip) {
    Watch* slot = nullptr;
    for (size_t i = 0; i < high_; ++i) {
        Watch& w = watches_[i];
        if (!w.in_use) {
            if (!slot) slot = &w;
            continue;
        }
        if (w.dom == d.id && blobs_.equals(w.path, path, pn) && blobs_.equals(w.token, token, tn))
            return Err{Error::exist};
    }
    Amounts need{};
    need[Res::watches] = 1;
    need[Res::blocks] = uint32_t(BlobPool::blocks_for(pn) + BlobPool::blocks_for(tn));
    TRY(doms_.can_take(d, need));
    if (!slot && high_ < kMaxWatches) slot = &watches_[high_];
    // The ledger keeps the pools from running dry; this cannot fail then.
    if (!slot || need[Res::blocks] > blobs_.free_blocks()) return Err{Error::nomem};
    if (slot == &watches_[high_]) high_++;
    slot->path = blobs_.store(path, pn).value();
    slot->token = blobs_.store(token, tn).value();
    slot->dom = d.id;
    slot->strip = strip;
    slot->in_use = true;
    doms_.take(d, need);
    return static_cast<size_t>(slot - watches_);
}

Status Watches::remove(Domain& d, const char* path, size_t pn, const char* token, size_t tn) {
    for (size_t i = 0; i < high_; ++i) {
        Watch& w = watches_[i];
        if (w.in_use && w.dom == d.id && blobs_.equals(w.path, path, pn) &&
            blobs_.equals(w.token, token, tn)) {
            drop(d, w);
            return {};
        }
    }
    return Err{Error::noent};
}

void Watches::drop(Domain& d, Watch& w) {
    Amounts held = cost(w);
    blobs_.release(w.path);
    blobs_.release(w.token);
    w.in_use = false;
    doms_.give(d, held);
}

void Watches::remove_all(Domain& d) {
    for (size_t i = 0; i < high_; ++i)
        if (watches_[i].in_use && watches_[i].dom == d.id) drop(d, watches_[i]);
}

Amounts Watches::cost(const Watch& w) {
    Amounts a{};
    a[Res::watches] = 1;
    a[Res::blocks] = uint32_t(BlobPool::blocks_for(w.path.len) + BlobPool::blocks_for(w.token.len));
    return a;
}

Amounts Watches::events_held_by(const Domain& d) const {
    Amounts a{};
    for (uint32_t e = d.ev_head; e != kNil; e = events_[e].next) {
        a[Res::events]++;
        a[Res::blocks] += uint32_t(BlobPool::blocks_for(events_[e].data.len));
    }
    return a;
}

void Watches::fire(const char* path, size_t pn, bool exact, const Perms& perms, DomId privileged) {
    char wp[kPathBuf];
    for (size_t i = 0; i < high_; ++i) {
        Watch& w = watches_[i];
        if (!w.in_use) continue;
        blobs_.read(w.path, wp);
        bool hit = exact || path[0] == '@' || wp[0] == '@' ? bytes_equal(path, pn, wp, w.path.len)
                                                         : is_self_or_below(path, pn, wp, w.path.len);
        if (!hit) continue;
        // Only watchers that may read the node hear about it.
        if (!(access(perms, w.dom, privileged) & kPermRead)) continue;
        queue_for(w, path, pn);
    }
}

void Watches::queue_for(const Watch& w, const char* path, size_t pn) {
    Domain* d = doms_.find(w.dom);
    if (!d) return;
    if (w.strip && pn > w.strip) {
        path += w.strip;
        pn -= w.strip;
    }
    push_event(*d, path, pn, w.token);
}

void Watches::push_event(Domain& d, const char* path, size_t pn, BlobRef token) {
    size_t n = pn + 1 + token.len + 1;
    if (n > kPayloadMax) return;  // cannot be sent
    // Bounded: a domain that does not drain its events loses new ones
    // rather than exhausting the pools for everybody.
    Amounts need{};
    need[Res::events] = 1;
    need[Res::blocks] = uint32_t(BlobPool::blocks_for(n));
    if (!doms_.can_take(d, need)) return;
    uint32_t e;
    if (ev_free_ != kNil) {
        e = ev_free_;
        ev_free_ = events_[e].next;
    } else if (ev_bump_ < kMaxEvents) {
        e = ev_bump_++;
    } else {
        return;  // the ledger keeps this from happening
    }
    char buf[kPathBuf + kPayloadMax + 2];
    n = 0;
    for (size_t i = 0; i < pn; ++i) buf[n++] = path[i];
    buf[n++] = '\0';
    blobs_.read(token, buf + n);
    n += token.len;
    buf[n++] = '\0';
    auto r = blobs_.store(buf, n);
    if (!r) {
        events_[e].next = ev_free_;
        ev_free_ = e;
        return;
    }
    events_[e].data = r.value();
    events_[e].next = kNil;
    if (d.ev_tail == kNil) d.ev_head = e;
    else events_[d.ev_tail].next = e;
    d.ev_tail = e;
    doms_.take(d, need);
    used_events_++;
}

void Watches::free_event(Domain& d, uint32_t e) {
    Amounts held{};
    held[Res::events] = 1;
    held[Res::blocks] = uint32_t(BlobPool::blocks_for(events_[e].data.len));
    blobs_.release(events_[e].data);
    events_[e].next = ev_free_;
    ev_free_ = e;
    used_events_--;
    doms_.give(d, held);
}

bool Watches::pop_event(Domain& d, Reply& out) {
    if (d.ev_head == kNil) return false;
    uint32_t e = d.ev_head;
    d.ev_head = events_[e].next;
    if (d.ev_head == kNil) d.ev_tail = kNil;
    // Events carry no request id and no transaction.
    reply_begin(out, static_cast<uint32_t>(abi::XsType::watch_event), 0, 0);
    blobs_.read(events_[e].data, out.payload);
    out.hdr.len = events_[e].data.len;
    free_event(d, e);
    return true;
}

void Watches::drop_events(Domain& d) {
    while (d.ev_head != kNil) {
        uint32_t e = d.ev_head;
        d.ev_head = events_[e].next;
        free_event(d, e);
    }
    d.ev_tail = kNil;
}

}  // namespace xs
