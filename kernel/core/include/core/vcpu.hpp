#pragma once
// vcpu_op: what a guest sets up for each of its vCPUs, with Xen's semantics
// (xen/common/domain.c do_vcpu_op, xen/arch/x86/pv/domain.c): where its
// vcpu_info lives, where it wants its runstate copied, its periodic and
// single-shot timers, whether a vCPU is up. Moat runs one vCPU per domain:
// every other vCPU id is -ENOENT.

#include <cstdint>

#include <core/domain.hpp>

namespace core {

// The vCPU's runstate moves to `state` (abi::RunstateState) at system time
// `now`: time in the old state is added up, as Xen's vcpu_runstate_change.
void runstate_change(Vcpu& v, abi::RunstateState state, uint64_t now);

// Copies the runstate to the area the guest registered, if any. The vCPU's
// address space must be the loaded one (the scheduler calls it when it puts
// the vCPU on the CPU). A fault is ignored, as in Xen.
void runstate_publish(Vcpu& v);

// Drops what vcpu_op holds for a vCPU of a dying domain (its vcpu_info frame).
void vcpu_release(Vcpu& v);

}  // namespace core
