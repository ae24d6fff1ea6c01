// The attacker of the hypercalls and emulations added for Linux guests
// (tests/system/attacks.cmake: attack_pv_*), beside guests/victim. One image,
// the scenario chosen on the command line:
//
//   role=gdt        guest GDTs: set_gdt, update_descriptor, descriptor pages
//   role=ptwr       writable page tables: direct writes to page tables
//   role=vcpu       vcpu_op: vcpu_info and runstate areas, timers
//   role=emulate    privileged instructions: MSRs, CRs, DRs, ports, cli
//   role=evtchn     event channels: bind_ipi, bind_vcpu, sends on IPI ports
//   role=iret       the iret hypercall: bad frames to the failsafe callback
//   role=iret_crash how=...  bad frames that must crash this domain (alone)
//   role=helper     the other end of a RING: a read-only grant, IPI ports
//   role=witness    reads its own segment registers while others run
//
// Each scenario's file says what it attacks and what the hypervisor must do.

#include "env.hpp"

void rt::main() {
    rt::events_init();
    pv::catch_faults();
    const char* v;
    size_t n;
    char role[24] = "";
    if (rt::cmdline_value("role", &v, &n) && n < sizeof role) {
        __builtin_memcpy(role, v, n);
        role[n] = 0;
    }
    char how[32] = "";
    if (rt::cmdline_value("how", &v, &n) && n < sizeof how) {
        __builtin_memcpy(how, v, n);
        how[n] = 0;
    }
    auto is = [&](const char* s) {
        size_t i = 0;
        for (; s[i] && role[i] == s[i]; ++i) {
        }
        return s[i] == 0 && role[i] == 0;
    };
    // Let the victim get going first.
    attack::sleep_ns(100 * pv::kMs);
    if (is("gdt")) pv::scenario_gdt();
    else if (is("ptwr")) pv::scenario_ptwr();
    else if (is("vcpu")) pv::scenario_vcpu();
    else if (is("emulate")) pv::scenario_emulate();
    else if (is("evtchn")) pv::scenario_evtchn();
    else if (is("iret")) pv::scenario_iret();
    else if (is("iret_crash")) pv::scenario_iret_crash(how);
    else if (is("helper")) pv::role_helper();
    else if (is("witness")) pv::role_witness();
    else rt::check(false, "attack.pv.role", "unknown role '%s'", role);
    attack::done();
}
