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
    BlobRef path;
    BlobRef token;
};

class Watches {
public:
    Watches(BlobPool& blobs, Domains& doms) : blobs_(blobs), doms_(doms) {}
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
    // Every watch in use is below high() (slots are taken lowest first).
    size_t high() const { return high_; }

    // Pops the oldest event of d into out; false if none.
    bool pop_event(Domain& d, Reply& out);
    void drop_events(Domain& d);
    size_t queued_events() const { return used_events_; }
    // For the invariant check: what a watch holds (its slot, path and
    // token), and what the events queued for d hold.
    static Amounts cost(const Watch& w);
    Amounts events_held_by(const Domain& d) const;

private:
    struct Event {
        BlobRef data;
        uint32_t next;
    };
    void push_event(Domain& d, const char* path, size_t pn, BlobRef token);
    void free_event(Domain& d, uint32_t e);
    void drop(Domain& d, Watch& w);

    BlobPool& blobs_;
    Domains& doms_;
    Watch watches_[kMaxWatches];
    size_t high_;  // slots [high_, kMaxWatches) were never used since reset
    Event events_[kMaxEvents];
    uint32_t ev_free_;   // free list of events
    uint32_t ev_bump_;
    size_t used_events_;
};

}  // namespace xs
