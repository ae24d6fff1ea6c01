#pragma once
// Errors of the engine; each travels as Xen's error name in an XS_ERROR reply.

#include <base/result.hpp>

#include <cstdint>

namespace xs {

enum class Error : uint8_t {
    inval, acces, exist, isdir, noent, nomem, nospc, io, notempty, nosys, rofs, busy,
    again, isconn, too_big, perm,
    quota,  // oxenstored's "EQUOTA": a per-domain quota would be exceeded
};

// The wire name, e.g. "EINVAL". Never null.
const char* error_name(Error e);

template <typename T>
using Result = base::Result<T, Error>;
using Status = base::Status<Error>;
using base::Err;

}  // namespace xs
