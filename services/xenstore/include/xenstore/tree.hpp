#pragma once
// The store: a table of node records (sized when the engine is made), keyed
// by full path and layer, indexed by path and by parent path.
// Layer 0 is the committed tree; layer t (1..kMaxTransactions) holds the
// records of the transaction in slot t-1, which shadow layer 0 in that
// transaction's view:
//   live     the node exists in the view with this value and perms
//   deleted  the node is absent from the view (a tombstone)
//   read     the view sees layer 0; the record only remembers what was read
// Invariants: at most one record per (path, layer); layer 0 holds only live
// records, and every one but "/" has its parent in layer 0; in a
// transaction's view every live node's parent is live too. A transaction
// record's `gen` is the generation its layer-0 node had when the transaction
// first touched the path (0: absent); a layer-0 record's `gen` is the
// generation of its last change, including a child being added or removed.
//
// Who pays (the ledger, domains.hpp). A record and its path and value are
// held by exactly one domain, its payer: a committed record's is its owner
// (perms[0], also the domain it is charged to), the root's the privileged
// domain; a transaction's record's is the transaction's domain, whatever
// the record will become (its owner's only once committed). `charged` is
// Xen's node quota: a committed node's owner, a transaction's new node's
// owner, kNoDom for records that are no new node.

#include <xenstore/blob.hpp>
#include <xenstore/config.hpp>
#include <xenstore/error.hpp>
#include <xenstore/perms.hpp>

#include <cstddef>
#include <cstdint>

namespace xs {

enum class Kind : uint8_t { free, live, deleted, read };

struct Node {
    uint32_t hash;         // path_hash(path)
    uint32_t parent_hash;  // path_hash(parent path); 0 for "/"
    BlobRef path;
    BlobRef value;
    Perms perms;
    uint64_t gen;
    uint16_t layer;
    DomId charged;  // whose node quota this record counts against, or kNoDom
    Kind kind;
    bool exact_event;  // tombstone below the removed subtree's top: fires exact watches only
    uint32_t next_free;
    uint32_t hash_next;  // the next record in its bucket (Tree::find), or kNil
    uint32_t sib_prev, sib_next;  // its chain in the parent index (Tree::children): next, kNil at the
                                  // end; prev, the head's being the tail
    uint32_t own_prev, own_next;  // the list of what `charged` is charged (Domain::owned_head), kNil at the ends
};



class Tree {
public:
    explicit Tree(BlobPool& blobs) : blobs_(blobs) {}
    // Takes room for `nodes` records and their index from `a` (measures
    // only, if into is null). The index has a power of two of buckets, at
    // least one per record, so a chain holds about one record per layer of
    // its path.
    static void place(Arena& a, uint32_t nodes, Tree* into);
    // Empties the table and creates "/" owned by root_owner, readable by nobody else.
    void reset(DomId root_owner);

    // The record for (path, layer) of any kind, or -1. Looks at the records
    // in one bucket of the path index: those whose path hashes alike (every
    // layer's record of the path, and collisions), not at the whole table.
    int32_t find(const char* p, size_t n, uint16_t layer) const;
    // The parent index: the first of the records (any layer, any kind)
    // whose parent path hashes into the same bucket as `parent_hash`, then
    // the next of them; is_child() picks a path's children out. Costs the
    // children of the path (and of any whose hash collides), not the table.
    uint32_t children(uint32_t parent_hash) const { return pbucket_[parent_hash & mask_]; }
    uint32_t next_child(uint32_t i) const { return nodes_[i].sib_next; }
    // Records find() compared since reset (for the tests that show a
    // lookup's cost does not grow with the store).
    uint64_t probes() const { return probes_; }
    // The live node visible at path in the view of `layer`, or -1.
    int32_t view(const char* p, size_t n, uint16_t layer) const;

    Node& at(int32_t i) { return nodes_[i]; }
    const Node& at(int32_t i) const { return nodes_[i]; }
    // Every record index in use is below high().
    uint32_t high() const { return high_; }
    size_t capacity() const { return cap_; }
    size_t free_nodes() const { return (cap_ - high_) + free_count_; }
    size_t used_nodes() const { return cap_ - free_nodes(); }

    // A new record with the path stored and an empty value; ENOMEM if the
    // table or the byte pool is full.
    [[nodiscard]] Result<int32_t> alloc(const char* p, size_t n, uint16_t layer, Kind kind);
    // Releases the record and its strings.
    void release(int32_t i);
    // Replaces the value in place (blob.hpp: replace); on ENOMEM the old
    // value stays.
    [[nodiscard]] Status set_value(int32_t i, const char* v, size_t n);

    size_t path_of(int32_t i, char* out) const;
    // nullptr if both indices hold exactly the records in use, each where
    // its hashes say, with consistent links; else what is wrong (tests).
    const char* check_index() const;
    // Record i lies directly below the path p.
    bool is_child(int32_t i, const char* p, size_t n, uint32_t hash) const;
    // Record i is p or lies below it.
    bool is_self_or_below(int32_t i, const char* p, size_t n) const;

    uint64_t next_gen() { return ++gen_; }
    BlobPool& blobs() { return blobs_; }

private:
    BlobPool& blobs_;
    Node* nodes_ = nullptr;  // cap_ of them
    uint32_t cap_ = 0;
    uint32_t high_;
    uint32_t free_head_;
    uint32_t free_count_;
    uint64_t gen_;
    // The path index: every record not free is on the chain of
    // bucket_[hash & mask_], through Node::hash_next; and, but for the
    // root, on the chain of pbucket_[parent_hash & mask_], through
    // Node::sib_prev/sib_next.
    uint32_t* bucket_ = nullptr;
    uint32_t* pbucket_ = nullptr;
    uint32_t mask_ = 0;
    mutable uint64_t probes_;
};

}  // namespace xs
