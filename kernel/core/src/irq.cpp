#include <core/domain.hpp>
#include <core/evtchn.hpp>
#include <core/irq.hpp>
#include <core/platform.hpp>

#include <abi/errno.hpp>

namespace core {

namespace {

struct Line {
    bool bound = false;
    DomId dom = 0;
    uint32_t port = 0;
    uint64_t fired = 0;
};
Line g_lines[kNrIrqLines];

}  // namespace

long irq_bind(Domain& d, uint32_t line, uint32_t port) {
    if (line >= kNrIrqLines) return abi::neg(abi::Errno::einval);
    Line& l = g_lines[line];
    if (l.bound) return abi::neg(abi::Errno::ebusy);
    l = Line{true, d.id, port, l.fired};
    platform::irq_set_masked(line, false);
    return 0;
}

void irq_unbind_port(Domain& d, uint32_t port) {
    for (unsigned i = 0; i < kNrIrqLines; ++i) {
        Line& l = g_lines[i];
        if (l.bound && l.dom == d.id && l.port == port) {
            platform::irq_set_masked(i, true);
            l.bound = false;
        }
    }
}

void irq_port_unmasked(Domain& d, uint32_t port) {
    for (unsigned i = 0; i < kNrIrqLines; ++i) {
        const Line& l = g_lines[i];
        if (l.bound && l.dom == d.id && l.port == port) platform::irq_set_masked(i, false);
    }
}

void irq_fire(unsigned line) {
    if (line >= kNrIrqLines) return;
    Line& l = g_lines[line];
    ++l.fired;
    // Masked until the domain has handled it (or for good if nobody listens).
    platform::irq_set_masked(line, true);
    if (!l.bound) return;
    Domain* d = domain_at(l.dom);
    if (d && d->state == DomainState::running) evtchn_set_pending(*d, l.port);
}

uint64_t irq_count(unsigned line) { return line < kNrIrqLines ? g_lines[line].fired : 0; }

#if MOAT_HOSTED
void irq_reset_for_tests() {
    for (Line& l : g_lines) l = Line{};
}
#endif

unsigned irq_lines_bound_to(const Domain& d) {
    unsigned n = 0;
    for (const Line& l : g_lines) n += l.bound && l.dom == d.id;
    return n;
}

bool irq_lines_bound() {
    for (const Line& l : g_lines)
        if (l.bound) return true;
    return false;
}

}  // namespace core
