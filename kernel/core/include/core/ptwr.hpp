#pragma once
// Writable page tables (Xen's ptwr, xen/arch/x86/pv/ro-page-fault.c): a PV
// guest kernel may write its own L1 entries directly, through a read-only
// mapping of its L1 table, as Linux does (set_pte, `xchg` in ptep_get_and_clear,
// `lock btr` in ptep_test_and_clear_young, `lock and` in fork's copy of the
// page tables). The write faults (#PF, present + write, in guest kernel
// mode); if the faulting address is mapped by the domain's own tables onto one
// of its L1 tables that is validated and in use, the instruction is decoded
// (core/x86_insn: mov, xchg, cmpxchg, or/and/xor/add/sub, bts/btr) and the
// address it writes is computed from it (registers, displacement, RIP, an
// FS/GS override's base), as Xen's emulator does: only a write that starts
// exactly at the fault's address and is naturally aligned, so inside that
// one entry (8 bytes, or 1, 2 or 4 of them combined with the rest of the
// entry), is emulated. The new entry goes through mod_entry: the same checks
// and reference moves as mmu_update. A value mmu_update would refuse, or a
// write not wholly inside one entry, is refused, and the guest gets the page
// fault it caused.

#include <cstdint>

#include <core/domain.hpp>

namespace core {

// True: the write was emulated (rip past it, registers and flags as the
// instruction leaves them). False: deliver the fault.
[[nodiscard]] bool ptwr_emulate(Vcpu& v, Regs& r, uint64_t addr);

}  // namespace core
