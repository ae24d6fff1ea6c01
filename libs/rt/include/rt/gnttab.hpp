#pragma once
// Grant tables from inside a domain: our own table (to grant our pages to
// other domains) and a window of our address space where other domains'
// granted pages are mapped (map_grant_ref with a host virtual address).

#include <cstdint>

#include <abi/grant_table.hpp>
#include <grant/grant.hpp>
#include <rt/hypercall.hpp>

namespace rt {

inline long gnttab_op(abi::GnttabOp op, void* arg, uint64_t count = 1) {
    return hypercall(abi::Hypercall::grant_table_op, uint64_t(op), ptr(arg), count);
}

// Our grant table (one frame, set up and mapped on first use). An empty
// table (size() == 0) if the hypervisor refused it.
grant::Table& grant_table();

// How many foreign pages may be mapped at once, unless the domain gives
// the runtime a window of its own (set_foreign_window).
inline constexpr unsigned kForeignWindowPages = 16;

struct ForeignSlot {
    bool used;
    uint32_t handle;
};
// A back-end serving many domains gives the runtime a bigger window: `n`
// pages of its own (static, page-aligned, in its image) and as many slots.
// Call it before the first map_grant.
void set_foreign_window(uint8_t (*pages)[4096], ForeignSlot* slots, unsigned n);

// Maps the page `dom` granted us as `ref` into the foreign window; the
// address, or nullptr with the grant status (abi::GntStatus, negative) or a
// negative errno in *error (may be null).
void* map_grant(uint16_t dom, uint32_t ref, bool readonly, long* error = nullptr);

// Unmaps a page map_grant returned; its window slot is free again. 0 or a
// negative status.
long unmap_grant(void* va);

}  // namespace rt
