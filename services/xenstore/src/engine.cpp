#include <xenstore/engine.hpp>

namespace xs {

using abi::XsType;

void Engine::layout(Arena& a, const Sizing& s, Engine* into) {
    BlobPool::place(a, s.pool[Res::blocks], into ? &into->blobs_ : nullptr);
    Tree::place(a, s.pool[Res::records], into ? &into->tree_ : nullptr);
    Domains::place(a, s, into ? &into->doms_ : nullptr);
    Watches::place(a, s.pool[Res::watches], s.pool[Res::events], into ? &into->watches_ : nullptr);
    Transactions::place(a, s.pool[Res::transactions], into ? &into->txs_ : nullptr);
    uint32_t* nodes = a.take<uint32_t>(s.domains + 1u);
    Amounts* held = a.take<Amounts>(s.domains + 1u);
    uint32_t* records = a.take<uint32_t>(s.pool[Res::transactions]);
    uint32_t* scratch = a.take<uint32_t>(2 * size_t(s.pool[Res::records]));
    if (!into) return;
    into->scratch_ = scratch;
    into->check_nodes_ = nodes;
    into->check_held_ = held;
    into->check_records_ = records;
}

size_t Engine::arena_bytes(const Sizing& s) {
    Arena a(nullptr, 0);
    layout(a, s, nullptr);
    return a.used();
}

namespace {

// A sizing of `domains` domains with reserve r: the privileged domain's
// reserve as the standard one's (a base, and what the builder writes for
// each domain), and a shared remainder as large as the standard one's (and
// at least one quota's worth), so that what a few domains can take beyond
// their reserves does not depend on how many domains the store serves.
Sizing make_sizing(uint32_t domains, const Amounts& r) {
    Sizing s{};
    s.domains = domains;
    s.reserve = r;
    s.priv_reserve = {{16 + domains * kPrivRecordsPerDomain, 64 + domains * kPrivBlocksPerDomain, 32, 64, 4}};
    for (size_t i = 0; i < kResCount; ++i) {
        Res k = static_cast<Res>(i);
        uint32_t shared = kStandard.shared_of(k) > kQuota[k] - r[k] ? kStandard.shared_of(k) : kQuota[k] - r[k];
        s.pool.v[i] = s.priv_reserve.v[i] + domains * r.v[i] + shared;
    }
    return s;
}

}  // namespace

Sizing Engine::sizing_for(size_t bytes, uint32_t domains) {
    if (domains > kDomainSlotsMax) domains = kDomainSlotsMax;
    for (; domains > 0; domains = domains - 1 - domains / 16) {
        for (int k = 16; k >= 0; --k) {
            Amounts r;
            for (size_t i = 0; i < kResCount; ++i)
                r.v[i] = kMinReserve.v[i] + (kReserve.v[i] - kMinReserve.v[i]) * uint32_t(k) / 16;
            Sizing s = make_sizing(domains, r);
            if (!s.adds_up() || arena_bytes(s) > bytes) continue;
            // The rest of the arena: more shared records and bytes, one
            // record to three blocks, as the standard pools have them.
            size_t unit = 2 * sizeof(Node) + 3 * (kBlobBlockBytes + sizeof(uint32_t));
            for (size_t more = (bytes - arena_bytes(s)) / unit; more > 0; more /= 2) {
                Sizing g = s;
                uint64_t rec = g.pool[Res::records] + uint64_t(more), blk = g.pool[Res::blocks] + 3 * uint64_t(more);
                if (blk >= kNil / 2) break;
                g.pool[Res::records] = uint32_t(rec);
                g.pool[Res::blocks] = uint32_t(blk);
                if (g.adds_up() && arena_bytes(g) <= bytes) return g;
            }
            return s;
        }
    }
    Sizing none{};
    return none;
}

Engine::Engine(DomId privileged, Hooks hooks, const Sizing& sizing, void* arena, size_t bytes)
    : priv_(privileged), hooks_(hooks), tree_(blobs_), watches_(blobs_, doms_) {
    Arena a(arena, bytes);
    layout(a, sizing, this);
    blobs_.reset();
    doms_.reset(priv_);
    (void)doms_.get(priv_);  // an empty table always has room
    watches_.reset();
    txs_.reset();
    tree_.reset(priv_);
    pay(0);  // the root, the privileged domain's to hold
    special_perms_ = Perms::make(priv_, kPermNone);
}

void Engine::error_reply(const uint8_t* msg, size_t len, Error e, Reply& out) {
    auto h = peek_header(msg, len);
    reply_error(out, h.req_id, h.tx_id, e);
}

void Engine::handle(DomId caller, const uint8_t* msg, size_t len, Reply& out) {
    auto req = decode(msg, len);
    if (!req) return error_reply(msg, len, req.error(), out);
    const Request& r = req.value();
    Domain* d = doms_.find(caller);
    // Only introduced domains (and the builder) have a connection.
    if (caller != priv_ && (!d || !d->introduced)) return reply_error(out, r.req_id, r.tx_id, Error::acces);
    Ctx c{caller, caller == priv_, d, 0, 0, &r};
    Status s = dispatch(c, r, out);
    if (!s) reply_error(out, r.req_id, r.tx_id, s.error());
}

Status Engine::dispatch(Ctx& c, const Request& r, Reply& out) {
    switch (static_cast<XsType>(r.type)) {
    case XsType::read:
    case XsType::write:
    case XsType::mkdir:
    case XsType::rm:
    case XsType::directory:
    case XsType::get_perms:
    case XsType::set_perms:
        if (r.tx_id != 0) {
            auto slot = txs_.find(c.caller, r.tx_id);
            if (!slot) return Err{slot.error()};
            c.slot = slot.value();
            c.layer = Transactions::layer(c.slot);
        }
        break;
    default:
        break;
    }
    switch (static_cast<XsType>(r.type)) {
    case XsType::read: return op_read(c, r, out);
    case XsType::write: return op_write(c, r, out);
    case XsType::mkdir: return op_mkdir(c, r, out);
    case XsType::rm: return op_rm(c, r, out);
    case XsType::directory: return op_directory(c, r, out);
    case XsType::get_perms: return op_get_perms(c, r, out);
    case XsType::set_perms: return op_set_perms(c, r, out);
    case XsType::watch: return op_watch(c, r, out);
    case XsType::unwatch: return op_unwatch(c, r, out);
    case XsType::transaction_start: return op_tx_start(c, r, out);
    case XsType::transaction_end: return op_tx_end(c, r, out);
    case XsType::introduce: return op_introduce(c, r, out);
    case XsType::release: return op_release(c, r, out);
    case XsType::get_domain_path: return op_get_domain_path(c, r, out);
    case XsType::is_domain_introduced: return op_is_introduced(c, r, out);
    case XsType::reset_watches: return op_reset_watches(c, r, out);
    default: return Err{Error::nosys};
    }
}

Status Engine::begin_request(DomId dom) {
    auto d = doms_.get(dom);
    if (!d) return Err{d.error()};
    if (dom != priv_ && d.value()->outstanding >= kQuotaOutstanding) return Err{Error::quota};
    d.value()->outstanding++;
    return {};
}

void Engine::end_request(DomId dom) {
    Domain* d = doms_.find(dom);
    if (!d || d->outstanding == 0) return;
    d->outstanding--;
    doms_.maybe_drop(d);
}

bool Engine::next_event(DomId dom, Reply& out) {
    Domain* d = doms_.find(dom);
    if (!d || !watches_.pop_event(*d, out)) return false;
    doms_.maybe_drop(d);
    return true;
}

bool Engine::has_events(DomId dom) const {
    const Domain* d = doms_.find(dom);
    return d && d->ev_head != kNil;
}

bool Engine::is_introduced(DomId dom) const {
    const Domain* d = doms_.find(dom);
    return d && d->introduced;
}

const char* Engine::check_invariants() const {
    uint32_t* nodes = check_nodes_;
    uint32_t* records = check_records_;
    for (size_t i = 0; i < doms_.high(); ++i) nodes[i] = 0;
    for (size_t i = 0; i < txs_.high(); ++i) records[i] = 0;
    char p[kPathBuf];
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        const Node& x = tree_.at(static_cast<int32_t>(i));
        if (x.kind == Kind::free) continue;
        if (x.value.len > kPayloadMax) return "value larger than a payload";
        if (x.layer == 0 && x.kind != Kind::live) return "non-live record in the committed tree";
        if (x.layer != 0) {
            if (!txs_.at(x.layer - 1).in_use) return "record of a closed transaction";
            records[x.layer - 1]++;
        }
        if (x.charged != kNoDom) {
            if (x.kind != Kind::live) return "charged record not live";
            const Domain* d = doms_.find(x.charged);
            if (!d) return "charge to an untracked domain";
            nodes[d - doms_.at(0)]++;
        }
        size_t n = tree_.path_of(static_cast<int32_t>(i), p);
        // A transaction's view can lose a parent to someone else's change;
        // such a transaction must then fail to commit.
        if (x.kind == Kind::live && n > 1 && tree_.view(p, parent_len(p, n), x.layer) < 0 &&
            (x.layer == 0 || !tx_conflicts(x.layer - 1u)))
            return "node without a parent";
        if (x.layer == 0 && n > 1 && x.charged != x.perms.owner()) return "committed node charged to a non-owner";
        if (x.layer == 0 && n == 1 && x.charged != kNoDom) return "the root charged to a domain";
    }
    for (size_t i = 0; i < doms_.high(); ++i) {
        const Domain* d = doms_.at(i);
        if (!d->in_use) continue;
        if (d->nodes != nodes[i]) return "node count mismatch";
        if (d->id == priv_) continue;
        if (d->nodes > kQuotaNodes) return "node quota exceeded";
        if (d->outstanding > kQuotaOutstanding) return "outstanding quota exceeded";
    }
    for (size_t s = 0; s < txs_.high(); ++s) {
        const Transaction& t = txs_.at(s);
        if (!t.in_use) continue;
        if (t.records != records[s]) return "transaction record count mismatch";
        if (t.dom != priv_ && t.records > kQuotaTxRecords) return "transaction record quota exceeded";
        if (!doms_.find(t.dom)) return "transaction of an untracked domain";
    }
    if (const char* e = tree_.check_index()) return e;
    if (const char* e = watches_.check_index()) return e;
    if (const char* e = check_owned()) return e;
    return check_ledger();
}

// Every record charged to a domain is on that domain's list, and nothing else is.
const char* Engine::check_owned() const {
    size_t charged = 0, listed = 0;
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        const Node& x = tree_.at(static_cast<int32_t>(i));
        charged += x.kind != Kind::free && x.charged != kNoDom;
    }
    for (size_t k = 0; k < doms_.high(); ++k) {
        const Domain* d = doms_.at(k);
        if (!d->in_use) continue;
        uint32_t last = kNil;
        for (uint32_t i = d->owned_head; i != kNil; last = i, i = tree_.at(int32_t(i)).own_next) {
            const Node& x = tree_.at(int32_t(i));
            if (x.kind == Kind::free || x.charged != d->id) return "a domain lists a record not charged to it";
            if (x.own_prev != last) return "a broken back link in a domain's records";
            if (++listed > charged) return "a loop in a domain's records";
        }
    }
    return listed == charged ? nullptr : "charged records missing from their domains' lists";
}

// The ledger (domains.hpp) against what the store holds: recounted from the
// records, watches, events and transactions, per domain and in all.
const char* Engine::check_ledger() const {
    Amounts* held = check_held_;
    for (size_t i = 0; i < doms_.high(); ++i) held[i] = Amounts{};
    auto index = [&](DomId id) -> int {
        const Domain* d = doms_.find(id);
        return d ? int(d - doms_.at(0)) : -1;
    };
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        const Node& x = tree_.at(static_cast<int32_t>(i));
        if (x.kind == Kind::free) continue;
        DomId who = x.layer ? txs_.at(x.layer - 1u).dom : x.charged == kNoDom ? priv_ : x.charged;
        int k = index(who);
        if (k < 0) return "record paid by an untracked domain";
        Amounts c = cost(x);
        for (size_t r = 0; r < kResCount; ++r) held[k].v[r] += c.v[r];
    }
    for (size_t s = 0; s < txs_.high(); ++s)
        if (txs_.at(s).in_use) held[index(txs_.at(s).dom)][Res::transactions]++;
    size_t watches = 0;
    for (size_t i = 0; i < watches_.high(); ++i) {
        const Watch& w = watches_.at(i);
        if (!w.in_use) continue;
        int k = index(w.dom);
        if (k < 0) return "watch of an untracked domain";
        Amounts c = Watches::cost(w);
        for (size_t r = 0; r < kResCount; ++r) held[k].v[r] += c.v[r];
        watches++;
    }
    Amounts total{};
    uint32_t shared[kResCount] = {};
    for (size_t i = 0; i < doms_.high(); ++i) {
        const Domain* d = doms_.at(i);
        if (!d->in_use) continue;
        Amounts w = watches_.events_held_by(*d);
        bool idle = true;
        for (size_t r = 0; r < kResCount; ++r) {
            if (held[i].v[r] + w.v[r] != d->used.v[r]) return "ledger differs from what a domain holds";
            if (d->id != priv_ && d->used.v[r] > kQuota.v[r]) return "a quota exceeded";
            total.v[r] += d->used.v[r];
            shared[r] += doms_.excess(*d, Res(r));
            idle &= d->used.v[r] == 0;
        }
        if (idle && !d->introduced && d->id != priv_ && d->nodes == 0 && d->outstanding == 0)
            return "a record kept for nothing";
    }
    for (size_t r = 0; r < kResCount; ++r) {
        if (shared[r] != doms_.shared_used(Res(r))) return "shared use miscounted";
        if (shared[r] > doms_.shared_of(Res(r))) return "shared remainder overdrawn";
    }
    size_t txs = 0;
    for (size_t s = 0; s < txs_.high(); ++s) txs += txs_.at(s).in_use;
    if (total[Res::records] != tree_.used_nodes()) return "records in use differ from the ledger";
    if (total[Res::blocks] != blobs_.used_blocks()) return "byte-pool blocks in use differ from the ledger";
    if (total[Res::watches] != watches) return "watches in use differ from the ledger";
    if (total[Res::events] != watches_.queued_events()) return "queued events differ from the ledger";
    if (total[Res::transactions] != txs) return "transactions in use differ from the ledger";
    return nullptr;
}

}  // namespace xs
