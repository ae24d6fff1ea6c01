// A guest's GDT and LDT (core/descriptors.hpp).

#include <core/descriptors.hpp>
#include <core/guest_access.hpp>
#include <core/hypercall.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>

#include <abi/errno.hpp>

namespace core {

namespace {

constexpr int64_t err(abi::Errno e) { return abi::neg(e); }

// Fields of the high dword of a descriptor (Xen's _SEGMENT_*).
constexpr uint32_t kType = 0xF00, kS = 1u << 12, kDpl = 3u << 13, kP = 1u << 15, kL = 1u << 21, kDb = 1u << 22;
constexpr uint32_t kCallGate = 0xC00;
constexpr uint32_t kCode = 0x800, kWritable = 0x200;   // type bits of a code/data descriptor

// A selector a call gate may lead to: a guest GDT or LDT code selector, or
// the flat kernel one (Xen's guest_gate_selector_okay).
bool gate_selector_ok(uint16_t cs) {
    return (cs >> 3) < kGdtMaxEntries || (cs & 4) || (cs & ~3u) == (sel::kGuestCs64 & ~3u);
}

// Descriptor `index` of the vCPU's GDT, or of its LDT, as the guest's frames hold it.
uint64_t guest_descriptor(const Vcpu& v, unsigned index) {
    return frame_va<uint64_t>(v.gdt_frames[index / 512])[index % 512];
}
uint64_t ldt_descriptor(const Vcpu& v, unsigned index) {
    return frame_va<uint64_t>(v.ldt_frames[index / 512])[index % 512];
}

// The descriptor `sel` names (GDT or LDT, by its TI bit), if it lies within
// the table and is not the GDT's null entry.
bool selector_descriptor(const Vcpu& v, uint16_t sel, uint64_t* d) {
    unsigned index = sel >> 3;
    if (sel & 4) {
        if (index >= v.ldt_ents) return false;
        *d = ldt_descriptor(v, index);
        return true;
    }
    if (index == 0 || index >= v.gdt_ents) return false;
    *d = guest_descriptor(v, index);
    return true;
}

// The frame the vCPU's kernel page tables map at `va` with a present 4 KiB
// entry (read once), through the one walk of guest tables (guest_l1_slot).
bool mapped_frame(const Vcpu& v, uint64_t va, Mfn* out) {
    Mfn l1;
    unsigned index;
    if (!guest_l1_slot(*v.domain, v.guest_table, va, &l1, &index)) return false;
    uint64_t e = __atomic_load_n(&frame_va<uint64_t>(l1)[index], __ATOMIC_RELAXED);
    if (!(e & pte::kPresent)) return false;
    *out = pte::mfn(e);
    return true;
}

void release_frames(Vcpu& v, const Mfn* frames, unsigned n) {
    Budget b = Budget::unlimited();   // seg_desc pages hold no references: nothing to devalidate
    MmCtx c{*v.domain, v, b};
    for (unsigned i = 0; i < n; ++i) put_page_and_type(c, frames[i]);
}

}  // namespace

bool check_descriptor(uint64_t& desc) {
    uint32_t a = uint32_t(desc), b = uint32_t(desc >> 32);
    if (!(b & kP)) return true;   // not present: always faults, so harmless
    unsigned dpl = (b >> 13) & 3;
    if (b & kS) {
        // Code and data: usable only from ring 3 (the guest kernel's too).
        b = (b & ~kDpl) | (3u << 13);
    } else {
        if ((b & kType) == 0) return true;   // type 0: harmless (a call gate's second half)
        if ((b & kType) != kCallGate) return false;   // TSS, LDT, interrupt/trap gates
        uint16_t cs = uint16_t(a >> 16);
        if (!gate_selector_ok(cs)) return false;
        if (b & 0xFF) return false;   // reserved in a 64-bit call gate
        // DPL 0: using the gate faults (it is never a way into ring 0); the
        // guest's DPL is kept in the target selector's RPL, as Xen does.
        b &= ~kDpl;
        cs = uint16_t((cs & ~3u) | dpl);
        a = (a & 0xFFFF) | (uint32_t(cs) << 16);
    }
    desc = uint64_t(a) | (uint64_t(b) << 32);
    return true;
}

bool validate_descriptor_page(Mfn m) {
    uint64_t* d = frame_va<uint64_t>(m);
    for (unsigned i = 0; i < 512; ++i) {
        uint64_t e = __atomic_load_n(&d[i], __ATOMIC_RELAXED);
        if (!check_descriptor(e)) return false;
        __atomic_store_n(&d[i], e, __ATOMIC_RELAXED);
    }
    return true;
}

namespace {
void gdt_release_only(Vcpu& v) {
    unsigned n = (v.gdt_ents + 511) / 512;
    release_frames(v, v.gdt_frames, n);
    v.gdt_ents = 0;
    for (auto& f : v.gdt_frames) f = 0;
}
}  // namespace

void ldt_release(Vcpu& v) {
    release_frames(v, v.ldt_frames, (v.ldt_ents + 511) / 512);
    v.ldt_ents = 0;
    v.ldt_base = 0;
    for (auto& f : v.ldt_frames) f = 0;
}

void gdt_release(Vcpu& v) {
    gdt_release_only(v);
    ldt_release(v);
}

long set_ldt(MmCtx& c, uint64_t base, uint64_t ents) {
    Vcpu& v = c.v;
    if (ents == 0) base = 0;   // Xen: no entries, no address
    if ((base & 4095) || !is_guest_address(base) || ents > kLdtMaxEntries) return err(abi::Errno::einval);
    if (ents == v.ldt_ents && base == v.ldt_base) return 0;   // as Xen: nothing to do
    // Decode: each page the kernel's tables map there takes the descriptor
    // page type (validated on the way); on any failure nothing changes.
    unsigned n = unsigned((ents + 511) / 512);
    Mfn frames[kLdtMaxFrames];
    for (unsigned i = 0; i < n; ++i) {
        c.budget.charge(cost::kRequest);
        Mfn m = 0;
        long rc = mapped_frame(v, base + uint64_t(i) * 4096, &m) ? get_page_and_type(c, m, PageType::seg_desc)
                                                                 : err(abi::Errno::einval);
        if (rc != 0) {
            release_frames(v, frames, i);
            return rc == kRestart ? kRestart : err(abi::Errno::einval);
        }
        frames[i] = m;
    }
    // Invoke.
    ldt_release(v);
    for (unsigned i = 0; i < n; ++i) v.ldt_frames[i] = frames[i];
    v.ldt_base = base;
    v.ldt_ents = unsigned(ents);
    if (platform::current_vcpu() == &v) platform::load_guest_ldt(v);
    return 0;
}

int64_t hc_set_gdt(Vcpu& v, Regs& r) {
    uint64_t list = r.rdi, entries = r.rsi;
    if (entries > kGdtMaxEntries) return err(abi::Errno::einval);
    unsigned n = unsigned((entries + 511) / 512);
    Mfn frames[kGdtMaxFrames];
    for (unsigned i = 0; i < n; ++i)
        if (!get_guest(frames[i], list + i * sizeof(uint64_t))) return err(abi::Errno::efault);
    // Decode: every frame takes the descriptor-page type (validating it);
    // on any failure nothing changes.
    MmCtx c{*v.domain, v, v.work};
    for (unsigned i = 0; i < n; ++i) {
        c.budget.charge(32);   // 512 descriptors looked at (at most)
        long rc = get_page_and_type(c, frames[i], PageType::seg_desc);
        if (rc != 0) {
            release_frames(v, frames, i);
            return rc == kRestart ? hypercall_continue(r) : err(abi::Errno::einval);
        }
    }
    // Invoke.
    gdt_release_only(v);
    for (unsigned i = 0; i < n; ++i) v.gdt_frames[i] = frames[i];
    v.gdt_ents = unsigned(entries);
    if (platform::current_vcpu() == &v) platform::load_guest_gdt(v);
    return 0;
}

int64_t hc_update_descriptor(Vcpu& v, Regs& r) {
    uint64_t ma = r.rdi, desc = r.rsi;
    Mfn m = ma >> 12;
    unsigned index = unsigned((ma & 4095) >> 3);
    if ((ma & 7) || !check_descriptor(desc)) return err(abi::Errno::einval);
    FrameTable& ft = frame_table();
    if (!ft.valid(m) || ft[m].owner != v.domain->id) return err(abi::Errno::einval);
    // A descriptor page stays one; anything else must be ordinary memory.
    PageType t = ft[m].type == PageType::seg_desc ? PageType::seg_desc : PageType::writable;
    MmCtx c{*v.domain, v, v.work};
    long rc = get_page_and_type(c, m, t);
    if (rc != 0) return rc == kRestart ? hypercall_continue(r) : err(abi::Errno::einval);
    __atomic_store_n(&frame_va<uint64_t>(m)[index], desc, __ATOMIC_RELAXED);
    put_page_and_type(c, m);
    // The CPU's copies of the vCPU's GDT and LDT follow (a frame may be in
    // either, or several times).
    if (platform::current_vcpu() == &v) {
        for (unsigned i = 0; i < (v.gdt_ents + 511) / 512; ++i)
            if (v.gdt_frames[i] == m && i * 512 + index < v.gdt_ents) platform::update_guest_gdt(i * 512 + index, desc);
        for (unsigned i = 0; i < (v.ldt_ents + 511) / 512; ++i)
            if (v.ldt_frames[i] == m && i * 512 + index < v.ldt_ents) platform::update_guest_ldt(i * 512 + index, desc);
    }
    return 0;
}

bool guest_selector_ok(const Vcpu& v, uint16_t sel, bool code) {
    if ((sel & 3) != 3) return false;
    if (code && (sel == sel::kGuestCs64 || sel == sel::kGuestCs32)) return true;
    if (!code && sel == sel::kGuestDs) return true;
    uint64_t d;
    if (!selector_descriptor(v, sel, &d)) return false;
    uint32_t b = uint32_t(d >> 32);
    if (!(b & kP) || !(b & kS) || ((b >> 13) & 3) != 3) return false;
    if (code) return (b & kCode) && ((b & kL) ? !(b & kDb) : (b & kDb) != 0);   // 64-bit, or 32-bit compat
    return !(b & kCode) && (b & kWritable);
}

uint64_t guest_selector_base(const Vcpu& v, uint16_t sel) {
    uint64_t d;
    if (!selector_descriptor(v, sel, &d)) return 0;
    return ((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24);
}

}  // namespace core
