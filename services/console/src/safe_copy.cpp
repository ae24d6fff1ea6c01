#include "safe_copy.hpp"

#include <rt/traps.hpp>

extern "C" char safe_copy_insn[], safe_load32_insn[], safe_store32_insn[], safe_copy_fault[];

namespace console {

namespace {
bool on_page_fault(rt::TrapFrame& f) {
    uint64_t at = f.rip;
    if (at != uint64_t(safe_copy_insn) && at != uint64_t(safe_load32_insn) && at != uint64_t(safe_store32_insn))
        return false;
    f.rip = uint64_t(safe_copy_fault);
    return true;
}
}  // namespace

void safe_copy_init() { rt::set_trap_handler(14, on_page_fault); }

}  // namespace console
