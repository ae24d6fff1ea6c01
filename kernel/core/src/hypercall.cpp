#include <core/debugreg.hpp>
#include <core/descriptors.hpp>
#include <core/hypercall.hpp>
#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/platform.hpp>
#include <core/trace.hpp>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>

namespace core {

namespace {

using Handler = int64_t (*)(Vcpu&, Regs&);

struct Table {
    Handler h[64] = {};
    constexpr Table() {
        using H = abi::Hypercall;
        h[unsigned(H::set_trap_table)] = hc_set_trap_table;
        h[unsigned(H::set_gdt)] = hc_set_gdt;
        h[unsigned(H::update_descriptor)] = hc_update_descriptor;
        h[unsigned(H::stack_switch)] = hc_stack_switch;
        h[unsigned(H::set_callbacks)] = hc_set_callbacks;
        h[unsigned(H::fpu_taskswitch)] = hc_fpu_taskswitch;
        h[unsigned(H::set_debugreg)] = hc_set_debugreg;
        h[unsigned(H::get_debugreg)] = hc_get_debugreg;
        h[unsigned(H::update_va_mapping)] = hc_update_va_mapping;
        h[unsigned(H::xen_version)] = hc_xen_version;
        h[unsigned(H::vm_assist)] = hc_vm_assist;
        h[unsigned(H::vcpu_op)] = hc_vcpu_op;
        h[unsigned(H::console_io)] = hc_console_io;
        h[unsigned(H::iret)] = hc_iret;
        h[unsigned(H::set_segment_base)] = hc_set_segment_base;
        h[unsigned(H::sched_op)] = hc_sched_op;
        h[unsigned(H::callback_op)] = hc_callback_op;
        h[unsigned(H::mmu_update)] = hc_mmu_update;
        h[unsigned(H::mmuext_op)] = hc_mmuext_op;
        h[unsigned(H::memory_op)] = hc_memory_op;
        h[unsigned(H::multicall)] = hc_multicall;
        h[unsigned(H::set_timer_op)] = hc_set_timer_op;
        h[unsigned(H::event_channel_op)] = hc_event_channel_op;
        h[unsigned(H::physdev_op)] = hc_physdev_op;
        h[unsigned(H::grant_table_op)] = hc_grant_table_op;
        h[unsigned(H::domctl)] = hc_domctl;
        h[unsigned(H::cap_op)] = hc_cap_op;
    }
};
constexpr Table kTable;

// While tracing (core/trace.hpp), every number goes through traced_call,
// which times the real handler and records it; otherwise kTable is used as
// it is. Switching tables costs the untraced path one load, not a branch.
int64_t traced_call(Vcpu& v, Regs& r) {
    uint64_t nr = r.rax;   // below 64: dispatch looked it up
    Handler h = kTable.h[nr];
    uint16_t dom = v.domain->id, vcpu = uint16_t(v.id);   // the vCPU may be gone afterwards
    uint64_t t0 = platform::now_ns();
    int64_t ret = h ? h(v, r) : abi::neg(abi::Errno::enosys);
    uint64_t t1 = platform::now_ns();
    if (g_trace_on)   // not when this very call stopped it
        trace_put(abi::TraceKind::hypercall, dom, vcpu, (nr & 0xFFFF) | uint64_t(uint32_t(int32_t(ret))) << 32,
                  t1 - t0, t0);
    return ret;
}
struct TracedTable : Table {
    constexpr TracedTable() {
        for (auto& x : h) x = traced_call;
    }
};
constexpr TracedTable kTracedTable;
const Table* g_table = &kTable;

// What one call of each hypercall costs before anything it charges itself
// (core/budget.hpp): what a multicall entry of it spends up front. Measured
// under -icount; the longer work inside (page tables, batches, bytes) is
// charged where it happens.
struct Costs {
    uint8_t c[64] = {};
    constexpr Costs() {
        using H = abi::Hypercall;
        for (auto& x : c) x = 2;   // a refusal, or a few fields set
        c[unsigned(H::sched_op)] = 8;          // poll: up to 16 ports
        c[unsigned(H::memory_op)] = 8;         // the M2P's block list
        c[unsigned(H::event_channel_op)] = 64; // a free port among 1024
        c[unsigned(H::physdev_op)] = 8;        // config space through I/O ports
        c[unsigned(H::domctl)] = 64;           // create charges more itself
        c[unsigned(H::cap_op)] = 16;           // derivation-tree updates
    }
};
constexpr Costs kCosts;

}  // namespace

void hypercall_trace(bool on) { g_table = on ? &kTracedTable : &kTable; }

uint32_t hypercall_base_cost(uint64_t nr) { return nr < 64 ? kCosts.c[nr] : 2; }

void hypercall_dispatch(Vcpu& v, Regs& r) {
    uint64_t nr = r.rax;
    Handler h = nr < 64 ? g_table->h[nr] : nullptr;
    int64_t ret = h ? h(v, r) : abi::neg(abi::Errno::enosys);
    // Rights a batch took from devices (grant unmaps) leave the IOTLB
    // before the caller, or anyone, runs again: one flush per batch.
    iommu_flush_pending();
    // The vCPU may be gone (shutdown, crash); its frame is then never resumed.
    r.rax = static_cast<uint64_t>(ret);
}

namespace {
// The longest invocation seen: what it was and who made it.
uint64_t g_longest_nr = 0;
DomId g_longest_dom = 0;
}  // namespace

uint64_t g_longest_hypercall_ticks = 0;

void hypercall(Vcpu& v, Regs& r) {
    v.work = Budget{kHypercallBudget};
    hypercall_dispatch(v, r);
}

void hypercall_record(uint64_t ticks, uint64_t nr, DomId dom) {
    if (ticks <= g_longest_hypercall_ticks) return;
    g_longest_hypercall_ticks = ticks;
    g_longest_nr = nr;
    g_longest_dom = dom;
}

uint64_t longest_hypercall_ns() {
    uint64_t khz = platform::tsc_khz();
    return khz ? g_longest_hypercall_ticks * 1'000'000 / khz : 0;
}

void hypercall_report() {
    log("longest hypercall invocation: %lu us (hypercall %lu of domain %u)", longest_hypercall_ns() / 1000,
        g_longest_nr, g_longest_dom);
}

int64_t hypercall_continue(Regs& r) {
    r.rip -= 2;        // back onto the `syscall` instruction
    r.rcx = r.rip;     // keeps the frame eligible for sysret
    return static_cast<int64_t>(r.rax);
}

}  // namespace core
