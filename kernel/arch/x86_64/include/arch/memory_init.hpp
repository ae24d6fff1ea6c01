#pragma once

#include <arch/boot_info.hpp>

namespace arch {

// Builds the frame table and gives every usable frame to the allocator.
void memory_init(const BootInfo& bi);

}  // namespace arch
