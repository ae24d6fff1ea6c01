#pragma once
// The XenStore engine: one request in, exactly one reply out, in Xen's wire
// format, over a store sized when it is made. The ring layer (the store
// domain) calls
//   begin_request(dom)            before taking a request off dom's ring;
//   handle(dom, msg, len, reply)  to process it, then puts `reply` on the ring;
//   end_request(dom)              once the reply is written;
//   next_event(dom, reply)        while it returns true, to deliver watch events.
// Every request is decoded and checked completely before the store changes
// (decode, then invoke); an operation that fails changes nothing. What a
// request makes the store hold is accounted to one domain (domains.hpp, the
// ledger; config.hpp, the reserves and quotas): running out is EQUOTA for
// the domain that asked, never ENOMEM, and never cuts into the reserve of
// any other domain.
//
// The pools live in memory the caller gives (an Arena of arena_bytes(s)
// bytes for Sizing s): kStandard for the tests, or what sizing_for makes of
// the store domain's memory and the number of domains it serves. Nothing is
// allocated afterwards.

#include <xenstore/blob.hpp>
#include <xenstore/domains.hpp>
#include <xenstore/error.hpp>
#include <xenstore/path.hpp>
#include <xenstore/perms.hpp>
#include <xenstore/transactions.hpp>
#include <xenstore/tree.hpp>
#include <xenstore/watches.hpp>
#include <xenstore/wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

// Notifications for the ring layer; any member may be null.
struct Hooks {
    void* ctx;
    // A domain was introduced (or re-introduced): map its ring, bind the port.
    void (*introduced)(void* ctx, DomId dom, uint64_t ring_mfn, uint32_t port);
    // A domain was released: unmap its ring.
    void (*released)(void* ctx, DomId dom);
};

class Engine {
public:
    // `privileged` is the builder (Xen's dom0): it passes every permission
    // check, is exempt from quotas (not from the ledger: past its reserve it
    // draws from the shared remainder like everybody), and alone may
    // introduce and release.
    // `arena` holds at least arena_bytes(sizing) bytes (8-byte aligned),
    // the engine's until it goes; sizing.adds_up() holds.
    Engine(DomId privileged, Hooks hooks, const Sizing& sizing, void* arena, size_t bytes);
    // What an engine of this sizing needs.
    static size_t arena_bytes(const Sizing& s);
    // The sizing for `bytes` of arena serving up to `domains` unprivileged
    // domains: every domain gets the full reserve (kReserve) if that fits,
    // else the largest step from kReserve down to kMinReserve that fits;
    // if not even that fits, fewer domains. What the arena has left goes to
    // the shared remainder of the node and byte pools. sizing.domains == 0:
    // not even one domain fits.
    static Sizing sizing_for(size_t bytes, uint32_t domains);
    const Sizing& sizing() const { return doms_.sizing(); }
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void handle(DomId caller, const uint8_t* msg, size_t len, Reply& out);

    // Outstanding-request quota (20 per unprivileged domain): EQUOTA when
    // full; the ring layer then leaves the request on the ring (as xenstored
    // does) or answers it with error_reply(). ENOSPC if dom cannot be tracked.
    [[nodiscard]] Status begin_request(DomId dom);
    void end_request(DomId dom);
    // An error reply for msg (ids echoed as far as they can be read).
    static void error_reply(const uint8_t* msg, size_t len, Error e, Reply& out);

    // The oldest queued watch event of dom, as an XS_WATCH_EVENT message.
    bool next_event(DomId dom, Reply& out);
    // Whether dom has watch events queued.
    bool has_events(DomId dom) const;
    // fn(ctx, dom) after every watch event queued for dom (the ring layer's
    // cue to serve dom's connection although its port did not fire).
    void set_queued_hook(void* ctx, void (*fn)(void* ctx, DomId dom)) { watches_.set_queued_hook(ctx, fn); }

    // What XS_INTRODUCE / XS_RELEASE do, for a builder living in the same
    // domain as the store. introduce gives dom an accounting record (and
    // with it its reserve: config.hpp) unless it has one already (ENOSPC if
    // every record is taken), creates /local/domain/<dom> owned by dom and
    // fires @introduceDomain. release drops dom's watches, transactions and
    // events, removes every node it owns with what lies below (Xen, XSA-419),
    // fires @releaseDomain and frees its record, whose reserve then waits
    // for the next domain introduced.
    [[nodiscard]] Status introduce(DomId dom, uint64_t ring_mfn = 0, uint32_t port = 0);
    [[nodiscard]] Status release(DomId dom);
    bool is_introduced(DomId dom) const;

    // Introspection for tests and the fuzzer.
    DomId privileged() const { return priv_; }
    const Tree& tree() const { return tree_; }
    const BlobPool& blobs() const { return blobs_; }
    const Domains& domains() const { return doms_; }
    const Transactions& transactions() const { return txs_; }
    const Watches& watches() const { return watches_; }
    // nullptr if every structural invariant, quota and reserve holds, else
    // what broke: counts match the store, the ledger matches what each
    // domain holds, no unprivileged domain is past a quota, the shared
    // remainder of no pool is overdrawn, and what is in use of each pool is
    // what the ledger says.
    const char* check_invariants() const;

private:
    struct Ctx {
        DomId caller;
        bool priv;
        Domain* dom;
        uint16_t layer;  // 0, or the transaction's layer
        size_t slot;     // the transaction's slot when layer != 0
        const Request* req;
    };

    // engine.cpp: dispatch.
    Status dispatch(Ctx& c, const Request& r, Reply& out);

    // engine_nodes.cpp: node operations and transaction views.
    Status op_read(Ctx& c, const Request& r, Reply& out);
    Status op_write(Ctx& c, const Request& r, Reply& out);
    Status op_mkdir(Ctx& c, const Request& r, Reply& out);
    Status op_rm(Ctx& c, const Request& r, Reply& out);
    Status op_directory(Ctx& c, const Request& r, Reply& out);
    Status op_get_perms(Ctx& c, const Request& r, Reply& out);
    Status op_set_perms(Ctx& c, const Request& r, Reply& out);
    Status parse_path(const Ctx& c, const char* s, size_t n, Path& p) const;
    Status note(Ctx& c, const char* p, size_t n);
    uint8_t nearest_access(const Ctx& c, const char* p, size_t n) const;
    Result<int32_t> lookup(Ctx& c, const Path& p, uint8_t perm);
    Result<int32_t> shadow(Ctx& c, int32_t idx);
    Status create(Ctx& c, const Path& p, const char* v, size_t vn);
    Status remove_committed(const char* p, size_t n);
    Status remove_in_tx(Ctx& c, const char* p, size_t n);
    Status tx_quota(const Ctx& c, size_t more) const;
    // Whether dom may be charged k more nodes (Xen's quota) and hold `need`
    // more (the ledger); a domain with no record yet counts as holding
    // nothing, if a record is free for it (ENOSPC if not).
    Status can_hold(DomId dom, size_t k, const Amounts& need) const;
    void charge(DomId dom, int32_t idx);
    void uncharge(int32_t idx);
    // The record moves onto / off its charged domain's list of records.
    void link_owned(int32_t idx);
    void unlink_owned(int32_t idx);
    // The committed nodes at p and below, into scratch_ (the top first, each
    // before what lies below it); how many. Costs the subtree, found through
    // the parent index.
    size_t committed_subtree(const char* p, size_t n);
    // The ledger's view of node records (tree.hpp: who pays).
    static Amounts record_cost(size_t path_len, size_t value_len);
    static Amounts cost(const Node& x);
    Domain* payer(const Node& x);
    void pay(int32_t idx);
    void unpay(int32_t idx);
    void bump_parent(const char* p, size_t n);
    bool tx_conflicts(size_t slot) const;
    Status tx_can_commit(size_t slot);
    void tx_commit(size_t slot);
    void tx_abort(size_t slot);

    // Lays the pools out in `a` (into this engine, or only measures).
    static void layout(Arena& a, const Sizing& s, Engine* into);

    // engine_admin.cpp: watches, transactions, domains.
    Status op_watch(Ctx& c, const Request& r, Reply& out);
    Status op_unwatch(Ctx& c, const Request& r, Reply& out);
    Status op_tx_start(Ctx& c, const Request& r, Reply& out);
    Status op_tx_end(Ctx& c, const Request& r, Reply& out);
    Status op_introduce(Ctx& c, const Request& r, Reply& out);
    Status op_release(Ctx& c, const Request& r, Reply& out);
    Status op_get_domain_path(Ctx& c, const Request& r, Reply& out);
    Status op_is_introduced(Ctx& c, const Request& r, Reply& out);
    Status op_reset_watches(Ctx& c, const Request& r, Reply& out);
    void close_transaction(Domain& d, size_t slot);
    void drop_domain_state(Domain& d);
    void remove_owned(DomId dom);
    const char* check_ledger() const;
    const char* check_owned() const;

    DomId priv_;
    Hooks hooks_;
    Perms special_perms_;  // of @introduceDomain and @releaseDomain
    BlobPool blobs_;
    Tree tree_;
    Domains doms_;
    Watches watches_;
    Transactions txs_;
    // Scratch of check_invariants: per domain record, per transaction.
    uint32_t* check_nodes_ = nullptr;
    Amounts* check_held_ = nullptr;
    uint32_t* check_records_ = nullptr;
    // Record indices, twice the pool's records: the first half for
    // committed_subtree, the second for remove_owned's list.
    uint32_t* scratch_ = nullptr;
};

}  // namespace xs
