#pragma once
// nanopb keeps enums in C enum objects, and a decoder fills them with
// whatever int the wire had: a value outside the enum is possible and must
// not be loaded as the enum. raw_enum reads it as that int (libs/manifest,
// libs/control).

#include <cstdint>

namespace base {

template <typename E>
int32_t raw_enum(const E& e) {
    static_assert(sizeof(E) == sizeof(int32_t));
    int32_t v;
    __builtin_memcpy(&v, &e, sizeof v);
    return v;
}

}  // namespace base
