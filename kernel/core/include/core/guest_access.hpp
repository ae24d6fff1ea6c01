#pragma once
// Typed copies of hypercall arguments out of and into guest memory. Every
// argument is copied once into hypervisor memory and checked there, so a
// guest changing its memory mid-call (another vCPU, a DMA) changes nothing.

#include <core/platform.hpp>

namespace core {

template <typename T>
[[nodiscard]] bool get_guest(T& out, uint64_t va) {
    return platform::copy_from_guest(&out, va, sizeof(T));
}

template <typename T>
[[nodiscard]] bool put_guest(uint64_t va, const T& in) {
    return platform::copy_to_guest(va, &in, sizeof(T));
}

}  // namespace core
