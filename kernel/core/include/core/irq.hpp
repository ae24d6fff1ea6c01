#pragma once
// Physical interrupts delivered as events (Xen's pirqs). A domain holding an
// Irq capability for a line binds it to a port of its own (event_channel_op
// bind_pirq); when the line fires, the hypervisor masks it, acknowledges the
// local APIC and marks the port pending. The domain handles its device and
// acknowledges with event_channel_op unmask on that port, which unmasks the
// line again (so a level-triggered line cannot storm the CPU meanwhile).

#include <cstdint>

namespace core {

struct Domain;

constexpr unsigned kNrIrqLines = 24;   // the IOAPIC's inputs (GSIs)

// 0, or a negative errno (EINVAL: no such line; EBUSY: bound already).
long irq_bind(Domain& d, uint32_t line, uint32_t port);
// The line bound to d's port, unbound and masked (close, domain gone).
void irq_unbind_port(Domain& d, uint32_t port);
// d unmasked this port: if it is a line's, the line may fire again.
void irq_port_unmasked(Domain& d, uint32_t port);
// From the interrupt entry (the line is masked before this returns).
void irq_fire(unsigned line);
// Fires seen on a line since boot (tests, diagnostics).
uint64_t irq_count(unsigned line);
// Whether some domain has a line bound (a device interrupt may yet wake it).
bool irq_lines_bound();
// How many lines are bound to one of d's ports (0 once d is taken apart).
unsigned irq_lines_bound_to(const Domain& d);

#if MOAT_HOSTED
// Tests: every line unbound, no fires counted.
void irq_reset_for_tests();
#endif

}  // namespace core
