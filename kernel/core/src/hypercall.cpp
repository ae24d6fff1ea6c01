#include <core/hypercall.hpp>

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
        h[unsigned(H::stack_switch)] = hc_stack_switch;
        h[unsigned(H::set_callbacks)] = hc_set_callbacks;
        h[unsigned(H::fpu_taskswitch)] = hc_fpu_taskswitch;
        h[unsigned(H::update_va_mapping)] = hc_update_va_mapping;
        h[unsigned(H::xen_version)] = hc_xen_version;
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

}  // namespace

void hypercall_dispatch(Vcpu& v, Regs& r) {
    uint64_t nr = r.rax;
    Handler h = nr < 64 ? kTable.h[nr] : nullptr;
    int64_t ret = h ? h(v, r) : abi::neg(abi::Errno::enosys);
    // The vCPU may be gone (shutdown, crash); its frame is then never resumed.
    r.rax = static_cast<uint64_t>(ret);
}

void hypercall(Vcpu& v, Regs& r) {
    v.work = Budget{kHypercallBudget};
    hypercall_dispatch(v, r);
}

int64_t hypercall_continue(Regs& r) {
    r.rip -= 2;        // back onto the `syscall` instruction
    r.rcx = r.rip;     // keeps the frame eligible for sysret
    return static_cast<int64_t>(r.rax);
}

}  // namespace core
