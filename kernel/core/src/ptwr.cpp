// Writable page tables (core/ptwr.hpp): a guest kernel's direct write to one
// of its own L1 entries, emulated through the same validation as mmu_update.

#include <core/mm.hpp>
#include <core/emulate.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>
#include <core/ptwr.hpp>
#include <core/x86_insn.hpp>

namespace core {

namespace {

// RFLAGS bits a logical, arithmetic or bit-test operation sets.
constexpr uint64_t kCf = 1, kPf = 1u << 2, kAf = 1u << 4, kZf = 1u << 6, kSf = 1u << 7, kOf = 1u << 11;
constexpr uint64_t kArithFlags = kCf | kPf | kAf | kZf | kSf | kOf;

uint64_t width_mask(unsigned size) { return size == 8 ? ~0ull : (1ull << (size * 8)) - 1; }

uint64_t logic_flags(uint64_t result, unsigned size) {
    unsigned bits = size * 8;
    uint64_t f = 0;
    if ((result & width_mask(size)) == 0) f |= kZf;
    if ((result >> (bits - 1)) & 1) f |= kSf;
    if (!(__builtin_popcount(unsigned(result & 0xFF)) & 1)) f |= kPf;
    return f;
}

// The flags of `a + b` or `a - b` (= `result`) at `size` bytes, as add, sub
// and cmp (cmpxchg's comparison) leave them.
uint64_t arith_flags(uint64_t a, uint64_t b, uint64_t result, unsigned size, bool subtract) {
    uint64_t m = width_mask(size);
    a &= m;
    b &= m;
    result &= m;
    unsigned top = size * 8 - 1;
    uint64_t f = logic_flags(result, size);
    if (subtract ? b > a : result < a) f |= kCf;
    if ((a ^ b ^ result) & 0x10) f |= kAf;   // the carry out of bit 3
    uint64_t overflow = subtract ? (a ^ b) & (a ^ result) : (a ^ result) & (b ^ result);
    if ((overflow >> top) & 1) f |= kOf;
    return f;
}

int64_t sign_extend(uint64_t v, unsigned size) {
    unsigned drop = 64 - size * 8;
    return int64_t(v << drop) >> drop;
}

// Segment-override prefixes whose base applies in 64-bit mode (CS, DS, ES and
// SS have base 0 there).
constexpr uint8_t kPrefixFs = 0x64, kPrefixGs = 0x65;

// The linear address the memory operand of `in` names, as the CPU computes
// it: base + index * scale + displacement (RIP-relative from the end of the
// instruction), plus the FS or GS base for those overrides. FS: the CPU's
// (the guest can load it behind the hypervisor's back, and it stays loaded
// while the hypervisor runs). GS: the vCPU's record of the base of the mode
// it is in (the CPU's own GS is the hypervisor's here); if the guest changed
// it behind the hypervisor's back, the address only fails to match CR2 and
// nothing is emulated.
uint64_t linear_address(const Vcpu& v, const x86::Insn& in, Regs& r) {
    uint64_t ea = x86::effective_address(in, r, r.rip);
    switch (in.segment) {
    case kPrefixFs: return ea + platform::read_fs_base();
    case kPrefixGs: return ea + (v.kernel_mode ? v.gs_base_kernel : v.gs_base_user);
    default: return ea;
    }
}

enum class Op : uint8_t { store, exchange, cmpxchg, or_, and_, xor_, add, sub, bts, btr };

}  // namespace

bool ptwr_emulate(Vcpu& v, Regs& r, uint64_t addr) {
    Domain& d = *v.domain;
    // The entry that maps `addr` read-only must map an L1 of the domain's,
    // validated and in use: that L1 is what the guest is writing.
    Mfn map_l1;
    unsigned map_index;
    if (!guest_l1_slot(d, v.guest_table, addr, &map_l1, &map_index)) return false;
    uint64_t mapping = frame_va(map_l1)[map_index];
    if (!(mapping & pte::kPresent) || (mapping & pte::kWritable)) return false;
    Mfn target = pte::mfn(mapping);
    FrameTable& ft = frame_table();
    if (!ft.valid(target)) return false;
    const FrameInfo& tf = ft[target];
    if (tf.owner != d.id || tf.type != PageType::l1 || !(tf.flags & kFrameValidated) || tf.type_count == 0)
        return false;

    // The instruction that faulted, decoded (bytes that cross into a page
    // that cannot be read leave it cut short, and it is not decoded). F2/F3
    // before the opcodes decoded here are ignored by the CPU, or hints
    // (XACQUIRE/XRELEASE): no string instruction is decoded, so no rep form
    // is either. 67 (32-bit addressing) is not decoded.
    uint8_t bytes[x86::kMaxInsnLen];
    size_t n = fetch_guest_insn(r.rip, bytes);
    x86::Insn in;
    if (n == 0 || !x86::decode(bytes, n, &in) || !in.memory) return false;
    // The rip the instruction leaves must be one the CPU can return to; the
    // guest gets its fault rather than an exit to a non-canonical rip.
    uint64_t next_rip = r.rip + in.len;
    if (!is_canonical(next_rip)) return false;
    Op op;
    unsigned size = in.opsize();
    auto reg = [&] { return x86::read_reg(r, in.reg, size, in.rex); };
    uint64_t src = 0;
    switch (in.opcode) {
    case 0x88: case 0x89: op = Op::store; src = reg(); break;
    case 0xC6: case 0xC7: if ((in.reg & 7) != 0) return false; op = Op::store; src = uint64_t(in.imm); break;
    case 0x86: case 0x87: op = Op::exchange; src = reg(); break;
    case 0x0FB0: case 0x0FB1: op = Op::cmpxchg; src = reg(); break;
    case 0x08: case 0x09: op = Op::or_; src = reg(); break;
    case 0x20: case 0x21: op = Op::and_; src = reg(); break;
    case 0x30: case 0x31: op = Op::xor_; src = reg(); break;
    case 0x00: case 0x01: op = Op::add; src = reg(); break;
    case 0x28: case 0x29: op = Op::sub; src = reg(); break;
    case 0x80: case 0x81: case 0x83:
        src = uint64_t(in.imm);
        switch (in.reg & 7) {
        case 0: op = Op::add; break;
        case 1: op = Op::or_; break;
        case 4: op = Op::and_; break;
        case 5: op = Op::sub; break;
        case 6: op = Op::xor_; break;
        default: return false;
        }
        break;
    case 0x0FAB: op = Op::bts; src = reg(); break;
    case 0x0FB3: op = Op::btr; src = reg(); break;
    case 0x0FBA:
        if ((in.reg & 7) == 5) op = Op::bts;
        else if ((in.reg & 7) == 6) op = Op::btr;
        else return false;
        src = uint64_t(in.imm);
        break;
    default: return false;
    }
    // `lock mov` is #UD on the CPU: whatever faulted, it was not this (its
    // bytes changed since).
    if (in.lock && op == Op::store) return false;

    // Where the instruction writes, computed from the instruction itself (as
    // Xen's emulator does), never taken from CR2: CR2 is only where the
    // access first faulted. A store that starts in an ordinary page and runs
    // into the L1's alias faults with CR2 at the alias's first byte; taken
    // from CR2 it would become an aligned write of entry 0 and the bytes the
    // CPU puts in the first page would be lost.
    uint64_t linear = linear_address(v, in, r);
    // bts/btr with a register offset address a bit string: the signed offset
    // selects the operand-sized word ea + size * floor(offset / bits), and
    // the bit in it (an immediate offset is taken modulo the operand size).
    if (in.opcode == 0x0FAB || in.opcode == 0x0FB3) {
        unsigned bits = size * 8;
        int64_t offset = sign_extend(src, size);
        linear += uint64_t(offset >> __builtin_ctz(bits)) * size;
        src = uint64_t(offset) & (bits - 1);
    }
    // Only the write the CPU faulted on, whole: it starts at CR2 and is
    // naturally aligned (Xen's rule), so it lies inside the one entry CR2 is
    // in: all of it, or a part (a byte for a single flag, as Linux's
    // clear_bit of _PAGE_RW does; the low half of an entry), combined with
    // the rest of the entry as Xen does. Anything else -- a write straddling
    // two entries or a page boundary, a segment base or register that does
    // not add up to CR2 -- is the guest's page fault.
    if (linear != addr || (addr & (size - 1)) != 0) return false;
    unsigned index = unsigned((addr & 4095) >> 3);
    unsigned shift = unsigned(addr & 7) * 8;
    uint64_t width = width_mask(size);
    uint64_t* slot = frame_va(target) + index;
    uint64_t entry = __atomic_load_n(slot, __ATOMIC_RELAXED);
    uint64_t mask = width << shift;
    uint64_t old = (entry & mask) >> shift;
    src &= width;
    uint64_t value = old;
    uint64_t fl = r.rflags;
    bool write = true;
    switch (op) {
    case Op::store: value = src; break;
    case Op::exchange: value = src; break;
    case Op::cmpxchg: {
        // Flags as `cmp` of the accumulator with the entry.
        uint64_t expect = r.rax & width;
        fl = (fl & ~kArithFlags) | arith_flags(expect, old, expect - old, size, true);
        if (old == expect) value = src;
        else write = false;
        break;
    }
    case Op::or_: value = old | src; break;
    case Op::and_: value = old & src; break;
    case Op::xor_: value = old ^ src; break;
    case Op::add: value = old + src; break;
    case Op::sub: value = old - src; break;
    case Op::bts:
    case Op::btr: {
        unsigned b = unsigned(src) & (size * 8 - 1);
        fl = (fl & ~kCf) | ((old >> b) & 1);
        value = op == Op::bts ? old | (1ull << b) : old & ~(1ull << b);
        break;
    }
    }
    value &= width;
    if (write) {
        uint64_t full = (entry & ~mask) | (value << shift);
        Budget b{kHypercallBudget};
        MmCtx c{d, v, b};
        if (finish_cleanup(c) != 0) return false;
        // The same checks and reference moves as mmu_update; a refused value
        // leaves the entry as it was and the guest gets its page fault.
        if (mod_entry(c, target, index, full, false) != 0) return false;
    }
    // Registers and flags as the instruction leaves them.
    switch (op) {
    case Op::exchange: x86::write_reg(r, in.reg, size, in.rex, old); break;
    case Op::cmpxchg: if (!write) x86::write_gpr(r, 0, size, old); break;
    case Op::or_: case Op::and_: case Op::xor_:
        fl = (fl & ~(kCf | kPf | kZf | kSf | kOf)) | logic_flags(value, size);
        break;
    case Op::add: fl = (fl & ~kArithFlags) | arith_flags(old, src, value, size, false); break;
    case Op::sub: fl = (fl & ~kArithFlags) | arith_flags(old, src, value, size, true); break;
    default: break;
    }
    r.rflags = fl;
    r.rip = next_rip;
    return true;
}

}  // namespace core
