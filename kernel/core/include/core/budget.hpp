#pragma once
// How much work one hypercall invocation may do before it gives the CPU back.
//
// Every guest-triggered path that can take long (page-table validation and
// devalidation, page copies, batches of grant operations, console output,
// multicall entries, taking a domain apart) spends from the budget of the
// invocation it runs in. The budget lives on the vCPU (Vcpu::work): the
// hypercall entry fills it, and every handler a multicall runs draws from the
// same one, so nesting buys no extra time. When it runs out, the hypercall
// continues itself (core/hypercall.hpp): the guest re-issues it with the
// arguments updated, after the scheduler has had its say.
//
// Units are "about one page-table entry validated": ~50 guest-visible
// instructions under -icount. kHypercallBudget is sized so that one
// invocation stays well under a millisecond of guest time (the goal: no
// guest-triggered path runs ~1 ms without a preemption point); every
// indivisible step costs far less than the whole budget, so a fresh
// invocation always makes progress.

#include <cstdint>

namespace core {

struct Budget {
    uint32_t left;
    // Takes n units if there are that many; false (and nothing taken) if not.
    [[nodiscard]] bool spend(uint32_t n = 1) {
        if (left < n) return false;
        left -= n;
        return true;
    }
    // Takes n units, or what is left.
    void charge(uint32_t n) { left = left > n ? left - n : 0; }
    bool exhausted() const { return left == 0; }
    static Budget unlimited() { return Budget{~0u}; }
};

// One invocation's budget.
constexpr uint32_t kHypercallBudget = 4096;

// What the longer steps cost, in budget units (measured under -icount).
namespace cost {
constexpr uint32_t kEntry = 1;         // one page-table entry validated or devalidated
constexpr uint32_t kRequest = 2;       // one mmu_update/mmuext_op request read and decoded
constexpr uint32_t kPage = 16;         // zeroing or copying a 4 KiB page (clear_page, copy_page, scrubbing)
constexpr uint32_t kGrantOp = 8;       // one grant map, unmap or copy (plus a share of the bytes copied)
constexpr uint32_t kMulticallEntry = 2;  // the dispatch of one multicall entry
constexpr uint32_t kConsoleChunk = 64; // 128 bytes of console output, read or written (~45 insns a byte)
constexpr uint32_t kLogLine = 8;       // one line into the kernel log
constexpr uint32_t kFrameScan = 1;     // 4 frames of the frame table looked at (domain teardown)
constexpr uint32_t kCapSlots = 1;      // 4 capability slots looked at (revoke, teardown)
}  // namespace cost

}  // namespace core
