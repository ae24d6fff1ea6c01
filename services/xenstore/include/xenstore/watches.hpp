#pragma once
// Watches and the queue of watch events. A watch is (domain, path, token);
// its path is canonical, or special ("@introduceDomain", "@releaseDomain").
// A change at path P fires every watch on P or an ancestor of P (or only the
// watches on exactly P, for the nodes below the top of a removed subtree),
// and only for watchers that may read the node. An event is queued on the
// watcher's domain as "path\0token\0", the path relative to the watcher's
// home if it registered a relative path.
//
// A watch's slot, path and token are held (the ledger, domains.hpp) by the
// watching domain, and so is every event queued for it until it takes it.
// An event a domain cannot hold (past its quota of queued events, its byte
// quota, or the shared remainder once its reserve is used) is dropped for
// that domain alone, as xenstored drops them for a client that does not read.
//
// The index. Every watch is on exactly one chain, chosen by its path: the
// list of @introduceDomain watches, the list of @releaseDomain watches, or
// the bucket of its path's hash (every other path). A change at P looks at
// the bucket of each ancestor of P and of P itself (the FNV hash of a
// prefix is a step of P's own hash), so firing costs the depth of P plus
// the watches in those buckets, not the number of watches in the store.
// Each domain also lists its own watches (Domain::watch_head), so dropping
// them costs what it holds.

#include <xenstore/blob.hpp>
#include <xenstore/domains.hpp>
#include <xenstore/perms.hpp>
#include <xenstore/wire.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Watch {
    bool in_use;
    DomId dom;
    uint16_t strip;  // bytes of home prefix to strip from event paths (relative watch), or 0
    uint32_t hash;   // path_hash(path)
    uint32_t next;   // the next watch on its chain (in use) or of the free list, or kNil
    uint32_t dom_prev, dom_next;  // its domain's list of watches, kNil at the ends
    BlobRef path;
    BlobRef token;
};



class Watches {
public:
    Watches(BlobPool& blobs, Domains& doms) : blobs_(blobs), doms_(doms) {}
    // Takes room for `watches` watches, their index (a power of two of
    // buckets, at least one per watch) and `events` queued events from `a`
    // (measures only, if into is null).
    static void place(Arena& a, uint32_t watches, uint32_t events, Watches* into);
    void reset();

    // The new watch's index; EEXIST if (dom, path, token) is already
    // watched, EQUOTA if d cannot hold one more watch and its strings.
    [[nodiscard]] Result<size_t> add(Domain& d, const char* path, size_t pn, const char* token, size_t tn,
                             uint16_t strip);
    // ENOENT if there is no such watch.
    [[nodiscard]] Status remove(Domain& d, const char* path, size_t pn, const char* token, size_t tn);
    void remove_all(Domain& d);

    // Fires watches for a change at path. `perms` are the node's (for a
    // removed node, those it had); special paths ignore them and use
    // `special` instead.
    void fire(const char* path, size_t pn, bool exact, const Perms& perms, DomId privileged);
    // Queues one event for watch w with `path` (the registration event).
    void queue_for(const Watch& w, const char* path, size_t pn);
    const Watch& at(size_t i) const { return watches_[i]; }
    // Every watch in use is below high().
    size_t high() const { return high_; }
    // Watches fire() compared with a change since reset (for the tests that
    // show firing does not cost the number of watches).
    uint64_t probes() const { return probes_; }

    // Called with the domain's id after each event queued for it (the ring
    // layer then serves that domain's connection); null: nobody is told.
    void set_queued_hook(void* ctx, void (*fn)(void* ctx, DomId dom)) {
        queued_ctx_ = ctx;
        queued_ = fn;
    }

    // Pops the oldest event of d into out; false if none.
    bool pop_event(Domain& d, Reply& out);
    void drop_events(Domain& d);
    size_t queued_events() const { return used_events_; }
    // For the invariant check: what a watch holds (its slot, path and
    // token), and what the events queued for d hold.
    static Amounts cost(const Watch& w);
    // nullptr if every watch in use is on the chain its path picks and on
    // its domain's list, and nothing else is; else what is wrong (tests).
    const char* check_index() const;
    Amounts events_held_by(const Domain& d) const;

private:
    struct Event {
        BlobRef data;
        uint32_t next;
    };
    void push_event(Domain& d, const char* path, size_t pn, BlobRef token);
    void free_event(Domain& d, uint32_t e);
    void drop(Domain& d, Watch& w);
    // The head of the chain a watch on path (hashed h) is on.
    uint32_t& chain(const char* path, size_t pn, uint32_t h);
    // Fires the watches on `chain` whose path is exactly path[0, pn) (hashed h).
    void fire_chain(uint32_t head, const char* path, size_t pn, uint32_t h, const char* event, size_t en,
                    const Perms& perms, DomId privileged);

    BlobPool& blobs_;
    Domains& doms_;
    Watch* watches_ = nullptr;  // cap_ of them
    uint32_t cap_ = 0;
    size_t high_;  // slots [high_, cap_) were never used since reset
    uint32_t free_;  // slots given back, through Watch::next
    uint32_t* bucket_ = nullptr;  // mask_ + 1 of them
    uint32_t mask_ = 0;
    uint32_t introduce_, release_;  // the special lists
    uint64_t probes_;
    void* queued_ctx_ = nullptr;
    void (*queued_)(void*, DomId) = nullptr;
    Event* events_ = nullptr;  // ev_cap_ of them
    uint32_t ev_cap_ = 0;
    uint32_t ev_free_;   // free list of events
    uint32_t ev_bump_;
    size_t used_events_;
};

}  // namespace xs
