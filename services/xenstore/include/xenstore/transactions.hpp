#pragma once
// Open transactions. Slot s owns layer s+1 of the tree; ids are what the
// domain sees on the wire, never 0, never reused while the engine runs
// (until the 32-bit counter wraps, skipping ids still open).

#include <xenstore/arena.hpp>
#include <xenstore/config.hpp>
#include <xenstore/error.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

struct Transaction {
    bool in_use;
    DomId dom;
    uint32_t id;
    uint32_t records;  // tree records in its layer
};

class Transactions {
public:
    // Takes room for n transactions from `a` (measures only, if into is null).
    static void place(Arena& a, uint32_t n, Transactions* into) {
        Transaction* t = a.take<Transaction>(n);
        if (!into) return;
        into->tx_ = t;
        into->cap_ = n;
    }
    void reset();
    // A new transaction for dom; ENOMEM if every slot is taken.
    [[nodiscard]] Result<size_t> open(DomId dom);
    void close(size_t slot) { tx_[slot].in_use = false; }
    // The slot of (dom, id); ENOENT if there is none.
    [[nodiscard]] Result<size_t> find(DomId dom, uint32_t id) const;
    Transaction& at(size_t slot) { return tx_[slot]; }
    const Transaction& at(size_t slot) const { return tx_[slot]; }
    // Every open transaction's slot is below high() (lowest free slot first).
    size_t high() const { return high_; }
    static uint16_t layer(size_t slot) { return static_cast<uint16_t>(slot + 1); }

private:
    Transaction* tx_ = nullptr;  // cap_ of them
    uint32_t cap_ = 0;
    size_t high_;  // slots [high_, cap_) were never used since reset
    uint32_t next_id_;
};

}  // namespace xs
