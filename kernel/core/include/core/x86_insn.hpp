#pragma once
// Decoding the guest instructions the hypervisor emulates: the privileged
// instructions a PV kernel executes in ring 3 (which fault with #GP: MSRs,
// control and debug registers, port I/O, cli/sti, ...) and the writes a guest
// kernel makes to its own L1 page tables (which fault with #PF: writable page
// tables, core/ptwr). Only the shapes listed in the table of x86_insn.cpp are
// recognised; anything else is "not decoded" and the fault goes to the guest
// as it happened. The bytes come from guest memory and are untrusted: every
// length and index is checked against what was fetched.

#include <cstddef>
#include <cstdint>

#include <core/regs.hpp>

namespace core::x86 {

constexpr size_t kMaxInsnLen = 15;

struct Insn {
    uint8_t len = 0;            // bytes, prefixes included
    uint16_t opcode = 0;        // 0x00..0xFF, or 0x0F00 | byte for two-byte opcodes
    // Prefixes.
    bool opsize16 = false;      // 66
    bool lock = false;          // F0
    bool rep = false;           // F3 (or F2)
    uint8_t segment = 0;        // 0, or 0x26/0x2E/0x36/0x3E/0x64/0x65
    uint8_t rex = 0;            // 0x40..0x4F, or 0
    // ModRM, with the REX extensions applied to reg and to rm/base/index.
    bool has_modrm = false;
    uint8_t mod = 0, reg = 0, rm = 0;
    bool memory = false;        // the ModRM operand is in memory
    // Its effective address: base + index * scale + disp, RIP-relative from
    // the end of the instruction.
    bool rip_relative = false;
    bool has_base = false, has_index = false;
    uint8_t base = 0, index = 0, scale = 1;
    int64_t disp = 0;
    // Immediate, sign-extended.
    int64_t imm = 0;
    uint8_t imm_size = 0;
    bool byte_op = false;       // an 8-bit form (e.g. 0x80, 0x88, 0x86)

    // Operand size: 1 for byte forms, else 8 with REX.W, else 2 with 66, else 4.
    unsigned opsize() const { return byte_op ? 1 : (rex & 8) ? 8 : opsize16 ? 2 : 4; }
};

// Decodes one instruction from `bytes` (`n` of them fetched). false if it is
// not one the hypervisor emulates, or is malformed or longer than fetched.
[[nodiscard]] bool decode(const uint8_t* bytes, size_t n, Insn* out);

// General register `n` in x86 numbering (0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp,
// 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15) of the guest frame.
uint64_t& gpr(Regs& r, unsigned n);

// The effective address of a memory operand (no segment base: a guest kernel
// addresses its page tables flat). `rip` is the instruction's address.
uint64_t effective_address(const Insn& in, Regs& r, uint64_t rip);

// Writes `value` to a register operand of `size` bytes as the CPU does: a
// 4-byte write zero-extends to 64 bits, 1 and 2-byte writes merge.
void write_gpr(Regs& r, unsigned n, unsigned size, uint64_t value);

// The register operand `n` of `size` bytes as an instruction with prefix
// `rex` names it (without REX, byte registers 4-7 are AH, CH, DH, BH).
uint64_t read_reg(Regs& r, unsigned n, unsigned size, uint8_t rex);
void write_reg(Regs& r, unsigned n, unsigned size, uint8_t rex, uint64_t value);

}  // namespace core::x86
