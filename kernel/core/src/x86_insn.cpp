// The x86-64 instruction decoder of core/x86_insn.hpp: prefixes, REX, the
// opcodes the hypervisor emulates, ModRM/SIB/displacement and immediates.

#include <core/x86_insn.hpp>

namespace core::x86 {

namespace {

// What follows an opcode the decoder knows: a ModRM byte, and an immediate
// of this many bytes (-1: 4, or 2 with an operand-size prefix).
struct Shape {
    bool known;
    bool modrm;
    int8_t imm;
    bool byte_op = false;
};

constexpr Shape kNone{false, false, 0};

Shape one_byte(uint8_t op) {
    switch (op) {
    case 0x01: case 0x09: case 0x21: case 0x29: case 0x31:   // add/or/and/sub/xor r/m, r
    case 0x87: case 0x89:                                      // xchg, mov r/m, r
        return Shape{true, true, 0};
    case 0x00: case 0x08: case 0x20: case 0x28: case 0x30:   // the same, 8-bit
    case 0x86: case 0x88:
        return Shape{true, true, 0, true};
    case 0x80: return Shape{true, true, 1, true};             // group 1, r/m8, imm8
    case 0xC6: return Shape{true, true, 1, true};             // mov r/m8, imm8
    case 0x81: return Shape{true, true, -1};                  // group 1, imm32
    case 0x83: return Shape{true, true, 1};                   // group 1, imm8
    case 0xC7: return Shape{true, true, -1};                  // mov r/m, imm32
    case 0xE4: case 0xE5: case 0xE6: case 0xE7:               // in/out with an immediate port
        return Shape{true, false, 1};
    case 0xEC: case 0xED: case 0xEE: case 0xEF:               // in/out with dx
    case 0xF4: case 0xFA: case 0xFB:                          // hlt, cli, sti
        return Shape{true, false, 0};
    default: return kNone;
    }
}

Shape two_byte(uint8_t op) {
    switch (op) {
    case 0x06: case 0x08: case 0x09:                          // clts, invd, wbinvd
    case 0x30: case 0x32: case 0xA2:                          // wrmsr, rdmsr, cpuid
        return Shape{true, false, 0};
    case 0x20: case 0x21: case 0x22: case 0x23:               // mov to/from CRn, DRn
    case 0xAB: case 0xB3: case 0xB1:                          // bts, btr, cmpxchg r/m, r
        return Shape{true, true, 0};
    case 0xBA: return Shape{true, true, 1};                   // bt* r/m, imm8
    case 0xB0: return Shape{true, true, 0, true};             // cmpxchg r/m8, r8
    default: return kNone;
    }
}

bool is_legacy_prefix(uint8_t b) {
    switch (b) {
    case 0x26: case 0x2E: case 0x36: case 0x3E: case 0x64: case 0x65:
    case 0x66: case 0x67: case 0xF0: case 0xF2: case 0xF3:
        return true;
    default:
        return false;
    }
}

}  // namespace

bool decode(const uint8_t* b, size_t n, Insn* out) {
    Insn in{};
    size_t i = 0;
    if (n > kMaxInsnLen) n = kMaxInsnLen;
    for (; i < n && is_legacy_prefix(b[i]); ++i) {
        switch (b[i]) {
        case 0x66: in.opsize16 = true; break;
        case 0x67: return false;   // 32-bit addressing: nothing we emulate uses it
        case 0xF0: in.lock = true; break;
        case 0xF2: case 0xF3: in.rep = true; break;
        default: in.segment = b[i]; break;
        }
    }
    if (i < n && (b[i] & 0xF0) == 0x40) in.rex = b[i++];
    if (i >= n) return false;
    Shape s;
    if (b[i] == 0x0F) {
        if (++i >= n) return false;
        in.opcode = uint16_t(0x0F00 | b[i]);
        s = two_byte(b[i]);
    } else {
        in.opcode = b[i];
        s = one_byte(b[i]);
    }
    ++i;
    if (!s.known) return false;
    in.byte_op = s.byte_op;

    if (s.modrm) {
        if (i >= n) return false;
        uint8_t m = b[i++];
        in.has_modrm = true;
        in.mod = m >> 6;
        in.reg = uint8_t(((m >> 3) & 7) | ((in.rex & 4) << 1));
        uint8_t rm = m & 7;
        // mov to/from control and debug registers: the r/m field always names
        // a general register, whatever mod says.
        bool reg_form = in.mod == 3 || (in.opcode >= 0x0F20 && in.opcode <= 0x0F23);
        if (reg_form) {
            in.rm = uint8_t(rm | ((in.rex & 1) << 3));
        } else {
            in.memory = true;
            if (rm == 4) {   // SIB
                if (i >= n) return false;
                uint8_t sib = b[i++];
                in.scale = uint8_t(1u << (sib >> 6));
                uint8_t idx = uint8_t(((sib >> 3) & 7) | ((in.rex & 2) << 2));
                if (idx != 4) {
                    in.has_index = true;
                    in.index = idx;
                }
                uint8_t base = sib & 7;
                if (base == 5 && in.mod == 0) {
                    // disp32, no base
                } else {
                    in.has_base = true;
                    in.base = uint8_t(base | ((in.rex & 1) << 3));
                }
                if (base == 5 && in.mod == 0) {
                    if (i + 4 > n) return false;
                    in.disp = int32_t(uint32_t(b[i]) | uint32_t(b[i + 1]) << 8 | uint32_t(b[i + 2]) << 16 |
                                      uint32_t(b[i + 3]) << 24);
                    i += 4;
                }
            } else if (rm == 5 && in.mod == 0) {
                in.rip_relative = true;
                if (i + 4 > n) return false;
                in.disp = int32_t(uint32_t(b[i]) | uint32_t(b[i + 1]) << 8 | uint32_t(b[i + 2]) << 16 |
                                  uint32_t(b[i + 3]) << 24);
                i += 4;
            } else {
                in.has_base = true;
                in.base = uint8_t(rm | ((in.rex & 1) << 3));
            }
            if (in.mod == 1) {
                if (i + 1 > n) return false;
                in.disp = int8_t(b[i]);
                i += 1;
            } else if (in.mod == 2) {
                if (i + 4 > n) return false;
                in.disp = int32_t(uint32_t(b[i]) | uint32_t(b[i + 1]) << 8 | uint32_t(b[i + 2]) << 16 |
                                  uint32_t(b[i + 3]) << 24);
                i += 4;
            }
        }
    }

    int imm = s.imm < 0 ? (in.opsize16 ? 2 : 4) : s.imm;
    if (imm) {
        if (i + size_t(imm) > n) return false;
        uint64_t v = 0;
        for (int k = 0; k < imm; ++k) v |= uint64_t(b[i + size_t(k)]) << (8 * k);
        in.imm = imm == 1 ? int8_t(v) : imm == 2 ? int16_t(v) : int32_t(v);
        in.imm_size = uint8_t(imm);
        i += size_t(imm);
    }
    in.len = uint8_t(i);
    *out = in;
    return true;
}

uint64_t& gpr(Regs& r, unsigned n) {
    switch (n & 15) {
    case 0: return r.rax;
    case 1: return r.rcx;
    case 2: return r.rdx;
    case 3: return r.rbx;
    case 4: return r.rsp;
    case 5: return r.rbp;
    case 6: return r.rsi;
    case 7: return r.rdi;
    case 8: return r.r8;
    case 9: return r.r9;
    case 10: return r.r10;
    case 11: return r.r11;
    case 12: return r.r12;
    case 13: return r.r13;
    case 14: return r.r14;
    default: return r.r15;
    }
}

uint64_t effective_address(const Insn& in, Regs& r, uint64_t rip) {
    uint64_t ea = uint64_t(in.disp);
    if (in.rip_relative) return rip + in.len + ea;
    if (in.has_base) ea += gpr(r, in.base);
    if (in.has_index) ea += gpr(r, in.index) * in.scale;
    return ea;
}

uint64_t read_reg(Regs& r, unsigned n, unsigned size, uint8_t rex) {
    if (size == 1 && !rex && n >= 4 && n < 8) return (gpr(r, n - 4) >> 8) & 0xFF;   // AH, CH, DH, BH
    uint64_t v = gpr(r, n);
    return size == 8 ? v : v & ((1ull << (size * 8)) - 1);
}

void write_reg(Regs& r, unsigned n, unsigned size, uint8_t rex, uint64_t value) {
    if (size == 1 && !rex && n >= 4 && n < 8) {
        uint64_t& g = gpr(r, n - 4);
        g = (g & ~0xFF00ull) | ((value & 0xFF) << 8);
        return;
    }
    write_gpr(r, n, size, value);
}

void write_gpr(Regs& r, unsigned n, unsigned size, uint64_t value) {
    uint64_t& g = gpr(r, n);
    switch (size) {
    case 1: g = (g & ~0xFFull) | (value & 0xFF); break;
    case 2: g = (g & ~0xFFFFull) | (value & 0xFFFF); break;
    case 4: g = value & 0xFFFFFFFFull; break;
    default: g = value; break;
    }
}

}  // namespace core::x86
