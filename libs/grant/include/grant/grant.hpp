#pragma once
// Granting side of Xen v1 grant tables: a view over the granting domain's
// table (an array of abi::GrantEntryV1 shared with the hypervisor), and a
// free-list allocator of grant references.
//
// Ordering rules (as Xen's and Linux's gnttab code):
//   * grant: domid and frame are written first, then flags with a release
//     store, so whoever sees the entry type valid sees the right domid/frame;
//   * end: flags are cleared with a compare-exchange that fails while the
//     hypervisor has GTF_reading/GTF_writing set (the grantee still has the
//     page mapped or a copy is in flight); the page may be reused only after
//     end_access succeeded.
// The hypervisor sets/clears GTF_reading/GTF_writing concurrently, so every
// access to flags is atomic.

#include <cstddef>
#include <cstdint>

#include <abi/grant_table.hpp>
#include <abi/types.hpp>

namespace grant {

using abi::DomId;
using abi::GrantRef;

inline constexpr uint16_t kInUseFlags = abi::kGtfReading | abi::kGtfWriting;

// Xen reserves the first references (0: console, 1: xenstore, up to 7).
inline constexpr GrantRef kNrReservedEntries = 8;

class Table {
 public:
  Table() = default;
  Table(abi::GrantEntryV1* entries, uint32_t count) : entries_(entries), count_(count) {}

  uint32_t size() const { return count_; }

  // Lets domid access `frame` through `ref`. False if ref is out of range or
  // the entry is not free (flags not zero: still granted, or in use).
  bool grant_access(GrantRef ref, DomId domid, uint32_t frame, bool readonly) {
    if (ref >= count_) return false;
    abi::GrantEntryV1* e = &entries_[ref];
    if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != 0) return false;
    __atomic_store_n(&e->domid, domid, __ATOMIC_RELAXED);
    __atomic_store_n(&e->frame, frame, __ATOMIC_RELAXED);
    uint16_t flags = abi::kGtfPermitAccess | (readonly ? abi::kGtfReadonly : 0);
    // Xen's wmb(): domid/frame visible before the entry becomes valid.
    __atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
    return true;
  }

  // Revokes a grant unless the grantee is using it (gnttab_end_foreign_
  // access_ref): true once flags are 0 (also for an entry already free),
  // false if GTF_reading/GTF_writing is set or ref is out of range. The
  // compare-exchange makes "not in use" and "cleared" one atomic step, so the
  // hypervisor cannot start a mapping in between.
  bool end_access(GrantRef ref) {
    if (ref >= count_) return false;
    uint16_t* flags = &entries_[ref].flags;
    uint16_t cur = __atomic_load_n(flags, __ATOMIC_RELAXED);
    for (;;) {
      if (cur & kInUseFlags) return false;
      if (__atomic_compare_exchange_n(flags, &cur, uint16_t{0}, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_RELAXED))
        return true;
      // cur now holds the value that beat us; re-check it.
    }
  }

  // Whether the hypervisor reports the grantee reading or writing the frame.
  bool is_in_use(GrantRef ref) const {
    if (ref >= count_) return false;
    return (__atomic_load_n(&entries_[ref].flags, __ATOMIC_ACQUIRE) & kInUseFlags) != 0;
  }

  uint16_t flags(GrantRef ref) const {
    return ref < count_ ? __atomic_load_n(&entries_[ref].flags, __ATOMIC_ACQUIRE) : 0;
  }

 private:
  abi::GrantEntryV1* entries_ = nullptr;
  uint32_t count_ = 0;
};

// Free list of the references [first, first + count) kept in a caller-supplied
// array of count links (one per reference): links[i] is the next free
// reference's index, kEnd, or kAllocated. O(1) alloc and free; a double free
// or a foreign reference is refused.
class RefAllocator {
 public:
  static constexpr GrantRef kInvalid = 0xFFFFFFFFu;

  RefAllocator() = default;
  RefAllocator(uint32_t* links, uint32_t count, GrantRef first = kNrReservedEntries)
      : links_(links), count_(count), first_(first) {
    // Keep every reference (and the markers) representable.
    if (count_ > kAllocated - 1 || first_ > kInvalid - count_) count_ = 0;
    for (uint32_t i = 0; i < count_; ++i) links_[i] = i + 1 < count_ ? i + 1 : kEnd;
    head_ = count_ ? 0 : kEnd;
    free_ = count_;
  }

  // A free reference, or kInvalid if none is left.
  GrantRef alloc() {
    if (head_ == kEnd) return kInvalid;
    uint32_t i = head_;
    head_ = links_[i];
    links_[i] = kAllocated;
    --free_;
    return first_ + i;
  }

  // Returns ref to the pool. False (and nothing changes) if ref is not one
  // of ours or is not allocated. End the grant (Table::end_access) first.
  bool free(GrantRef ref) {
    if (ref < first_ || ref - first_ >= count_) return false;
    uint32_t i = ref - first_;
    if (links_[i] != kAllocated) return false;
    links_[i] = head_;
    head_ = i;
    ++free_;
    return true;
  }

  uint32_t free_count() const { return free_; }
  uint32_t capacity() const { return count_; }
  GrantRef first() const { return first_; }

 private:
  static constexpr uint32_t kEnd = 0xFFFFFFFFu;
  static constexpr uint32_t kAllocated = 0xFFFFFFFEu;

  uint32_t* links_ = nullptr;
  uint32_t count_ = 0;
  GrantRef first_ = 0;
  uint32_t head_ = kEnd;
  uint32_t free_ = 0;
};

}  // namespace grant
