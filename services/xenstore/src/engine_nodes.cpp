// Node operations (read, write, mkdir, rm, directory, get/set perms) and the
// transaction views they work in. Each operation checks everything it can,
// including quotas and the ledger (domains.hpp), before it changes the
// store. Records are paid for as tree.hpp says: pay() once a record is
// complete, unpay() before anything changes its cost or its payer, and
// before it is released.

#include <xenstore/engine.hpp>

namespace xs {

using abi::XsType;

Status Engine::parse_path(const Ctx& c, const char* s, size_t n, Path& p) const {
    return canonicalize(c.caller, s, n, false, !c.priv, p);
}

Amounts Engine::record_cost(size_t path_len, size_t value_len) {
    Amounts a{};
    a[Res::records] = 1;
    a[Res::blocks] = uint32_t(BlobPool::blocks_for(path_len) + BlobPool::blocks_for(value_len));
    return a;
}

Amounts Engine::cost(const Node& x) { return record_cost(x.path.len, x.value.len); }

Domain* Engine::payer(const Node& x) {
    if (x.layer != 0) return doms_.find(txs_.at(x.layer - 1u).dom);
    return doms_.find(x.charged == kNoDom ? priv_ : x.charged);
}

void Engine::pay(int32_t x) { doms_.take(*payer(tree_.at(x)), cost(tree_.at(x))); }
void Engine::unpay(int32_t x) { doms_.give(*payer(tree_.at(x)), cost(tree_.at(x))); }

Status Engine::tx_quota(const Ctx& c, size_t more) const {
    if (c.layer == 0 || c.priv) return {};
    if (txs_.at(c.slot).records + more > kQuotaTxRecords) return Err{Error::quota};
    return {};
}

// Remembers, in a transaction, the generation of a path it looks at, so that
// a change made meanwhile by someone else fails the commit.
Status Engine::note(Ctx& c, const char* p, size_t n) {
    if (c.layer == 0 || tree_.find(p, n, c.layer) >= 0) return {};
    TRY(tx_quota(c, 1));
    TRY(doms_.can_take(*c.dom, record_cost(n, 0)));
    auto r = tree_.alloc(p, n, c.layer, Kind::read);
    if (!r) return Err{r.error()};
    int32_t committed = tree_.find(p, n, 0);
    tree_.at(r.value()).gen = committed >= 0 ? tree_.at(committed).gen : 0;
    txs_.at(c.slot).records++;
    pay(r.value());
    return {};
}

// Xen's rule for a missing node: ENOENT only if the nearest existing ancestor
// grants the caller some of the requested access, else EACCES (the caller
// must not learn what it cannot see).
uint8_t Engine::nearest_access(const Ctx& c, const char* p, size_t n) const {
    while (n > 1) {
        n = parent_len(p, n);
        int32_t i = tree_.view(p, n, c.layer);
        if (i >= 0) return access(tree_.at(i).perms, c.caller, priv_);
    }
    return kPermNone;  // unreachable: "/" always exists
}

Result<int32_t> Engine::lookup(Ctx& c, const Path& p, uint8_t perm) {
    TRY(note(c, p.s, p.n));
    int32_t i = tree_.view(p.s, p.n, c.layer);
    if (i >= 0) {
        if ((access(tree_.at(i).perms, c.caller, priv_) & perm) != perm) return Err{Error::acces};
        return i;
    }
    return Err{(nearest_access(c, p.s, p.n) & perm) ? Error::noent : Error::acces};
}

Status Engine::can_hold(DomId dom, size_t k, const Amounts& need) const {
    const Domain* d = doms_.find(dom);
    Domain blank{};
    if (!d) {
        // A record (and with it a reserve) must be free for it.
        if (!doms_.has_room()) return Err{Error::nospc};
        blank.id = dom;
        d = &blank;
    }
    if (dom != priv_ && d->nodes + k > kQuotaNodes) return Err{Error::quota};
    return doms_.can_take(*d, need);
}

// Precondition: can_hold(dom, ...) succeeded, so dom has a record or one is free.
void Engine::charge(DomId dom, int32_t idx) {
    tree_.at(idx).charged = dom;
    if (dom == kNoDom) return;
    doms_.get(dom).value()->nodes++;
    link_owned(idx);
}

void Engine::uncharge(int32_t idx) {
    Node& x = tree_.at(idx);
    if (x.charged == kNoDom) return;
    unlink_owned(idx);
    Domain* d = doms_.find(x.charged);
    d->nodes--;
    x.charged = kNoDom;
    doms_.maybe_drop(d);
}

void Engine::link_owned(int32_t idx) {
    Node& x = tree_.at(idx);
    Domain* d = doms_.find(x.charged);
    x.own_prev = kNil;
    x.own_next = d->owned_head;
    if (d->owned_head != kNil) tree_.at(int32_t(d->owned_head)).own_prev = uint32_t(idx);
    d->owned_head = uint32_t(idx);
}

void Engine::unlink_owned(int32_t idx) {
    Node& x = tree_.at(idx);
    Domain* d = doms_.find(x.charged);
    if (x.own_prev != kNil) tree_.at(int32_t(x.own_prev)).own_next = x.own_next;
    else d->owned_head = x.own_next;
    if (x.own_next != kNil) tree_.at(int32_t(x.own_next)).own_prev = x.own_prev;
    x.own_prev = x.own_next = kNil;
}

size_t Engine::committed_subtree(const char* p, size_t n) {
    int32_t top = tree_.find(p, n, 0);
    if (top < 0) return 0;
    size_t head = 0, tail = 0;
    scratch_[tail++] = uint32_t(top);
    char q[kPathBuf];
    while (head < tail) {
        int32_t x = int32_t(scratch_[head++]);
        size_t qn = tree_.path_of(x, q);
        uint32_t h = tree_.at(x).hash;
        for (uint32_t k = tree_.children(h); k != kNil; k = tree_.next_child(k)) {
            const Node& y = tree_.at(int32_t(k));
            if (y.layer == 0 && tree_.is_child(int32_t(k), q, qn, h)) scratch_[tail++] = k;
        }
    }
    return tail;
}

void Engine::bump_parent(const char* p, size_t n) {
    if (n <= 1) return;
    int32_t i = tree_.find(p, parent_len(p, n), 0);
    if (i >= 0) tree_.at(i).gen = tree_.next_gen();
}

// A transaction's own live copy of the node visible at idx.
Result<int32_t> Engine::shadow(Ctx& c, int32_t idx) {
    if (c.layer == 0 || tree_.at(idx).layer == c.layer) return idx;
    char p[kPathBuf];
    size_t n = tree_.path_of(idx, p);
    int32_t t = tree_.find(p, n, c.layer);  // a read marker, if any
    const Node& src = tree_.at(idx);
    Amounts need = record_cost(n, src.value.len);
    if (t >= 0) need[Res::records] = 0, need[Res::blocks] = uint32_t(BlobPool::blocks_for(src.value.len));
    if (t < 0) TRY(tx_quota(c, 1));
    TRY(doms_.can_take(*c.dom, need));
    if ((t < 0 && tree_.free_nodes() == 0) || need[Res::blocks] > blobs_.free_blocks()) return Err{Error::nomem};
    if (t < 0) {
        t = tree_.alloc(p, n, c.layer, Kind::read).value();
        tree_.at(t).gen = tree_.at(idx).gen;
        txs_.at(c.slot).records++;
    } else {
        unpay(t);
    }
    char v[kPayloadMax];
    blobs_.read(tree_.at(idx).value, v);
    (void)tree_.set_value(t, v, tree_.at(idx).value.len);
    Node& x = tree_.at(t);
    x.perms = tree_.at(idx).perms;
    x.kind = Kind::live;
    x.charged = kNoDom;  // same owner as the committed node: counted once
    pay(t);
    return t;
}

// Creates p (absent in the view) and its missing ancestors, which inherit the
// nearest existing ancestor's permissions; an unprivileged creator becomes
// the owner. The caller has checked write access on that ancestor.
Status Engine::create(Ctx& c, const Path& p, const char* v, size_t vn) {
    uint16_t missing[kAbsPathMax / 2 + 1];  // lengths of the absent ancestors, deepest first
    size_t count = 0, n = p.n;
    while (tree_.view(p.s, n, c.layer) < 0) {
        missing[count++] = static_cast<uint16_t>(n);
        n = parent_len(p.s, n);
    }
    int32_t anc = tree_.view(p.s, n, c.layer);
    if (!(access(tree_.at(anc).perms, c.caller, priv_) & kPermWrite)) return Err{Error::acces};
    TRY(note(c, p.s, n));
    Perms perms = tree_.at(anc).perms;
    if (!c.priv) perms.e[0].dom = c.caller;
    DomId owner = perms.owner();
    // Check every resource first, so that nothing below can fail. The new
    // records (and the value) are the owner's to hold, or in a transaction
    // the transaction's domain's; the node quota is the owner's either way.
    Amounts need{};
    need[Res::blocks] = uint32_t(BlobPool::blocks_for(vn));
    for (size_t i = 0; i < count; ++i) {
        if (c.layer == 0 || tree_.find(p.s, missing[i], c.layer) < 0) {
            need[Res::records]++;
            need[Res::blocks] += uint32_t(BlobPool::blocks_for(missing[i]));
        }
    }
    TRY(tx_quota(c, need[Res::records]));
    if (c.layer == 0) {
        TRY(can_hold(owner, count, need));
    } else {
        TRY(can_hold(owner, count, Amounts{}));
        TRY(doms_.can_take(*c.dom, need));
    }
    if (need[Res::records] > tree_.free_nodes() || need[Res::blocks] > blobs_.free_blocks())
        return Err{Error::nomem};
    for (size_t i = count; i-- > 0;) {
        size_t len = missing[i];
        int32_t x = c.layer ? tree_.find(p.s, len, c.layer) : -1;
        if (x < 0) {
            x = tree_.alloc(p.s, len, c.layer, Kind::live).value();
            if (c.layer) txs_.at(c.slot).records++;
        } else {
            unpay(x);  // a read marker or tombstone of this transaction, now the node
        }
        Node& node = tree_.at(x);
        node.kind = Kind::live;
        node.perms = perms;
        node.exact_event = false;
        if (i == 0) (void)tree_.set_value(x, v, vn);
        if (c.layer == 0) {
            node.gen = tree_.next_gen();
            bump_parent(p.s, len);
            charge(owner, x);
        } else {
            // A record over a committed node with the same owner is that
            // node, already counted.
            int32_t committed = tree_.find(p.s, len, 0);
            bool same = committed >= 0 && tree_.at(committed).perms.owner() == owner;
            charge(same ? kNoDom : owner, x);
        }
        pay(x);
    }
    if (c.layer == 0) watches_.fire(p.s, p.n, false, perms, priv_);
    return {};
}

Status Engine::op_read(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    Path p;
    TRY(parse_path(c, a.s[0], a.n[0], p));
    auto i = lookup(c, p, kPermRead);
    if (!i) return Err{i.error()};
    reply_begin(out, r.type, r.req_id, r.tx_id);
    blobs_.read(tree_.at(i.value()).value, out.payload);
    out.hdr.len = tree_.at(i.value()).value.len;
    return {};
}

Status Engine::op_write(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_path_value(r, a));
    Path p;
    TRY(parse_path(c, a.s[0], a.n[0], p));
    if (!c.priv && a.n[1] > kQuotaValueSize) return Err{Error::too_big};
    auto i = lookup(c, p, kPermWrite);
    if (!i) {
        if (i.error() != Error::noent) return Err{i.error()};
        TRY(create(c, p, a.s[1], a.n[1]));
    } else {
        auto t = shadow(c, i.value());
        if (!t) return Err{t.error()};
        // The new value is held by whoever holds the record: the node's
        // owner, or in a transaction the transaction's domain.
        int32_t x = t.value();
        size_t had = BlobPool::blocks_for(tree_.at(x).value.len), will = BlobPool::blocks_for(a.n[1]);
        if (will > had) {
            Amounts more{};
            more[Res::blocks] = uint32_t(will - had);
            TRY(doms_.can_take(*payer(tree_.at(x)), more));
        }
        unpay(x);
        Status set = tree_.set_value(x, a.s[1], a.n[1]);
        pay(x);
        TRY(set);
        if (c.layer == 0) {
            tree_.at(t.value()).gen = tree_.next_gen();
            watches_.fire(p.s, p.n, false, tree_.at(t.value()).perms, priv_);
        }
    }
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::op_mkdir(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    Path p;
    TRY(parse_path(c, a.s[0], a.n[0], p));
    auto i = lookup(c, p, kPermWrite);
    if (!i) {
        if (i.error() != Error::noent) return Err{i.error()};
        TRY(create(c, p, nullptr, 0));
    }
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

// Removes p and everything below it from the committed tree. Cannot fail.
Status Engine::remove_committed(const char* p, size_t n) {
    bump_parent(p, n);
    size_t count = committed_subtree(p, n);
    for (size_t i = 0; i < count; ++i) {
        int32_t x = static_cast<int32_t>(scratch_[i]);
        char q[kPathBuf];
        size_t qn = tree_.path_of(x, q);
        // The top fires watches on it and above; the nodes below only their own.
        watches_.fire(q, qn, qn != n, tree_.at(x).perms, priv_);
        unpay(x);
        uncharge(x);
        tree_.release(x);
    }
    return {};
}

// Tombstones p and everything below it in the transaction's view.
Status Engine::remove_in_tx(Ctx& c, const char* p, size_t n) {
    Amounts need{};
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        int32_t x = static_cast<int32_t>(i);
        if (tree_.at(x).kind == Kind::free || tree_.at(x).layer != 0 || !tree_.is_self_or_below(x, p, n))
            continue;
        char q[kPathBuf];
        size_t qn = tree_.path_of(x, q);
        if (tree_.find(q, qn, c.layer) < 0) {
            need[Res::records]++;
            need[Res::blocks] += uint32_t(BlobPool::blocks_for(qn));
        }
    }
    TRY(tx_quota(c, need[Res::records]));
    TRY(doms_.can_take(*c.dom, need));
    if (need[Res::records] > tree_.free_nodes() || need[Res::blocks] > blobs_.free_blocks())
        return Err{Error::nomem};
    // Records of this transaction first (the new tombstones are already
    // complete), then tombstones over committed nodes it had not touched.
    uint32_t high = tree_.high();
    for (uint32_t i = 0; i < high; ++i) {
        int32_t x = static_cast<int32_t>(i);
        Node& t = tree_.at(x);
        if (t.kind == Kind::free || t.layer != c.layer || !tree_.is_self_or_below(x, p, n)) continue;
        char q[kPathBuf];
        size_t qn = tree_.path_of(x, q);
        if (t.kind == Kind::read) {
            int32_t committed = tree_.find(q, qn, 0);
            if (committed < 0) continue;  // absent in the view already
            t.perms = tree_.at(committed).perms;
        }
        unpay(x);
        uncharge(x);
        blobs_.release(t.value);
        t.kind = Kind::deleted;
        t.exact_event = qn != n;
        pay(x);
    }
    for (uint32_t i = 0; i < high; ++i) {
        int32_t x = static_cast<int32_t>(i);
        if (tree_.at(x).kind == Kind::free || tree_.at(x).layer != 0 || !tree_.is_self_or_below(x, p, n))
            continue;
        char q[kPathBuf];
        size_t qn = tree_.path_of(x, q);
        if (tree_.find(q, qn, c.layer) >= 0) continue;
        int32_t t = tree_.alloc(q, qn, c.layer, Kind::deleted).value();
        tree_.at(t).gen = tree_.at(x).gen;
        tree_.at(t).perms = tree_.at(x).perms;
        tree_.at(t).exact_event = qn != n;
        txs_.at(c.slot).records++;
        pay(t);
    }
    return {};
}

Status Engine::op_rm(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    Path p;
    TRY(parse_path(c, a.s[0], a.n[0], p));
    auto i = lookup(c, p, kPermWrite);
    if (!i) {
        // Removing a missing node is fine if its parent exists (Xen).
        if (i.error() == Error::noent && p.n > 1 && tree_.view(p.s, parent_len(p.s, p.n), c.layer) >= 0) {
            reply_ok(out, r.type, r.req_id, r.tx_id);
            return {};
        }
        return Err{i.error()};
    }
    if (p.n == 1) return Err{Error::inval};
    if (c.layer == 0) TRY(remove_committed(p.s, p.n));
    else TRY(remove_in_tx(c, p.s, p.n));
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::op_directory(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    Path p;
    TRY(parse_path(c, a.s[0], a.n[0], p));
    auto i = lookup(c, p, kPermRead);
    if (!i) return Err{i.error()};
    reply_begin(out, r.type, r.req_id, r.tx_id);
    uint32_t h = path_hash(p.s, p.n);
    size_t skip = p.n == 1 ? 1 : p.n + 1;
    for (uint32_t k = tree_.children(h); k != kNil; k = tree_.next_child(k)) {
        int32_t x = static_cast<int32_t>(k);
        const Node& node = tree_.at(x);
        if (node.kind == Kind::free || !tree_.is_child(x, p.s, p.n, h)) continue;
        char q[kPathBuf];
        size_t qn = tree_.path_of(x, q);
        if (node.layer == 0) {
            // Shadowed by the transaction's own record (unless that only read it)?
            int32_t t = c.layer ? tree_.find(q, qn, c.layer) : -1;
            if (t >= 0 && tree_.at(t).kind != Kind::read) continue;
        } else if (node.layer != c.layer || node.kind != Kind::live) {
            continue;
        }
        q[qn] = '\0';
        if (!reply_append(out, q + skip, qn - skip + 1)) return Err{Error::too_big};
    }
    return {};
}

Status Engine::op_get_perms(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    Path p;
    TRY(canonicalize(c.caller, a.s[0], a.n[0], true, !c.priv, p));
    const Perms* perms;
    if (p.special) {
        perms = &special_perms_;
    } else {
        auto i = lookup(c, p, kPermRead);
        if (!i) return Err{i.error()};
        perms = &tree_.at(i.value()).perms;
    }
    reply_begin(out, r.type, r.req_id, r.tx_id);
    out.hdr.len = static_cast<uint32_t>(format_perms(*perms, out.payload));
    return {};
}

Status Engine::op_set_perms(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_all(r, a));
    if (a.count < 2) return Err{Error::inval};
    Path p;
    TRY(canonicalize(c.caller, a.s[0], a.n[0], true, !c.priv, p));
    auto parsed = parse_perms(a, 1);
    if (!parsed) return Err{parsed.error()};
    const Perms& perms = parsed.value();
    if (!c.priv && perms.count > kQuotaPermsPerNode) return Err{Error::quota};
    if (p.special) {
        if (!c.priv) return Err{Error::acces};
        special_perms_ = perms;
        reply_ok(out, r.type, r.req_id, r.tx_id);
        return {};
    }
    auto i = lookup(c, p, kPermWrite | kPermOwner);
    if (!i) return Err{i.error()};
    DomId old_owner = tree_.at(i.value()).perms.owner();
    DomId owner = perms.owner();
    // Only the privileged domain hands nodes to someone else.
    if (!c.priv && owner != old_owner) return Err{Error::perm};
    if (c.layer == 0) {
        int32_t x = i.value();
        if (owner != old_owner && p.n > 1) {
            // The node, its path and value go to the new owner to hold.
            TRY(can_hold(owner, 1, cost(tree_.at(x))));
            unpay(x);
            uncharge(x);
            charge(owner, x);
            pay(x);
        }
        tree_.at(x).perms = perms;
        tree_.at(x).gen = tree_.next_gen();
        watches_.fire(p.s, p.n, false, perms, priv_);
    } else {
        int32_t committed = tree_.find(p.s, p.n, 0);
        DomId want = committed >= 0 && tree_.at(committed).perms.owner() == owner ? kNoDom : owner;
        if (want != kNoDom && want != tree_.at(i.value()).charged) TRY(can_hold(want, 1, Amounts{}));
        auto t = shadow(c, i.value());
        if (!t) return Err{t.error()};
        if (tree_.at(t.value()).charged != want) {
            uncharge(t.value());
            charge(want, t.value());
        }
        tree_.at(t.value()).perms = perms;
    }
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

bool Engine::tx_conflicts(size_t slot) const {
    uint16_t layer = Transactions::layer(slot);
    char q[kPathBuf];
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        const Node& t = tree_.at(static_cast<int32_t>(i));
        if (t.kind == Kind::free || t.layer != layer) continue;
        size_t qn = tree_.path_of(static_cast<int32_t>(i), q);
        int32_t committed = tree_.find(q, qn, 0);
        uint64_t now = committed >= 0 ? tree_.at(committed).gen : 0;
        if (now != t.gen) return true;
    }
    return false;
}

// What committing the transaction in `slot` moves between domains (tree.hpp:
// its records are its domain's until then, the nodes they become their
// owners'), checked against every quota and the shared remainder first.
// Only a transaction that wrote someone else's node (or the privileged
// domain's, creating nodes for others) makes anyone but its own domain hold
// more; that can be refused with EQUOTA.
Status Engine::tx_can_commit(size_t slot) {
    uint16_t layer = Transactions::layer(slot);
    Domain* d = doms_.find(txs_.at(slot).dom);
    char q[kPathBuf];
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        const Node& t = tree_.at(static_cast<int32_t>(i));
        if (t.kind == Kind::free || t.layer != layer) continue;
        size_t qn = tree_.path_of(static_cast<int32_t>(i), q);
        int32_t committed = tree_.find(q, qn, 0);
        Amounts was = cost(t);
        for (size_t r = 0; r < kResCount; ++r) doms_.plan(*d, Res(r), -int64_t(was.v[r]));
        if (committed >= 0 && t.kind != Kind::read) {
            Amounts gone = cost(tree_.at(committed));
            Domain* o = payer(tree_.at(committed));
            for (size_t r = 0; r < kResCount; ++r) doms_.plan(*o, Res(r), -int64_t(gone.v[r]));
        }
        if (t.kind == Kind::live) {
            // The committed node afterwards: this path and value, held by
            // the owner it is charged to (the committed node's if unchanged).
            Domain* n = t.charged != kNoDom ? doms_.find(t.charged)
                        : committed >= 0    ? payer(tree_.at(committed))
                                            : d;  // (a new node is always charged)
            Amounts now = record_cost(qn, t.value.len);
            for (size_t r = 0; r < kResCount; ++r) doms_.plan(*n, Res(r), int64_t(now.v[r]));
        }
    }
    return doms_.can_apply();
}

// Applies a transaction that does not conflict, once tx_can_commit said the
// owners can hold what it gives them: the ledger takes what that planned,
// then the records change without it. Cannot fail: new nodes are the
// transaction's own records moved to layer 0, changed nodes take the
// records' values, and the node quota was charged when the records were
// made.
void Engine::tx_commit(size_t slot) {
    uint16_t layer = Transactions::layer(slot);
    doms_.apply();
    char q[kPathBuf];
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        int32_t x = static_cast<int32_t>(i);
        Node& t = tree_.at(x);
        if (t.kind == Kind::free || t.layer != layer) continue;
        size_t qn = tree_.path_of(x, q);
        int32_t committed = tree_.find(q, qn, 0);
        if (t.kind == Kind::deleted && committed >= 0) {
            watches_.fire(q, qn, t.exact_event, tree_.at(committed).perms, priv_);
            uncharge(committed);
            tree_.release(committed);
            bump_parent(q, qn);
        } else if (t.kind == Kind::live && committed >= 0) {
            Node& cn = tree_.at(committed);
            BlobRef v = cn.value;
            cn.value = t.value;
            t.value = v;
            cn.perms = t.perms;
            if (t.charged != kNoDom) {
                // The owner changed: the new owner's charge moves to the node.
                uncharge(committed);
                unlink_owned(x);
                cn.charged = t.charged;
                t.charged = kNoDom;
                link_owned(committed);
            }
            cn.gen = tree_.next_gen();
            watches_.fire(q, qn, false, cn.perms, priv_);
        } else if (t.kind == Kind::live) {
            t.layer = 0;  // now its owner's to hold
            t.gen = tree_.next_gen();
            bump_parent(q, qn);
            watches_.fire(q, qn, false, t.perms, priv_);
            continue;  // the record now is the committed node
        }
        uncharge(x);
        tree_.release(x);
    }
}

void Engine::tx_abort(size_t slot) {
    uint16_t layer = Transactions::layer(slot);
    for (uint32_t i = 0; i < tree_.high(); ++i) {
        int32_t x = static_cast<int32_t>(i);
        if (tree_.at(x).kind == Kind::free || tree_.at(x).layer != layer) continue;
        unpay(x);
        uncharge(x);
        tree_.release(x);
    }
}

}  // namespace xs
