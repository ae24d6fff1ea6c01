// Shared machinery of the attacker (env.hpp).

#include "env.hpp"

#include <rt/gnttab.hpp>

namespace pv {

volatile Caught g_caught;
alignas(4096) uint8_t g_win[8][4096];

namespace {

// The stack our exceptions and syscalls from user mode arrive on, and the
// stack user mode runs on.
alignas(16) uint8_t g_kernel_stack[16384];
alignas(16) uint8_t g_user_stack[16384];

uint64_t g_next_spare;
uint64_t g_max_ram;
uint8_t g_own[1 << 17];   // our frames, a bit each (4 GiB of RAM)

bool on_fault(rt::TrapFrame& f) {
    g_caught.vector = f.vector;
    g_caught.error = f.error_code;
    g_caught.rip = f.rip;
    g_caught.cs = f.cs;
    g_caught.cr2 = f.vector == 14 ? rt::vcpu_info().arch.cr2 : 0;
    g_caught.count = g_caught.count + 1;
    uint64_t to = g_resume;
    if (!to) {
        rt::printf("FAIL attack.pv.unexpected_fault: vector %lu at rip %#lx (cs %#lx), error %#lx, cr2 %#lx\n",
                   f.vector, f.rip, f.cs, f.error_code, g_caught.cr2);
        return false;
    }
    g_resume = 0;
    f.rip = to;
    // Probes resume in our 64-bit code, whatever code segment of ours the
    // fault came from (kept: the saved event mask above the selector).
    if ((f.cs & 0xFFFF & ~3ull) != (kFlatCs64 & ~3)) f.cs = (f.cs & ~0xFFFFull) | kKernelCs;
    return true;
}

}  // namespace

void arm() {
    g_caught.count = 0;
    g_caught.vector = ~0ull;
    g_caught.error = 0;
    g_caught.rip = 0;
    g_caught.cr2 = 0;
}

void catch_faults() {
    const unsigned vectors[] = {0, 1, 3, 4, 5, 6, 10, 11, 12, 13, 14, 16, 17, 19};
    for (unsigned v : vectors) (void)rt::set_trap_handler(v, on_fault);
    // #NM: CR0.TS set for a moment by an attack; the hypervisor clears it
    // when it delivers #NM, so returning is enough.
    (void)rt::set_trap_handler(7, [](rt::TrapFrame&) { return true; });
}

bool setup_modes() {
    Tables t = own_tables();
    long a = mmuext1(abi::MmuextCmd::new_user_baseptr, t.mfn[4]);
    long b = rt::hypercall(abi::Hypercall::stack_switch, abi::kFlatKernelSs,
                           rt::ptr(g_kernel_stack + sizeof g_kernel_stack));
    long c = rt::hypercall(abi::Hypercall::set_callbacks, rt::event_entry_address(), rt::ptr(&pv_failsafe_entry),
                           rt::ptr(&pv_syscall_entry));
    check(a == 0 && b == 0 && c == 0, "attack.pv.setup_modes", "new_user_baseptr %ld, stack_switch %ld, callbacks %ld",
          a, b, c);
    return a == 0 && b == 0 && c == 0;
}

void in_user_mode(void (*fn)()) { pv_user_call(fn, rt::ptr(g_user_stack + sizeof g_user_stack)); }

// --- frames ---------------------------------------------------------------------------

uint64_t spare_frame() {
    if (!g_next_spare) g_next_spare = rt::first_unmapped_pfn();
    if (g_next_spare >= rt::start_info().nr_pages) return 0;
    return rt::mfn_of_pfn(g_next_spare++);
}

long win_map(unsigned k, uint64_t mfn, bool writable) { return attack::map_at(g_win[k], mfn, writable); }
void win_restore(unsigned k) { (void)attack::restore(g_win[k]); }

bool fill_frame(uint64_t mfn, const uint64_t* words, unsigned n, uint64_t rest) {
    if (win_map(7, mfn, true) != 0) return false;
    for (unsigned i = 0; i < 512; ++i) win_words(7)[i] = i < n ? words[i] : rest;
    win_restore(7);
    return true;
}

bool frame_holds(uint64_t mfn, const uint64_t* words, unsigned n, uint64_t rest) {
    if (win_map(7, mfn, false) != 0) return false;
    bool same = true;
    for (unsigned i = 0; i < 512; ++i) same &= win_words(7)[i] == (i < n ? words[i] : rest);
    win_restore(7);
    return same;
}

Tables own_tables() {
    Tables t{};
    uint64_t m[5];
    attack::own_tables(m);
    for (unsigned l = 1; l <= 4; ++l) {
        t.mfn[l] = m[l];
        t.ro[l] = reinterpret_cast<volatile uint64_t*>(rt::va_of_pfn(rt::m2p()[m[l]]));
    }
    return t;
}

uint64_t max_ram_frame() {
    if (!g_max_ram) {
        g_max_ram = uint64_t(rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_ram_page), 0));
        const abi::StartInfo& si = rt::start_info();
        for (uint64_t p = 0; p < si.nr_pages; ++p) {
            uint64_t m = rt::mfn_of_pfn(p);
            if (m < 8 * sizeof g_own) g_own[m / 8] |= uint8_t(1u << (m % 8));
        }
        // Ours too, though not in our P2M: the shared info frame and our
        // grant table's frames.
        auto mark = [](uint64_t m) {
            if (m < 8 * sizeof g_own) g_own[m / 8] |= uint8_t(1u << (m % 8));
        };
        mark(si.shared_info >> 12);
        uint64_t frames[4] = {};
        abi::GnttabSetupTable st{abi::kDomidSelf, 1, 0, rt::ptr(frames)};
        if (rt::gnttab_op(abi::GnttabOp::setup_table, &st) == 0 && st.status == 0) mark(frames[0]);
        if (g_max_ram >= 8 * sizeof g_own) g_max_ram = 8 * sizeof g_own - 1;
    }
    return g_max_ram;
}

bool is_own_frame(uint64_t m) {
    (void)max_ram_frame();
    return m < 8 * sizeof g_own && ((g_own[m / 8] >> (m % 8)) & 1);
}

bool build_scratch(Scratch& s, unsigned l1_win, unsigned l2_win) {
    s.l2 = spare_frame();
    s.l1 = spare_frame();
    for (auto& d : s.data) d = spare_frame();
    if (!s.l2 || !s.l1 || !s.data[7]) return false;
    for (unsigned i = 0; i < 8; ++i) {
        uint64_t words[2] = {0x5343524154434800ull | i, s.data[i]};
        if (!fill_frame(s.data[i], words, 2)) return false;
    }
    uint64_t l1[8];
    for (unsigned i = 0; i < 8; ++i) l1[i] = pte(s.data[i], true);
    uint64_t l2[1] = {(s.l1 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU};
    if (!fill_frame(s.l1, l1, 8) || !fill_frame(s.l2, l2, 1)) return false;
    Tables t = own_tables();
    s.l3_entry_maddr = (t.mfn[3] << 12) | 8;   // L3 slot 1: 1 GiB
    long r = rt::mmu_update_one(s.l3_entry_maddr, (s.l2 << 12) | rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteU);
    if (r != 0) {
        rt::printf("scratch: linking the L2 at 1 GiB: %ld\n", r);
        return false;
    }
    if (win_map(l1_win, s.l1, false) != 0 || win_map(l2_win, s.l2, false) != 0) return false;
    s.l1_alias = win_words(l1_win);
    s.l2_alias = win_words(l2_win);
    return true;
}

void teardown_scratch(Scratch& s, unsigned l1_win, unsigned l2_win) {
    win_restore(l1_win);
    win_restore(l2_win);
    if (s.l3_entry_maddr) (void)rt::mmu_update_one(s.l3_entry_maddr, 0);
    s.l3_entry_maddr = 0;
}

// --- segments -----------------------------------------------------------------------

long set_gdt(const uint64_t* frames, uint64_t entries) {
    return rt::hypercall(abi::Hypercall::set_gdt, rt::ptr(frames), entries);
}

long update_descriptor(uint64_t maddr, uint64_t desc) {
    return rt::hypercall(abi::Hypercall::update_descriptor, maddr, desc);
}

// --- the helper -----------------------------------------------------------------------

bool find_helper(attack::RingEnd& ring) {
    char path[160];
    return attack::find_frontends(&ring, 1) == 1 &&
           attack::wait_number(attack::node(path, sizeof path, ring.theirs, "state"), 3,
                               rt::now_ns() + 60 * kSecond);
}

}  // namespace pv
