#pragma once
// What the attacker of the hypercalls added for Linux guests (guests/attack_pv,
// tests/system/attacks.cmake: attack_pv_*) shares between its scenarios:
// catching the faults an attack must provoke (and going on after them), a
// user mode to attack from, the failsafe callback and bad iret frames, frames
// of our own to build descriptor pages and page tables in, and a scan of
// every frame of the machine that is not ours (the victim's among them).
//
// Every check is named attack.pv.<scenario>.<what>; every role ends with
// "done, N failed" (guests/attack/common.hpp).

#include "../attack/common.hpp"

#include <rt/traps.hpp>

#include <abi/moat.hpp>

namespace pv {

using attack::kEinval;
using attack::kEfault;
using attack::kMs;
using attack::kSecond;
using rt::check;

constexpr long kEnoent = abi::neg(abi::Errno::enoent);
constexpr long kEnosys = abi::neg(abi::Errno::enosys);

// Selectors: the hypervisor's own (arch/x86_64 cpu.cpp) and the flat ones
// every guest runs on. A guest kernel names its own mode with RPL 0 in an
// iret frame (RPL 3: return to user mode).
constexpr uint16_t kHypCs = 0xe008, kHypDs = 0xe010, kHypTss = 0xe040;
constexpr uint16_t kFlatCs32 = 0xe023, kFlatDs = 0xe02b, kFlatCs64 = 0xe033;
constexpr uint16_t kKernelCs = kFlatCs64 & ~3;   // "back to the guest kernel"

// --- faults --------------------------------------------------------------------

// The last fault delivered to us, and how many since arm().
struct Caught {
    uint64_t vector, error, rip, cs, cr2;
    unsigned count;
};
extern volatile Caught g_caught;
void arm();
// Handlers for every exception vector an attack may provoke. A fault that
// arrives while a probe is armed (g_resume set, see PROBE) resumes at the
// probe's end; any other one is reported and ends the domain.
void catch_faults();

}  // namespace pv

extern "C" {
// Where the next fault resumes (0: it is unexpected). One-shot.
extern volatile uint64_t g_resume;
// The kernel context pv_user_call / pv_iret_try return to.
extern uint64_t g_kctx;
// What the failsafe callback was given: {rcx, r11, ds, es, fs, gs, rip, cs,
// rflags, rsp, ss}, and how often it ran.
extern uint64_t g_failsafe_frame[11];
extern uint64_t g_failsafe_hits;
// What a legitimate iret landed with: rflags (pushf), cs, ss.
extern uint64_t g_landing[3];
extern uint64_t g_landing_hits;
// Calls that went through a call gate to pv_gate_target.
extern volatile uint64_t g_gate_called;
void pv_gate_target();
void pv_user_call(void (*fn)(), uint64_t user_rsp);
void pv_iret_try(const uint64_t* frame);   // {flags, rip, cs, rflags, rsp, ss}
void pv_yield_holding(uint64_t yields);
void pv_failsafe_entry();
void pv_syscall_entry();
void pv_iret_landing();
void pv_iret_landing_user();
void pv_resume_kctx();
}

// One instruction (or a few) that may fault: a fault resumes right after it.
// r11 is used to name the resume point.
#define PV_PROBE_BEGIN "leaq 1f(%%rip), %%r11\n\tmovq %%r11, g_resume(%%rip)\n\t"
#define PV_PROBE_END "\n1:\n\tmovq $0, g_resume(%%rip)"

namespace pv {

// --- user mode -----------------------------------------------------------------

// Our own L4 as the user page table too, a kernel stack for what user mode
// raises, and the failsafe and syscall callbacks. Once, at start.
bool setup_modes();
// Runs `fn` in guest user mode (same address space, its own stack) and
// returns when it is done. fn must make no hypercall (a syscall from user
// mode is how it comes back).
void in_user_mode(void (*fn)());

// --- frames ----------------------------------------------------------------------

// A frame of ours nothing maps (the pool after the initial region).
uint64_t spare_frame();
// A page of our image to look at other frames of ours through.
extern uint8_t g_win[8][4096];
// Maps `mfn` at window k (read-only unless `writable`), or puts it back.
long win_map(unsigned k, uint64_t mfn, bool writable);
void win_restore(unsigned k);
inline volatile uint64_t* win_words(unsigned k) { return reinterpret_cast<volatile uint64_t*>(g_win[k]); }
// Fills frame `mfn` (through a window) with `words`.
bool fill_frame(uint64_t mfn, const uint64_t* words, unsigned n, uint64_t rest = 0);
// Whether frame `mfn` holds `words` (then `rest`).
bool frame_holds(uint64_t mfn, const uint64_t* words, unsigned n, uint64_t rest = 0);

// Our page tables on the path of the image (levels 1..4), and the read-only
// mapping of each in our initial region.
struct Tables {
    uint64_t mfn[5];
    volatile uint64_t* ro[5];
};
Tables own_tables();

// Every frame of the machine that is not ours, up to maximum_ram_page, in
// increasing order: `fn(mfn)` for each; how many.
uint64_t max_ram_frame();
bool is_own_frame(uint64_t mfn);
template <typename F>
uint64_t each_foreign_frame(F fn) {
    uint64_t max = max_ram_frame(), n = 0;
    for (uint64_t m = 0; m <= max; ++m)
        if (!is_own_frame(m)) {
            fn(m);
            ++n;
        }
    return n;
}

// A little scratch hierarchy at 1 GiB (L3 slot 1 of our image's L3): one L2
// and one L1 of our own, validated and linked, the L1 also mapped read-only
// at `l1_alias` (so that we can write to it directly: writable page tables)
// and the L2 at `l2_alias`. Pages [0, 8) of the L1 map frames of ours.
struct Scratch {
    uint64_t l2 = 0, l1 = 0;
    uint64_t data[8] = {};
    volatile uint64_t* l1_alias = nullptr;
    volatile uint64_t* l2_alias = nullptr;
    uint64_t l3_entry_maddr = 0;
    static constexpr uint64_t kBase = 0x40000000;   // VA of the L1's page 0
    static uint64_t va(unsigned page) { return kBase + uint64_t(page) * 4096; }
};
bool build_scratch(Scratch& s, unsigned l1_win, unsigned l2_win);
void teardown_scratch(Scratch& s, unsigned l1_win, unsigned l2_win);

inline uint64_t pte(uint64_t mfn, bool writable) {
    return (mfn << 12) | rt::kPteP | rt::kPteA | rt::kPteU | (writable ? rt::kPteRw | rt::kPteD : 0);
}

inline long mmuext1(abi::MmuextCmd cmd, uint64_t arg1, uint64_t arg2 = 0) { return rt::mmuext(cmd, arg1, arg2); }

// --- segments ---------------------------------------------------------------------

// A GDT descriptor from its parts (base and limit flat).
constexpr uint64_t kDescP = 1ull << 47, kDescS = 1ull << 44, kDescL = 1ull << 53, kDescDb = 1ull << 54,
                   kDescG = 1ull << 55;
constexpr uint64_t desc_dpl(unsigned dpl) { return uint64_t(dpl & 3) << 45; }
constexpr uint64_t desc_type(unsigned t) { return uint64_t(t & 15) << 40; }
constexpr uint64_t kLimitFlat = 0x000F00000000FFFFull;   // limit 0xFFFFF (with G)
constexpr uint64_t code64(unsigned dpl) { return kLimitFlat | kDescG | kDescL | kDescP | kDescS | desc_dpl(dpl) | desc_type(0xA); }
constexpr uint64_t code32(unsigned dpl) { return kLimitFlat | kDescG | kDescDb | kDescP | kDescS | desc_dpl(dpl) | desc_type(0xA); }
constexpr uint64_t data(unsigned dpl) { return kLimitFlat | kDescG | kDescDb | kDescP | kDescS | desc_dpl(dpl) | desc_type(0x2); }
// A system descriptor of `type` (9 TSS, 0xB busy TSS, 2 LDT, 0xE interrupt
// gate, 0xF trap gate, 0xC call gate), low half.
constexpr uint64_t system_desc(unsigned type, unsigned dpl) {
    return 0x0000000000000067ull | kDescP | desc_dpl(dpl) | desc_type(type);
}
// A 64-bit call gate to `sel`:`offset` (low half; the high half holds offset >> 32).
constexpr uint64_t call_gate(uint16_t sel, uint64_t offset, unsigned dpl) {
    return (offset & 0xFFFF) | (uint64_t(sel) << 16) | kDescP | desc_dpl(dpl) | desc_type(0xC) |
           ((offset >> 16) & 0xFFFF) << 48;
}

// lar: the access-rights bytes of `sel` as the CPU's GDT has them, if the
// CPU lets ring 3 see it (*ok).
inline uint64_t lar(uint16_t sel, bool* ok) {
    uint64_t ar = 0;
    uint8_t z = 0;
    asm volatile("lar %[s], %[ar]\n\tsetz %[z]" : [ar] "=r"(ar), [z] "=r"(z) : [s] "r"(uint64_t(sel)) : "cc");
    *ok = z;
    return ar;
}
inline uint16_t read_cs() { uint16_t v; asm volatile("mov %%cs, %0" : "=r"(v)); return v; }
inline uint16_t read_ss() { uint16_t v; asm volatile("mov %%ss, %0" : "=r"(v)); return v; }
inline void read_data_selectors(uint16_t out[4]) {
    asm volatile("mov %%ds, %0\n\tmov %%es, %1\n\tmov %%fs, %2\n\tmov %%gs, %3"
                 : "=r"(out[0]), "=r"(out[1]), "=r"(out[2]), "=r"(out[3]));
}
inline uint64_t read_rflags() { uint64_t f; asm volatile("pushfq\n\tpopq %0" : "=r"(f)); return f; }

long set_gdt(const uint64_t* frames, uint64_t entries);
long update_descriptor(uint64_t maddr, uint64_t desc);

// --- scenarios ----------------------------------------------------------------------

void scenario_gdt();
void scenario_ptwr();
void scenario_vcpu();
void scenario_emulate();
void scenario_evtchn();
void scenario_iret();
void scenario_iret_crash(const char* how);
void role_helper();
void role_witness();

// The helper's xenbus: the attacker is the back-end of a RING with it.
bool find_helper(attack::RingEnd& ring);

}  // namespace pv
