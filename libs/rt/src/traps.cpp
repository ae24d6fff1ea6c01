#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

#include <abi/x86_64.hpp>

extern "C" char rt_trap_stubs[];
extern "C" char rt_event_entry[];

namespace rt {

namespace {
TrapHandler g_handlers[256];
EventHandler g_event_handler;
}  // namespace

uint64_t trap_entry_address(unsigned vector) { return reinterpret_cast<uint64_t>(rt_trap_stubs) + 32 * vector; }
uint64_t event_entry_address() { return reinterpret_cast<uint64_t>(rt_event_entry); }

long set_trap_handler(unsigned vector, TrapHandler h, unsigned dpl, bool mask_events) {
    g_handlers[vector & 255] = h;
    abi::TrapInfo table[2] = {};
    table[0].vector = static_cast<uint8_t>(vector);
    table[0].flags = abi::trap_info_flags(dpl, mask_events);
    table[0].cs = abi::kFlatKernelCs;
    table[0].address = h ? trap_entry_address(vector) : 0;
    if (!h) return 0;   // Xen has no way to remove one entry: keep the stub, drop the handler
    return hypercall(abi::Hypercall::set_trap_table, ptr(table));
}

void set_event_handler(EventHandler h) {
    g_event_handler = h;
    hypercall(abi::Hypercall::set_callbacks, event_entry_address(), 0, 0);
}

}  // namespace rt

extern "C" void rt_trap_dispatch(rt::TrapFrame* f) {
    if (f->vector == rt::kEventVector) {
        if (rt::g_event_handler) rt::g_event_handler(*f);
        else rt::vcpu_info().evtchn_upcall_pending = 0;
        return;
    }
    rt::TrapHandler h = rt::g_handlers[f->vector & 255];
    if (h && h(*f)) return;
    rt::printf("rt: unhandled exception %lu at rip %#lx (error code %#lx)\n", f->vector, f->rip, f->error_code);
    rt::shutdown(abi::ShutdownReason::crash);
}
