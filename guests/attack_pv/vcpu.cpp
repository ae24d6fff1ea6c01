// vcpu_op (kernel/core/src/hc_vcpu.cpp): where the hypervisor writes a
// vCPU's vcpu_info (a frame it keeps, by reference) and its runstate (a
// guest virtual address, copied to as the guest, on every switch to it).
//
// What must hold: vcpu_info moves only into a frame of the caller's own that
// may be ordinary writable memory, at an aligned offset with the whole
// structure inside the page -- never into another domain's frame, the
// hypervisor's, one past RAM, one of its page tables or descriptor pages;
// and while it is there the frame cannot be given back or become a page
// table. The runstate area is written only where the guest itself could
// write: never through a read-only mapping (its page tables, a read-only
// grant of another domain, a descriptor page), never at a hypervisor
// address (the direct map and the image alias of a frame we watch, the
// M2P), never past the end of the page it starts in into a read-only one,
// and never into a frame the guest gave back. vCPUs other than 0 do not
// exist, timers have bounds.
//
// Xen refuses a runstate area in the hypervisor's range with -EFAULT (its
// guest_handle_okay); Moat takes any address and simply never writes where
// the guest could not: either is fine here, as long as nothing is written.

#include "env.hpp"

namespace pv {

namespace {

alignas(4096) uint8_t g_runstate_page[4096];
alignas(4096) uint8_t g_pages[4][4096];   // [0] watched, [1] writable, [2] read-only after it, [3] to give back

long vcpu_op(abi::VcpuOp op, uint64_t vcpu, void* arg) {
    return rt::hypercall(abi::Hypercall::vcpu_op, uint64_t(op), vcpu, rt::ptr(arg));
}
long register_runstate(uint64_t va, uint64_t vcpu = 0) {
    abi::VcpuRegisterArea a{va};
    return vcpu_op(abi::VcpuOp::register_runstate_memory_area, vcpu, &a);
}
long register_info(uint64_t mfn, uint32_t offset, uint32_t rsvd = 0, uint64_t vcpu = 0) {
    abi::VcpuRegisterVcpuInfo a{mfn, offset, rsvd};
    return vcpu_op(abi::VcpuOp::register_vcpu_info, vcpu, &a);
}

// Lets the hypervisor switch to us a few times (each switch publishes the runstate).
void switches() {
    for (unsigned i = 0; i < 4; ++i) rt::sched_op(abi::SchedOp::yield);
    attack::sleep_ns(2 * kMs);
}

uint64_t g_snap[512];
void snapshot(const volatile uint64_t* p) {
    for (unsigned i = 0; i < 512; ++i) g_snap[i] = p[i];
}
unsigned changed_words(const volatile uint64_t* p) {
    unsigned n = 0;
    for (unsigned i = 0; i < 512; ++i) n += p[i] != g_snap[i];
    return n;
}

void runstate_legit() {
    auto* rs = reinterpret_cast<volatile abi::VcpuRunstateInfo*>(g_runstate_page);
    long r = register_runstate(rt::ptr(rs));
    switches();
    uint64_t t0 = rs->time[0];
    switches();
    check(r == 0 && rs->state == int32_t(abi::RunstateState::running) && rs->time[0] > t0 && t0 > 0,
          "attack.pv.vcpu.runstate_legit", "rc %ld, state %d, running time %lu -> %lu", r, rs->state, t0, rs->time[0]);
}

// The hypervisor's addresses, aimed at a frame of ours we watch (the direct
// map and the image alias of it), the M2P and the rest of the range.
void runstate_hypervisor() {
    uint64_t w = attack::mfn_of_va(g_pages[0]);
    auto* watched = reinterpret_cast<volatile uint64_t*>(g_pages[0]);
    for (unsigned i = 0; i < 512; ++i) watched[i] = 0x5741544348000000ull | i;
    const volatile uint64_t* m2p = reinterpret_cast<const volatile uint64_t*>(abi::kRoMptVirtStart + 200 * 4096);
    uint64_t m2p_first[512];
    for (unsigned i = 0; i < 512; ++i) m2p_first[i] = m2p[i];
    const uint64_t vas[] = {
        attack::kDirectMapVirt + w * 4096,       attack::kDirectMapVirt + w * 4096 + 2048,
        attack::kKernelVirt + w * 4096,          abi::kRoMptVirtStart + 200 * 4096,
        abi::kRoMptVirtStart,                    attack::kKernelVirt,
        attack::kHypervisorTop,                  abi::kHypervisorVirtStart - 24,   // across into the range
        0x0000800000000000ull,                   0xFFFF7FFFFFFFFFF0ull,
    };
    unsigned clean = 0, n = 0, refused = 0;
    for (uint64_t va : vas) {
        ++n;
        snapshot(watched);
        long r = register_runstate(va);
        switches();
        unsigned m2p_bad = 0;
        for (unsigned i = 0; i < 512; ++i) m2p_bad += m2p[i] != m2p_first[i];
        unsigned bad = changed_words(watched);
        clean += bad == 0 && m2p_bad == 0;
        refused += r != 0;
        if (bad || m2p_bad)
            rt::printf("evidence: runstate area at %#lx (rc %ld): %u words of our watched frame and %u of the M2P changed\n",
                       va, r, bad, m2p_bad);
    }
    (void)register_runstate(0);
    rt::printf("runstate areas at hypervisor and non-canonical addresses: %u of %u refused at once, the rest "
               "accepted and never written\n", refused, n);
    check(clean == n, "attack.pv.vcpu.runstate_hypervisor_addresses_not_written", "%u of %u wrote nothing", clean, n);
}

// Read-only mappings: our page tables, the helper's read-only grant, a
// descriptor page of ours, a frame of ours mapped read-only.
void runstate_readonly(uint64_t grant_va) {
    Tables t = own_tables();
    uint64_t gdt = spare_frame();
    uint64_t d[2] = {0, code64(3)};
    bool gdt_ok = fill_frame(gdt, d, 2);
    uint64_t fl[1] = {gdt};
    gdt_ok &= set_gdt(fl, 2) == 0 && win_map(1, gdt, false) == 0;
    uint64_t ro_own = spare_frame();
    bool own_ok = fill_frame(ro_own, nullptr, 0, 0x524F524F524F524Full) && win_map(2, ro_own, false) == 0;
    struct {
        const char* what;
        const volatile uint64_t* page;
    } targets[] = {
        {"our L4", t.ro[4]}, {"our L3", t.ro[3]}, {"our L2", t.ro[2]}, {"our L1", t.ro[1]},
        {"the helper's read-only grant", reinterpret_cast<const volatile uint64_t*>(grant_va)},
        {"our descriptor page", win_words(1)}, {"a frame of ours mapped read-only", win_words(2)},
    };
    unsigned clean = 0, n = 0;
    for (auto& tg : targets) {
        if (!tg.page) continue;
        for (uint64_t off : {0ull, 8ull, 4000ull}) {
            ++n;
            snapshot(tg.page);
            long r = register_runstate(rt::ptr(tg.page) + off);
            switches();
            unsigned bad = changed_words(tg.page);
            clean += bad == 0;
            if (bad) rt::printf("evidence: runstate area in %s (+%lu, rc %ld): %u words changed\n", tg.what, off, r, bad);
        }
    }
    (void)register_runstate(0);
    win_restore(1);
    win_restore(2);
    (void)set_gdt(nullptr, 0);
    check(gdt_ok && own_ok && clean == n, "attack.pv.vcpu.runstate_readonly_pages_not_written",
          "%u of %u wrote nothing (descriptor page %d, read-only frame %d)", clean, n, gdt_ok, own_ok);
}

// An area that starts 24 bytes before the end of a writable page, with a
// read-only page after it.
void runstate_page_end() {
    auto* ro = reinterpret_cast<volatile uint64_t*>(g_pages[2]);
    for (unsigned i = 0; i < 512; ++i) ro[i] = 0x454E44454E440000ull | i;
    long m = rt::update_va_mapping(rt::ptr(g_pages[2]), pte(attack::mfn_of_va(g_pages[2]), false));
    snapshot(ro);
    long r = register_runstate(rt::ptr(g_pages[1]) + 4096 - 24);
    switches();
    unsigned bad = changed_words(ro);
    (void)register_runstate(0);
    (void)attack::restore(g_pages[2]);
    check(m == 0 && bad == 0, "attack.pv.vcpu.runstate_page_end_not_crossed", "rc %ld, %u words of the read-only page changed",
          r, bad);
}

// Registered on a frame we then unmap and give back: nothing is written
// into it (nor into any frame we get next).
void runstate_given_back() {
    uint64_t z = spare_frame();
    long m = rt::update_va_mapping(rt::ptr(g_pages[3]), pte(z, true));
    auto* rs = reinterpret_cast<volatile abi::VcpuRunstateInfo*>(g_pages[3]);
    long r = register_runstate(rt::ptr(rs));
    switches();
    bool written = rs->time[0] > 0;
    long u = rt::update_va_mapping(rt::ptr(g_pages[3]), 0);
    uint64_t frames[1] = {z};
    long back = attack::memory_op(abi::MemoryOp::decrease_reservation, frames, 1);
    switches();
    // Take frames again (the one given back among them, if the allocator
    // hands it out): each must stay as it came (zero) while we run on.
    uint64_t got[16] = {};
    long again = attack::memory_op(abi::MemoryOp::increase_reservation, got, 16);
    unsigned nonzero = 0, same = 0;
    for (int round = 0; round < 2; ++round) {
        switches();
        for (long i = 0; i < again; ++i) {
            same += round == 0 && got[i] == z;
            if (win_map(4, got[i], false) != 0) continue;
            for (unsigned k = 0; k < 512; ++k) nonzero += win_words(4)[k] != 0;
            win_restore(4);
        }
    }
    (void)register_runstate(0);
    // Give them back again: we need nothing of them.
    if (again > 0) (void)attack::memory_op(abi::MemoryOp::decrease_reservation, got, uint64_t(again));
    (void)attack::restore(g_pages[3]);
    rt::printf("runstate frame %#lx given back (%ld); %ld frames taken again, %s it\n", z, back, again,
               same ? "among them" : "not");
    check(m == 0 && r == 0 && written && u == 0 && back == 1 && again > 0 && nonzero == 0,
          "attack.pv.vcpu.runstate_given_back_frame_not_written",
          "registered %ld (written %d), unmapped %ld, given back %ld, taken %ld, %u non-zero words", r, written, u, back,
          again, nonzero);
}

void other_vcpus_and_timers() {
    unsigned ok = 0, n = 0;
    for (uint64_t vcpu : {1ull, 2ull, 31ull, 0xFFFFFFFFull, 0x100000000ull, ~0ull}) {
        ++n;
        abi::VcpuRegisterArea a{rt::ptr(g_runstate_page)};
        long r1 = vcpu_op(abi::VcpuOp::register_runstate_memory_area, vcpu, &a);
        abi::VcpuRegisterVcpuInfo vi{attack::mfn_of_va(g_pages[1]), 0, 0};
        long r2 = vcpu_op(abi::VcpuOp::register_vcpu_info, vcpu, &vi);
        long r3 = vcpu_op(abi::VcpuOp::up, vcpu, nullptr);
        abi::VcpuSetPeriodicTimer pt{1'000'000};
        long r4 = vcpu_op(abi::VcpuOp::set_periodic_timer, vcpu, &pt);
        ok += r1 < 0 && r2 < 0 && r3 < 0 && r4 < 0;
    }
    check(ok == n, "attack.pv.vcpu.other_vcpus_refused", "%u of %u vCPU ids refused everything", ok, n);

    // Periodic timers below 1 ms or absurdly long, bad single-shot flags.
    unsigned refused = 0, nt = 0;
    for (uint64_t period : {0ull, 1ull, 999'999ull, (1ull << 62) + 1, ~0ull}) {
        ++nt;
        abi::VcpuSetPeriodicTimer pt{period};
        refused += vcpu_op(abi::VcpuOp::set_periodic_timer, 0, &pt) == kEinval;
    }
    abi::VcpuSetSingleshotTimer st{rt::now_ns() + kMs, 0xFFFFFFFE};
    ++nt;
    refused += vcpu_op(abi::VcpuOp::set_singleshot_timer, 0, &st) == kEinval;
    ++nt;
    refused += vcpu_op(abi::VcpuOp::register_runstate_memory_area, 0, reinterpret_cast<void*>(attack::kKernelVirt)) ==
               kEfault;
    // The fastest periodic timer allowed, for a while: the victim keeps its ticks.
    abi::VcpuSetPeriodicTimer fast{1'000'000};
    long f = vcpu_op(abi::VcpuOp::set_periodic_timer, 0, &fast);
    attack::sleep_ns(100 * kMs);
    long s = vcpu_op(abi::VcpuOp::stop_periodic_timer, 0, nullptr);
    check(refused == nt && f == 0 && s == 0, "attack.pv.vcpu.timer_bounds", "%u of %u refused; 1 ms periodic %ld/%ld",
          refused, nt, f, s);
}

// vcpu_info into every frame that is not ours, frames past RAM and the
// hypervisor's, our page tables, bad offsets: all refused. A success would
// move our vcpu_info (the hypervisor would write into someone else's memory
// from then on): the scan stops at the first one.
void vcpu_info_refused() {
    uint64_t tried = 0, accepted = 0, first = 0;
    each_foreign_frame([&](uint64_t m) {
        if (accepted) return;
        ++tried;
        if (register_info(m, uint32_t((m % 63) * 64)) == 0) {
            accepted = 1;
            first = m;
        }
    });
    rt::printf("register_vcpu_info at every frame that is not ours: %lu tried, %lu accepted\n", tried, accepted);
    check(tried > 1000 && accepted == 0, "attack.pv.vcpu.vcpu_info_foreign_frames_refused",
          "accepted at frame %#lx: the hypervisor now writes our vcpu_info there", first);
    if (accepted) return;

    Tables t = own_tables();
    uint64_t own = attack::mfn_of_va(g_pages[1]);
    struct {
        uint64_t mfn;
        uint32_t offset, rsvd;
    } cases[] = {
        {max_ram_frame() + 1, 0, 0}, {(1ull << 40) - 1, 0, 0}, {abi::kHypervisorVirtStart >> 12, 0, 0},
        {(attack::kKernelVirt >> 12), 0, 0}, {~0ull, 0, 0},
        {t.mfn[1], 0, 0}, {t.mfn[2], 64, 0}, {t.mfn[3], 128, 0}, {t.mfn[4], 0, 0},
        {own, 4096 - 64 + 8, 0}, {own, 4096 - 8, 0}, {own, 4096, 0}, {own, 0xFFFFFFFF, 0}, {own, 4, 0},
        {own, 63, 0}, {own, 0, 1}, {own, 64, 0xFFFFFFFF},
    };
    unsigned refused = 0, n = 0;
    for (auto& c : cases) {
        ++n;
        long r = register_info(c.mfn, c.offset, c.rsvd);
        refused += r == kEinval;
        if (r == 0) {
            rt::printf("evidence: register_vcpu_info(%#lx, offset %u, rsvd %u) accepted\n", c.mfn, c.offset, c.rsvd);
            break;
        }
    }
    long hostile = vcpu_op(abi::VcpuOp::register_vcpu_info, 0, reinterpret_cast<void*>(attack::kDirectMapVirt));
    check(refused == n && hostile == kEfault, "attack.pv.vcpu.vcpu_info_bad_frames_refused",
          "%u of %u refused, hypervisor pointer %ld", refused, n, hostile);
}

// The legitimate move, last (our runtime reads its clock from the old
// place): then the frame is the hypervisor's to write, and nothing may turn
// it into something else or take it from us.
void vcpu_info_held() {
    uint64_t v = spare_frame();
    bool filled = fill_frame(v, nullptr, 0);
    rt::vcpu_info().evtchn_upcall_mask = 1;   // copied along: no upcall at the new place
    long r = register_info(v, 64);
    long again = register_info(attack::mfn_of_va(g_pages[1]), 0);
    long pin1 = mmuext1(abi::MmuextCmd::pin_l1_table, v);
    long pin4 = mmuext1(abi::MmuextCmd::pin_l4_table, v);
    uint64_t fl[1] = {v};
    long gdt = set_gdt(fl, 1);
    uint64_t frames[1] = {v};
    long back = attack::memory_op(abi::MemoryOp::decrease_reservation, frames, 1);
    // It is still ours and still written: the hypervisor keeps its time there.
    bool mapped = win_map(4, v, false) == 0;
    uint64_t t1 = mapped ? win_words(4)[14] : 0;   // time.system_time: offset 64 + 32 + 16
    for (unsigned i = 0; i < 4; ++i) rt::sched_op(abi::SchedOp::yield);
    uint64_t t2 = mapped ? win_words(4)[14] : 0;
    if (mapped) win_restore(4);
    check(filled && r == 0 && again == kEinval && pin1 < 0 && pin4 < 0 && gdt < 0 && back == 0 && mapped,
          "attack.pv.vcpu.vcpu_info_frame_held", "moved %ld, again %ld, pin L1 %ld, pin L4 %ld, set_gdt %ld, given back %ld",
          r, again, pin1, pin4, gdt, back);
    rt::printf("vcpu_info at frame %#lx: system time %lu -> %lu\n", v, t1, t2);
}

}  // namespace

void scenario_vcpu() {
    if (!setup_modes()) return;
    bool xs = bool(rt::xs_init());
    attack::RingEnd ring;
    char path[160];
    bool found = xs && find_helper(ring);
    long ref = found ? attack::read_number(attack::node(path, sizeof path, ring.theirs, "ring-ref")) : -1;
    abi::GnttabMapGrantRef map{};
    map.host_addr = rt::ptr(g_win[0]);
    map.flags = abi::kGntmapHostMap | abi::kGntmapReadonly;
    map.ref = uint32_t(ref);
    map.dom = uint16_t(ring.peer);
    long r = ref > 0 ? attack::gnttab(abi::GnttabOp::map_grant_ref, &map) : -1;
    bool mapped = r == 0 && map.status == 0;
    check(mapped, "attack.pv.vcpu.helper_page_mapped", "ref %ld, rc %ld, status %d", ref, r, map.status);

    runstate_legit();
    runstate_hypervisor();
    runstate_readonly(mapped ? rt::ptr(g_win[0]) : 0);
    runstate_page_end();
    runstate_given_back();
    other_vcpus_and_timers();
    vcpu_info_refused();

    if (mapped) {
        abi::GnttabUnmapGrantRef u{};
        u.host_addr = rt::ptr(g_win[0]);
        u.handle = map.handle;
        (void)attack::gnttab(abi::GnttabOp::unmap_grant_ref, &u);
        (void)attack::restore(g_win[0]);
    }
    if (found) {
        (void)rt::xs_write(attack::node(path, sizeof path, ring.mine, "state"), "6");
        bool closed = attack::wait_number_or_gone(attack::node(path, sizeof path, ring.theirs, "state"), 6,
                                                  rt::now_ns() + 10 * kSecond);
        check(closed, "attack.pv.vcpu.helper_closed");
    }
    vcpu_info_held();   // last: our clock stops for us after it
}

}  // namespace pv
