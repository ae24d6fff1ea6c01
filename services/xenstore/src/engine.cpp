#include <xenstore/engine.hpp>

namespace xs {

using abi::XsType;

Engine::Engine(DomId privileged, Hooks hooks)
    : priv_(privileged), hooks_(hooks), tree_(blobs_), watches_(blobs_, doms_) {
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

bool Engine::is_introduced(DomId dom) const {
    const Domain* d = doms_.find(dom);
    return d && d->introduced;
}

const char* Engine::check_invariants() const {
    uint32_t nodes[kMaxDomains] = {};
    uint32_t records[kMaxTransactions] = {};
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
    for (size_t i = 0; i < Domains::size(); ++i) {
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
    return check_ledger();
}

// The ledger (domains.hpp) against what the store holds: recounted from the
// records, watches, events and transactions, per domain and in all.
const char* Engine::check_ledger() const {
    Amounts held[kMaxDomains] = {};
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
    for (size_t i = 0; i < Domains::size(); ++i) {
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
        if (shared[r] > shared_of(Res(r))) return "shared remainder overdrawn";
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
