#pragma once
// Per-domain accounting: introduction state, quota counters, the queue of
// pending watch events. A record exists while the domain is introduced or
// privileged, or anything is still counted against it (nodes it owns, for
// instance after release or when the privileged domain hands it a node).

#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Domain {
    bool in_use;
    bool introduced;
    DomId id;
    uint32_t nodes;         // records charged to it (tree.hpp)
    uint32_t watches;
    uint32_t transactions;
    uint32_t outstanding;   // requests between begin_request and end_request
    uint32_t ev_head, ev_tail, ev_count;  // FIFO of queued events (watches.hpp)
    uint64_t ring_mfn;
    uint32_t ring_port;
};

class Domains {
public:
    void reset();
    Domain* find(DomId d);
    const Domain* find(DomId d) const;
    // The record for d, created if needed; ENOMEM if the table is full.
    [[nodiscard]] Result<Domain*> get(DomId d);
    // Frees the record if nothing refers to it any more.
    void maybe_drop(Domain* d, DomId privileged);
    Domain* at(size_t i) { return &doms_[i]; }
    const Domain* at(size_t i) const { return &doms_[i]; }
    static constexpr size_t size() { return kMaxDomains; }

private:
    Domain doms_[kMaxDomains];
};

}  // namespace xs
