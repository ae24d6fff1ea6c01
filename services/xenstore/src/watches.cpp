#include <xenstore/path.hpp>
#include <xenstore/watches.hpp>

namespace xs {

void Watches::reset() {
    for (auto& w : watches_) w.in_use = false;
    ev_free_ = kNil;
    ev_bump_ = 0;
    used_events_ = 0;
}

Result<size_t> Watches::add(Domain& d, const char* path, size_t pn, const char* token, size_t tn,
                    uint16_t strip) {
    Watch* slot = nullptr;
    for (auto& w : watches_) {
        if (!w.in_use) {
            if (!slot) slot = &w;
            continue;
        }
        if (w.dom == d.id && blobs_.equals(w.path, path, pn) && blobs_.equals(w.token, token, tn))
            return Err{Error::exist};
    }
    if (!slot) return Err{Error::nomem};
    if (BlobPool::blocks_for(pn) + BlobPool::blocks_for(tn) > blobs_.free_blocks())
        return Err{Error::nomem};
    slot->path = blobs_.store(path, pn).value();
    slot->token = blobs_.store(token, tn).value();
    slot->dom = d.id;
    slot->strip = strip;
    slot->in_use = true;
    d.watches++;
    return static_cast<size_t>(slot - watches_);
}

Status Watches::remove(Domain& d, const char* path, size_t pn, const char* token, size_t tn) {
    for (auto& w : watches_) {
        if (w.in_use && w.dom == d.id && blobs_.equals(w.path, path, pn) &&
            blobs_.equals(w.token, token, tn)) {
            blobs_.release(w.path);
            blobs_.release(w.token);
            w.in_use = false;
            d.watches--;
            return {};
        }
    }
    return Err{Error::noent};
}

void Watches::remove_all(Domain& d) {
    for (auto& w : watches_) {
        if (w.in_use && w.dom == d.id) {
            blobs_.release(w.path);
            blobs_.release(w.token);
            w.in_use = false;
        }
    }
    d.watches = 0;
}

void Watches::fire(const char* path, size_t pn, bool exact, const Perms& perms, DomId privileged) {
    char wp[kPathBuf];
    for (auto& w : watches_) {
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
    // Bounded: a domain that does not drain its events loses new ones
    // rather than exhausting the pool for everybody.
    if (d.ev_count >= kQuotaPendingEvents) return;
    uint32_t e;
    if (ev_free_ != kNil) {
        e = ev_free_;
        ev_free_ = events_[e].next;
    } else if (ev_bump_ < kMaxEvents) {
        e = ev_bump_++;
    } else {
        return;
    }
    char buf[kPathBuf + kPayloadMax + 2];
    size_t n = 0;
    for (size_t i = 0; i < pn; ++i) buf[n++] = path[i];
    buf[n++] = '\0';
    blobs_.read(token, buf + n);
    n += token.len;
    buf[n++] = '\0';
    auto r = blobs_.store(buf, n);
    if (!r || n > kPayloadMax) {
        if (r) blobs_.release(r.value());
        events_[e].next = ev_free_;
        ev_free_ = e;
        return;
    }
    events_[e].data = r.value();
    events_[e].next = kNil;
    if (d.ev_tail == kNil) d.ev_head = e;
    else events_[d.ev_tail].next = e;
    d.ev_tail = e;
    d.ev_count++;
    used_events_++;
}

bool Watches::pop_event(Domain& d, Reply& out) {
    if (d.ev_head == kNil) return false;
    uint32_t e = d.ev_head;
    d.ev_head = events_[e].next;
    if (d.ev_head == kNil) d.ev_tail = kNil;
    d.ev_count--;
    used_events_--;
    // Events carry no request id and no transaction.
    reply_begin(out, static_cast<uint32_t>(abi::XsType::watch_event), 0, 0);
    blobs_.read(events_[e].data, out.payload);
    out.hdr.len = events_[e].data.len;
    blobs_.release(events_[e].data);
    events_[e].next = ev_free_;
    ev_free_ = e;
    return true;
}

void Watches::drop_events(Domain& d) {
    while (d.ev_head != kNil) {
        uint32_t e = d.ev_head;
        d.ev_head = events_[e].next;
        blobs_.release(events_[e].data);
        events_[e].next = ev_free_;
        ev_free_ = e;
        used_events_--;
    }
    d.ev_tail = kNil;
    d.ev_count = 0;
}

}  // namespace xs
