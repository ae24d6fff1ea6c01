// domctl: creating and controlling domains, gated by Domain capabilities.
// create needs an Untyped capability (the right to turn free memory into
// domains) and hands the caller root capabilities for the new domain; every
// other command needs a Domain capability naming its target with the right
// for it (control or build).

#include <core/caps.hpp>
#include <core/domain.hpp>
#include <core/gnttab.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/iommu.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pv_build.hpp>
#include <core/sched.hpp>
#include <core/timer.hpp>
#include <core/trace.hpp>

#include <abi/errno.hpp>
#include <abi/moat.hpp>
#include <abi/trace.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>
#include <cap/ops.hpp>

namespace core {

namespace {

constexpr long err(abi::Errno e) { return abi::neg(e); }

bool is_name_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
           ch == '-';
}

// module_info / module_read: the boot modules (images, the manifest), each
// readable with a Module capability naming its index.
long module_op(Vcpu& v, abi::MoatDomctl& op, uint64_t uop) {
    Domain& d = *v.domain;
    abi::DomctlModule& m = op.u.module;
    if (!caps::allows(d, cap::Type::module, m.index, cap::right::use)) {
        log_for(d, "domain %u: reading boot module %u refused: no Module capability for it", d.id, m.index);
        return err(abi::Errno::eperm);
    }
    platform::BootModule bm;
    if (!platform::boot_module(m.index, &bm)) return err(abi::Errno::enoent);
    if (static_cast<abi::DomctlCmd>(op.cmd) == abi::DomctlCmd::module_info) {
        m.size = bm.size;
        // The file name of the module string's first word.
        const char* end = bm.cmdline;
        while (*end && *end != ' ') ++end;
        const char* name = bm.cmdline;
        for (const char* p = bm.cmdline; p < end; ++p)
            if (*p == '/') name = p + 1;
        base::snformat(m.name, sizeof m.name, "%.*s", int(end - name), name);
        return put_guest(uop, op) ? 0 : err(abi::Errno::efault);
    }
    if (m.offset > bm.size || m.len > abi::kModuleReadMax || m.len > bm.size - m.offset) return err(abi::Errno::einval);
    v.work.charge(uint32_t(m.len / 4096) * cost::kPage);
    return platform::copy_to_guest(m.buf, bm.data + m.offset, m.len) ? 0 : err(abi::Errno::efault);
}

long create(Vcpu& v, abi::MoatDomctl& op) {
    Domain& d = *v.domain;
    abi::DomctlCreate& c = op.u.create;
    v.work.charge(512);   // a domain slot made new, its CSpace, the caller's free slots counted
    if (!caps::holds_type(d, cap::Type::untyped, cap::right::use)) return err(abi::Errno::eperm);
    if (c.vcpus != 1 || c.max_pages == 0 || c.max_pages > kMaxDomainPages) return err(abi::Errno::einval);
    if (c.cspace_slots == 0 || c.cspace_slots > caps::kMaxSlots || c.weight > 65535 || c.cap_pct > 100)
        return err(abi::Errno::einval);
    // The caller must have room for the three capabilities it gets back.
    if (d.cspace->free_count() < 3) return err(abi::Errno::enospc);

    char name[kDomainNameLen];
    base::snformat(name, sizeof name, "d%u-child", d.id);
    Domain* x = domain_alloc(name, c.cspace_slots);
    if (!x) return err(abi::Errno::enospc);
    auto si = alloc_domain_frame(x->id);
    if (!si) {
        domain_destroy_now(*x);   // nothing in it yet
        return err(abi::Errno::enomem);
    }
    // Its name as the caller gives it, if it is one ([A-Za-z0-9_.-]+).
    size_t n = 0;
    while (n < sizeof c.name && c.name[n] && is_name_char(c.name[n])) ++n;
    if (n > 0 && (n == sizeof c.name || c.name[n] == '\0'))
        base::snformat(x->name, sizeof x->name, "%.*s", int(n), c.name);
    else
        base::snformat(x->name, sizeof x->name, "dom%u", x->id);
    x->held_after_shutdown = true;
    x->shared_info_mfn = *si;
    domain_count_shared_info(*x);
    x->shared_info = frame_va<abi::SharedInfo>(*si);
    for (auto& vi : x->shared_info->vcpu_info) vi.evtchn_upcall_mask = 1;
    x->max_pages = c.max_pages;
    x->paused = 1;   // runs once it has a context and is unpaused
    x->vcpu[0].info = &x->shared_info->vcpu_info[0];
    x->vcpu[0].state = VcpuState::down;
    sched_set_params(x->vcpu[0], c.weight ? c.weight : 256, c.cap_pct);

    long s1 = caps::give_root(d, cap::Capability{cap::Type::domain,
                                                 cap::right::control | cap::right::build | cap::right::install_caps,
                                                 x->id, 0, 0});
    long s2 = caps::give_root(d, cap::Capability{cap::Type::grant,
                                                 cap::right::map_ro | cap::right::map_rw | cap::right::copy, x->id, 0, 0});
    long s3 = caps::give_root(d, cap::Capability{cap::Type::event, cap::right::bind, x->id, 0, 0});
    c.slot_domain = uint32_t(s1);
    c.slot_grant = uint32_t(s2);
    c.slot_event = uint32_t(s3);
    op.domain = x->id;
    log("domain %u created domain %u (%lu pages at most)", d.id, x->id, c.max_pages);
    return 0;
}

// The new vCPU state of a domain being built: registers, page table (which
// validates now, against the domain's own frames), callbacks, stack.
long set_context(Vcpu& caller, Domain& x, uint64_t ctx) {
    Vcpu& v = x.vcpu[0];
    abi::CpuUserRegs ur;
    uint64_t cr3, kss, ksp, flags, ev, fs, sc;
    if (!get_guest(ur, ctx + offsetof(abi::VcpuGuestContext, user_regs)) ||
        !get_guest(cr3, ctx + offsetof(abi::VcpuGuestContext, ctrlreg) + 3 * sizeof(uint64_t)) ||
        !get_guest(kss, ctx + offsetof(abi::VcpuGuestContext, kernel_ss)) ||
        !get_guest(ksp, ctx + offsetof(abi::VcpuGuestContext, kernel_sp)) ||
        !get_guest(flags, ctx + offsetof(abi::VcpuGuestContext, flags)) ||
        !get_guest(ev, ctx + offsetof(abi::VcpuGuestContext, event_callback_eip)) ||
        !get_guest(fs, ctx + offsetof(abi::VcpuGuestContext, failsafe_callback_eip)) ||
        !get_guest(sc, ctx + offsetof(abi::VcpuGuestContext, syscall_callback_eip)))
        return err(abi::Errno::efault);
    if (!is_canonical(ur.rip) || !is_canonical(ur.rsp)) return err(abi::Errno::einval);
    // Callbacks as set_callbacks takes them: none, or a guest code address.
    for (uint64_t cb : {ev, fs, sc})
        if (cb && !is_guest_address(cb)) return err(abi::Errno::einval);

    Mfn l4 = cr3 >> 12;
    // Validating its tables may take long: the caller's budget, continued
    // (kRestart) as often as needed; the validation resumes where it stopped.
    MmCtx c{x, v, caller.work};
    if (v.guest_table != l4) {
        long r = get_page_and_type(c, l4, PageType::l4);
        if (r != 0) return r;
        if (v.guest_table) put_page_and_type(c, v.guest_table);
        v.guest_table = l4;
    }
    Regs& g = v.regs;
    g = Regs{};
    for (auto& s : v.data_sel) s = 0;   // a new context starts with null data selectors
    g.rax = ur.rax; g.rbx = ur.rbx; g.rcx = ur.rcx; g.rdx = ur.rdx; g.rsi = ur.rsi; g.rdi = ur.rdi;
    g.rbp = ur.rbp; g.r8 = ur.r8; g.r9 = ur.r9; g.r10 = ur.r10; g.r11 = ur.r11; g.r12 = ur.r12;
    g.r13 = ur.r13; g.r14 = ur.r14; g.r15 = ur.r15;
    g.rip = ur.rip;
    g.rsp = ur.rsp;
    g.rflags = sanitize_rflags(ur.rflags);
    g.cs = sel::kGuestCs64;
    g.ss = sel::kGuestDs;
    v.kernel_mode = true;
    v.kernel_ss = kss | 3;
    v.kernel_sp = ksp;
    v.event_callback = ev;
    v.failsafe_callback = fs;
    v.syscall_callback = sc;
    vcpu_reset_fpu(v);
    (void)flags;
    publish_time(v);
    vcpu_start(v);
    return 0;
}

}  // namespace

int64_t hc_domctl(Vcpu& v, Regs& r) {
    Domain& d = *v.domain;
    abi::MoatDomctl op;
    if (!get_guest(op, r.rdi)) return err(abi::Errno::efault);
    if (op.version != abi::kMoatDomctlVersion) return err(abi::Errno::eacces);
    auto cmd = static_cast<abi::DomctlCmd>(op.cmd);
    if (cmd == abi::DomctlCmd::create) {
        long rc = create(v, op);
        if (rc == 0 && !put_guest(r.rdi, op)) return err(abi::Errno::efault);
        return rc;
    }

    if (cmd == abi::DomctlCmd::module_info || cmd == abi::DomctlCmd::module_read) return module_op(v, op, r.rdi);
    if (cmd == abi::DomctlCmd::trace) {   // core/trace.hpp: its own capability (or none, to mark)
        abi::DomctlTrace t;
        static_assert(sizeof t <= sizeof op.u.raw);
        __builtin_memcpy(&t, op.u.raw, sizeof t);
        long rc = trace_ctl(v, t);
        if (rc != 0 || static_cast<abi::TraceCtl>(t.op) == abi::TraceCtl::mark) return rc;
        __builtin_memcpy(op.u.raw, &t, sizeof t);
        return put_guest(r.rdi, op) ? 0 : err(abi::Errno::efault);
    }
    if (cmd == abi::DomctlCmd::physinfo) {
        // What memory is left is the business of whoever may turn it into domains.
        if (!caps::holds_type(d, cap::Type::untyped, cap::right::use)) return err(abi::Errno::eperm);
        op.u.physinfo = abi::DomctlPhysinfo{frame_allocator().total_frames(), frame_allocator().free_frames(),
                                            held_frames(), domains_in_use(),
                                            iommu_enabled() ? abi::kPhysinfoDmaConfined : 0u, domain_bytes()};
        return put_guest(r.rdi, op) ? 0 : err(abi::Errno::efault);
    }

    uint32_t need = cmd == abi::DomctlCmd::setvcpucontext || cmd == abi::DomctlCmd::set_grant ? cap::right::build
                                                                                              : cap::right::control;
    if (!caps::allows(d, cap::Type::domain, op.domain, need)) {
        log_for(d, "domain %u: domctl %u on domain %u refused: no Domain capability with that right", d.id, op.cmd, op.domain);
        return err(abi::Errno::eperm);
    }
    Domain* x = domain_at(op.domain);
    // A stopped domain can still be looked at and destroyed, nothing else; a
    // dying one only destroyed (the continuation of its destroy).
    bool ok = x && (x->state == DomainState::running ||
                    (x->state == DomainState::stopped &&
                     (cmd == abi::DomctlCmd::destroy || cmd == abi::DomctlCmd::getinfo)) ||
                    (x->state == DomainState::dying && cmd == abi::DomctlCmd::destroy));
    if (!ok) return err(abi::Errno::esrch);

    switch (cmd) {
    case abi::DomctlCmd::destroy:
        if (x == &d) return err(abi::Errno::einval);   // a domain ends itself with sched_op shutdown
        if (x->state != DomainState::dying) {
            log("domain %u destroyed domain %u (%s)", d.id, x->id, x->name);
            domain_kill(*x);
            x->destroyer = d.id;
        }
        // Taking it apart takes as many invocations as it needs; the call
        // returns once the slot is free (its capabilities go last, so ours
        // still names it until then).
        if (!domain_teardown(*x, v.work)) return hypercall_continue(r);
        return 0;
    case abi::DomctlCmd::pause:
        domain_pause(*x);
        return 0;
    case abi::DomctlCmd::unpause:
        if (x->paused == 0) return err(abi::Errno::einval);
        domain_unpause(*x);
        return 0;
    case abi::DomctlCmd::getinfo:
        op.u.info = abi::DomctlInfo{};
        op.u.info.state = x->state == DomainState::stopped ? abi::kDomainStateStopped : abi::kDomainStateRunning;
        op.u.info.mapped_grants = gnttab_mapped_by_others(*x);
        op.u.info.paused = x->paused;
        op.u.info.shutdown_reason = uint32_t(x->shutdown_reason);
        op.u.info.tot_pages = x->tot_pages;
        op.u.info.max_pages = x->max_pages;
        op.u.info.shared_info_mfn = x->shared_info_mfn;
        op.u.info.cpu_time_ns = sched_runtime_ns(x->vcpu[0]);
        op.u.info.free_frames = frame_allocator().free_frames();
        static_assert(sizeof op.u.info.name == kDomainNameLen);
        __builtin_memcpy(op.u.info.name, x->name, kDomainNameLen);
        op.u.info.name[kDomainNameLen - 1] = 0;
        op.u.info.events_sent = x->events_sent;
        op.u.info.grant_ops = x->grant_ops;
        op.u.info.grant_copy_bytes = x->grant_copy_bytes;
        return put_guest(r.rdi, op) ? 0 : err(abi::Errno::efault);
    case abi::DomctlCmd::setvcpucontext: {
        long rc = set_context(v, *x, op.u.context);
        return rc == kRestart ? hypercall_continue(r) : rc;
    }
    case abi::DomctlCmd::set_grant:
        return gnttab_seed(*x, op.u.grant.ref, op.u.grant.flags, op.u.grant.domid, op.u.grant.frame);
    case abi::DomctlCmd::set_weight:
        if (op.u.weight == 0 || op.u.weight > 65535) return err(abi::Errno::einval);
        sched_set_params(x->vcpu[0], op.u.weight, 0);
        return 0;
    default:
        return err(abi::Errno::enosys);
    }
}

}  // namespace core
