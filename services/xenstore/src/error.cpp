#include <xenstore/error.hpp>

namespace xs {

const char* error_name(Error e) {
    switch (e) {
    case Error::inval: return "EINVAL";
    case Error::acces: return "EACCES";
    case Error::exist: return "EEXIST";
    case Error::isdir: return "EISDIR";
    case Error::noent: return "ENOENT";
    case Error::nomem: return "ENOMEM";
    case Error::nospc: return "ENOSPC";
    case Error::io: return "EIO";
    case Error::notempty: return "ENOTEMPTY";
    case Error::nosys: return "ENOSYS";
    case Error::rofs: return "EROFS";
    case Error::busy: return "EBUSY";
    case Error::again: return "EAGAIN";
    case Error::isconn: return "EISCONN";
    case Error::too_big: return "E2BIG";
    case Error::perm: return "EPERM";
    case Error::quota: return "EQUOTA";
    }
    return "EINVAL";
}

}  // namespace xs
