#pragma once
// The start-of-day layout lives in libs/pvboot, shared by the kernel's own
// builder and the builder domain. These names remain for the kernel's
// builder and the core's tests: the layout the kernel builds for an image
// of [kstart, kend) at VIRT_BASE, as Xen's toolstack lays it out but without
// the xenstore and console pages (the kernel's builder, like Xen's dom0
// builder, sets up no rings) and without INIT_P2M or a ramdisk.

#include <cstdint>

#include <base/bits.hpp>
#include <base/result.hpp>
#include <pvboot/layout.hpp>

namespace core {

using PvLayout = pvboot::Layout;
using LayoutError = pvboot::Error;

inline const char* describe(LayoutError e) { return pvboot::describe(e); }

[[nodiscard]] inline base::Result<PvLayout, LayoutError> compute_pv_layout(uint64_t virt_base, uint64_t kstart,
                                                                           uint64_t kend, uint64_t nr_pages) {
    return pvboot::compute(pvboot::Kernel{virt_base, kstart, base::align_up(kend, pvboot::kPageSize), false, 0, false},
                           pvboot::Options{nr_pages, 0, false});
}

}  // namespace core
