// Watches, transactions and domain management.

#include <xenstore/engine.hpp>
#include <base/number.hpp>

namespace xs {

using abi::XsType;

namespace {

constexpr char kIntroduceDomain[] = "@introduceDomain";
constexpr char kReleaseDomain[] = "@releaseDomain";

}  // namespace

Status Engine::op_watch(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 2, a));
    Path p;
    TRY(canonicalize(c.caller, a.s[0], a.n[0], true, !c.priv, p));
    uint16_t strip = 0;
    if (p.relative) {
        char home[24];
        strip = static_cast<uint16_t>(home_path(c.caller, home) + 1);
    }
    auto w = watches_.add(*c.dom, p.s, p.n, a.s[1], a.n[1], strip);
    if (!w) return Err{w.error()};
    reply_ok(out, r.type, r.req_id, r.tx_id);
    // Xen fires every new watch once, if the watcher could see the node (or
    // see that it does not exist); the event follows the reply.
    bool visible = p.special;
    if (!visible) {
        Ctx view{c.caller, c.priv, c.dom, 0, 0, &r};
        int32_t i = tree_.view(p.s, p.n, 0);
        visible = i >= 0 ? (access(tree_.at(i).perms, c.caller, priv_) & kPermRead) != 0
                         : (nearest_access(view, p.s, p.n) & kPermRead) != 0;
    }
    if (visible) watches_.queue_for(watches_.at(w.value()), p.s, p.n);
    return {};
}

Status Engine::op_unwatch(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 2, a));
    Path p;
    TRY(canonicalize(c.caller, a.s[0], a.n[0], true, !c.priv, p));
    TRY(watches_.remove(*c.dom, p.s, p.n, a.s[1], a.n[1]));
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::op_tx_start(Ctx& c, const Request& r, Reply& out) {
    if (r.tx_id != 0) return Err{Error::busy};
    Args a;
    TRY(split_exact(r, 1, a));
    Amounts one{};
    one[Res::transactions] = 1;
    TRY(doms_.can_take(*c.dom, one));
    auto slot = txs_.open(c.caller);
    if (!slot) return Err{slot.error()};  // the ledger keeps the table from filling
    doms_.take(*c.dom, one);
    char id[11];
    size_t n = format_u32(txs_.at(slot.value()).id, id);
    id[n++] = '\0';
    reply_begin(out, r.type, r.req_id, r.tx_id);
    (void)reply_append(out, id, n);
    return {};
}

Status Engine::op_tx_end(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    bool commit = bytes_equal(a.s[0], a.n[0], "T", 1);
    if (!commit && !bytes_equal(a.s[0], a.n[0], "F", 1)) return Err{Error::inval};
    auto slot = txs_.find(c.caller, r.tx_id);
    if (!slot) return Err{slot.error()};
    size_t s = slot.value();
    // A transaction that cannot be applied ends all the same (as one that
    // conflicts does): EAGAIN, or EQUOTA if what it would give some owner
    // to hold does not fit.
    Status applies = commit && tx_conflicts(s) ? Status{Err{Error::again}} : Status{};
    if (commit && applies) applies = tx_can_commit(s);
    if (commit && applies) tx_commit(s);
    else tx_abort(s);
    close_transaction(*c.dom, s);
    if (!applies) return applies;
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::introduce(DomId dom, uint64_t ring_mfn, uint32_t port) {
    if (dom == priv_ || dom >= kDomIdLimit) return Err{Error::inval};
    Domain* existing = doms_.find(dom);
    if (!existing || !existing->introduced) {
        // The home node, owned by the domain, private to it.
        char home[24];
        size_t n = home_path(dom, home);
        Path p;
        TRY(canonicalize(priv_, home, n, false, false, p));
        // Its record, and with it its reserve: the builder gave it nodes
        // before (a device directory), or it is new.
        auto d = doms_.get(dom);
        if (!d) return Err{d.error()};
        Ctx c{priv_, true, doms_.find(priv_), 0, 0, nullptr};
        if (tree_.view(p.s, p.n, 0) < 0) {
            Status s = create(c, p, nullptr, 0);
            if (!s) {
                doms_.maybe_drop(d.value());
                return s;
            }
            int32_t x = tree_.find(p.s, p.n, 0);
            if (tree_.at(x).perms.owner() != dom && can_hold(dom, 1, cost(tree_.at(x)))) {
                unpay(x);
                uncharge(x);
                charge(dom, x);
                tree_.at(x).perms = Perms::make(dom, kPermNone);
                pay(x);
            }
        }
        d.value()->introduced = true;
        watches_.fire(kIntroduceDomain, sizeof(kIntroduceDomain) - 1, true, special_perms_, priv_);
    }
    Domain* d = doms_.find(dom);
    d->ring_mfn = ring_mfn;
    d->ring_port = port;
    if (hooks_.introduced) hooks_.introduced(hooks_.ctx, dom, ring_mfn, port);
    return {};
}

void Engine::close_transaction(Domain& d, size_t slot) {
    txs_.close(slot);
    doms_.give(d, Res::transactions, 1);
}

void Engine::drop_domain_state(Domain& d) {
    for (size_t s = 0; s < txs_.high(); ++s) {
        if (txs_.at(s).in_use && txs_.at(s).dom == d.id) {
            tx_abort(s);
            close_transaction(d, s);
        }
    }
    watches_.remove_all(d);
    watches_.drop_events(d);
}

// Every committed node dom owns goes, with what lies below it, as Xen does
// for a domain that goes away (XSA-419): nothing stays charged to it, and a
// later domain with its id inherits nothing.
//
// The domain's list of records charged to it says where they are. They are
// gathered first (the list changes under the removal: a node goes with
// those below it, other entries of the list among them), then each one
// still standing goes with its subtree. Nothing allocates records
// meanwhile, so a gathered index that is free was removed.
void Engine::remove_owned(DomId dom) {
    Domain* d = doms_.find(dom);
    if (!d) return;
    uint32_t* gathered = scratch_ + tree_.capacity();  // committed_subtree uses the first half
    size_t count = 0;
    for (uint32_t i = d->owned_head; i != kNil; i = tree_.at(int32_t(i)).own_next)
        if (tree_.at(int32_t(i)).layer == 0) gathered[count++] = i;
    char q[kPathBuf];
    while (count > 0) {
        int32_t x = int32_t(gathered[--count]);
        const Node& node = tree_.at(x);
        if (node.kind != Kind::live || node.layer != 0 || node.charged != dom) continue;
        size_t qn = tree_.path_of(x, q);
        (void)remove_committed(q, qn);
    }
}

Status Engine::release(DomId dom) {
    Domain* d = doms_.find(dom);
    if (!d || !d->introduced || dom == priv_) return Err{Error::noent};
    drop_domain_state(*d);
    remove_owned(dom);
    d->introduced = false;
    watches_.fire(kReleaseDomain, sizeof(kReleaseDomain) - 1, true, special_perms_, priv_);
    if (hooks_.released) hooks_.released(hooks_.ctx, dom);
    doms_.maybe_drop(d);
    return {};
}

Status Engine::op_introduce(Ctx& c, const Request& r, Reply& out) {
    if (!c.priv) return Err{Error::acces};
    Args a;
    TRY(split_exact(r, 3, a));
    DomId dom;
    uint64_t mfn;
    uint32_t port;
    if (!parse_domid(a.s[0], a.n[0], dom) || !base::parse_u64(a.s[1], a.n[1], mfn) ||
        !parse_u32(a.s[2], a.n[2], port))
        return Err{Error::inval};
    TRY(introduce(dom, mfn, port));
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::op_release(Ctx& c, const Request& r, Reply& out) {
    if (!c.priv) return Err{Error::acces};
    Args a;
    TRY(split_exact(r, 1, a));
    DomId dom;
    if (!parse_domid(a.s[0], a.n[0], dom)) return Err{Error::inval};
    TRY(release(dom));
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

Status Engine::op_get_domain_path(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    DomId dom;
    if (!parse_domid(a.s[0], a.n[0], dom)) return Err{Error::inval};
    char home[25];
    size_t n = home_path(dom, home);
    home[n++] = '\0';
    reply_begin(out, r.type, r.req_id, r.tx_id);
    (void)reply_append(out, home, n);
    return {};
}

// Privileged only, as the question reveals which domains exist.
Status Engine::op_is_introduced(Ctx& c, const Request& r, Reply& out) {
    if (!c.priv) return Err{Error::acces};
    Args a;
    TRY(split_exact(r, 1, a));
    DomId dom;
    if (!parse_domid(a.s[0], a.n[0], dom)) return Err{Error::inval};
    reply_begin(out, r.type, r.req_id, r.tx_id);
    (void)reply_append(out, is_introduced(dom) ? "T" : "F", 2);
    return {};
}

// Xen: drops the caller's watches and transactions (a fresh client after kexec).
Status Engine::op_reset_watches(Ctx& c, const Request& r, Reply& out) {
    Args a;
    TRY(split_exact(r, 1, a));
    drop_domain_state(*c.dom);
    reply_ok(out, r.type, r.req_id, r.tx_id);
    return {};
}

}  // namespace xs
