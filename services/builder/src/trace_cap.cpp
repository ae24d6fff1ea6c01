#include "trace_cap.hpp"

#include <abi/moat.hpp>
#include <abi/trace.hpp>
#include <rt/caps.hpp>
#include <rt/console.hpp>

namespace builder {

bool give_trace_capability(uint16_t dom, uint32_t cspace_slots, const char* name) {
    long src = rt::cap_find(abi::kCapTypeTrace, 0);
    if (src < 0) {
        rt::printf("%s: no Trace capability to give (the kernel gives the builder one at boot)\n", name);
        return false;
    }
    if (cspace_slots == 0) return false;
    uint32_t slot = cspace_slots - 1;
    long r = rt::cap_install(dom, uint32_t(src), slot, abi::kCapRightUse);
    if (r != 0) {
        rt::printf("%s: cannot install Trace in slot %u: %ld\n", name, slot, r);
        return false;
    }
    return true;
}

}  // namespace builder
