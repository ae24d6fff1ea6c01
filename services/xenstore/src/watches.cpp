#include <xenstore/path.hpp>
#include <xenstore/watches.hpp>

namespace xs {

namespace {

constexpr char kIntroduceDomain[] = "@introduceDomain";
constexpr char kReleaseDomain[] = "@releaseDomain";

// One step of path_hash (FNV-1a): hashing a path byte by byte passes through
// the hash of each of its prefixes.
constexpr uint32_t kHashStart = 2166136261u;
uint32_t hash_step(uint32_t h, char c) { return (h ^ static_cast<uint8_t>(c)) * 16777619u; }

}  // namespace

void Watches::place(Arena& a, uint32_t watches, uint32_t events, Watches* into) {
    Watch* w = a.take<Watch>(watches);
    uint32_t buckets = pow2_at_least(watches);
    uint32_t* b = a.take<uint32_t>(buckets);
    Event* e = a.take<Event>(events);
    if (!into) return;
    into->watches_ = w;
    into->cap_ = watches;
    into->bucket_ = b;
    into->mask_ = buckets - 1;
    into->events_ = e;
    into->ev_cap_ = events;
}

void Watches::reset() {
    high_ = 0;
    free_ = kNil;
    for (uint32_t b = 0; b <= mask_; ++b) bucket_[b] = kNil;
    introduce_ = release_ = kNil;
    probes_ = 0;
    ev_free_ = kNil;
    ev_bump_ = 0;
    used_events_ = 0;
}

// Which special list a watch on path is on: 1 @introduceDomain, 2 @releaseDomain, 0 none (a bucket).
static int special_list(const char* path, size_t pn) {
    if (bytes_equal(path, pn, kIntroduceDomain, sizeof kIntroduceDomain - 1)) return 1;
    if (bytes_equal(path, pn, kReleaseDomain, sizeof kReleaseDomain - 1)) return 2;
    return 0;
}

uint32_t& Watches::chain(const char* path, size_t pn, uint32_t h) {
    switch (special_list(path, pn)) {
    case 1: return introduce_;
    case 2: return release_;
    default: return bucket_[h & mask_];
    }
}

Result<size_t> Watches::add(Domain& d, const char* path, size_t pn, const char* token, size_t tn,
                    uint16_t strip) {
    uint32_t h = path_hash(path, pn);
    uint32_t& head = chain(path, pn, h);
    for (uint32_t i = head; i != kNil; i = watches_[i].next) {
        const Watch& w = watches_[i];
        if (w.dom == d.id && w.hash == h && blobs_.equals(w.path, path, pn) && blobs_.equals(w.token, token, tn))
            return Err{Error::exist};
    }
    Amounts need{};
    need[Res::watches] = 1;
    need[Res::blocks] = uint32_t(BlobPool::blocks_for(pn) + BlobPool::blocks_for(tn));
    TRY(doms_.can_take(d, need));
    // The ledger keeps the pools from running dry; this cannot fail then.
    if ((free_ == kNil && high_ == cap_) || need[Res::blocks] > blobs_.free_blocks()) return Err{Error::nomem};
    uint32_t i;
    if (free_ != kNil) {
        i = free_;
        free_ = watches_[i].next;
    } else {
        i = static_cast<uint32_t>(high_++);
    }
    Watch* slot = &watches_[i];
    slot->path = blobs_.store(path, pn).value();
    slot->token = blobs_.store(token, tn).value();
    slot->dom = d.id;
    slot->strip = strip;
    slot->hash = h;
    slot->in_use = true;
    slot->next = head;
    head = i;
    slot->dom_prev = kNil;
    slot->dom_next = d.watch_head;
    if (d.watch_head != kNil) watches_[d.watch_head].dom_prev = i;
    d.watch_head = i;
    doms_.take(d, need);
    return static_cast<size_t>(i);
}

Status Watches::remove(Domain& d, const char* path, size_t pn, const char* token, size_t tn) {
    uint32_t h = path_hash(path, pn);
    for (uint32_t i = chain(path, pn, h); i != kNil; i = watches_[i].next) {
        Watch& w = watches_[i];
        if (w.dom == d.id && w.hash == h && blobs_.equals(w.path, path, pn) && blobs_.equals(w.token, token, tn)) {
            drop(d, w);
            return {};
        }
    }
    return Err{Error::noent};
}

void Watches::drop(Domain& d, Watch& w) {
    uint32_t i = static_cast<uint32_t>(&w - watches_);
    char wp[kPathBuf];
    blobs_.read(w.path, wp);
    uint32_t* link = &chain(wp, w.path.len, w.hash);
    while (*link != i) link = &watches_[*link].next;
    *link = w.next;
    if (w.dom_prev != kNil) watches_[w.dom_prev].dom_next = w.dom_next;
    else d.watch_head = w.dom_next;
    if (w.dom_next != kNil) watches_[w.dom_next].dom_prev = w.dom_prev;
    Amounts held = cost(w);
    blobs_.release(w.path);
    blobs_.release(w.token);
    w.in_use = false;
    w.next = free_;
    free_ = i;
    doms_.give(d, held);
}

void Watches::remove_all(Domain& d) {
    while (d.watch_head != kNil) drop(d, watches_[d.watch_head]);
}

// Walks, for every watch, the chain it must be on and its domain's list (the
// fuzzers call this after every message: it costs the watches, not the buckets).
const char* Watches::check_index() const {
    size_t in_use = 0;
    for (size_t i = 0; i < high_; ++i) in_use += watches_[i].in_use;
    for (uint32_t x = 0; x < high_; ++x) {
        const Watch& w = watches_[x];
        if (!w.in_use) continue;
        char wp[kPathBuf];
        blobs_.read(w.path, wp);
        if (w.hash != path_hash(wp, w.path.len)) return "a watch with the wrong hash";
        int special = special_list(wp, w.path.len);
        uint32_t head = special == 1 ? introduce_ : special == 2 ? release_ : bucket_[w.hash & mask_];
        bool found = false;
        size_t steps = 0;
        for (uint32_t i = head; i != kNil; i = watches_[i].next) {
            if (i >= high_ || !watches_[i].in_use) return "a free watch in the index";
            if (++steps > in_use) return "a loop in the watch index";
            found |= i == x;
        }
        if (!found) return "a watch missing from the index";
        const Domain* d = doms_.find(w.dom);
        if (!d) return "a watch of an untracked domain";
        found = false;
        steps = 0;
        for (uint32_t i = d->watch_head, last = kNil; i != kNil; last = i, i = watches_[i].dom_next) {
            if (!watches_[i].in_use || watches_[i].dom != d->id) return "a domain lists a watch not its own";
            if (watches_[i].dom_prev != last) return "a broken back link in a domain's watches";
            if (++steps > in_use) return "a loop in a domain's watches";
            found |= i == x;
        }
        if (!found) return "a watch missing from its domain's list";
    }
    return nullptr;
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

void Watches::fire_chain(uint32_t head, const char* path, size_t pn, uint32_t h, const char* event, size_t en,
                         const Perms& perms, DomId privileged) {
    for (uint32_t i = head; i != kNil;) {
        // The next one first: queue_for does not change the chains, but
        // say so where it would matter.
        const Watch& w = watches_[i];
        i = w.next;
        probes_++;
        if (w.hash != h || !blobs_.equals(w.path, path, pn)) continue;
        // Only watchers that may read the node hear about it.
        if (!(access(perms, w.dom, privileged) & kPermRead)) continue;
        queue_for(w, event, en);
    }
}

void Watches::fire(const char* path, size_t pn, bool exact, const Perms& perms, DomId privileged) {
    if (path[0] == '@' || exact) {
        uint32_t h = path_hash(path, pn);
        fire_chain(chain(path, pn, h), path, pn, h, path, pn, perms, privileged);
        return;
    }
    // Every ancestor of path at a component boundary, "/" first, then path.
    uint32_t h = kHashStart;
    for (size_t k = 1; k <= pn; ++k) {
        h = hash_step(h, path[k - 1]);
        if (k == 1 || k == pn || path[k] == '/')
            fire_chain(bucket_[h & mask_], path, k, h, path, pn, perms, privileged);
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
    } else if (ev_bump_ < ev_cap_) {
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
    if (queued_) queued_(queued_ctx_, d.id);
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
