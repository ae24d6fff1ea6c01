#pragma once
// Error numbers a hypercall hands back to a Xen PV guest.
//
// A failing hypercall returns the negated number in %rax. The values follow
// x86 Linux (Xen's public errno list is a subset of it), so guests can pass
// them straight through to their own callers.

#include <cstdint>

namespace abi {

// Enumerators are the lower-case Xen names (einval for EINVAL): the upper-case
// spellings are macros in any hosted translation unit that sees <errno.h>.
enum class Errno : int {
  eperm = 1,
  enoent = 2,
  esrch = 3,
  eintr = 4,  // Xen-internal only; never returned to a guest
  eio = 5,
  enxio = 6,
  e2big = 7,
  enoexec = 8,
  ebadf = 9,
  echild = 10,
  eagain = 11,
  enomem = 12,
  eacces = 13,
  efault = 14,
  ebusy = 16,
  eexist = 17,
  exdev = 18,
  enodev = 19,
  einval = 22,
  enfile = 23,
  emfile = 24,
  enospc = 28,
  emlink = 31,
  edom = 33,
  erange = 34,
  edeadlk = 35,
  enametoolong = 36,
  enolck = 37,
  enosys = 38,
  ebadrqc = 56,
  ebadslt = 57,
  enodata = 61,
  etime = 62,
  ebadmsg = 74,
  eoverflow = 75,
  eilseq = 84,
  erestart = 85,  // Xen-internal only (continuation); never returned
  eusers = 87,
  enotsock = 88,
  eopnotsupp = 95,
  eaddrinuse = 98,
  eaddrnotavail = 99,
  enobufs = 105,
  eisconn = 106,
  enotconn = 107,
  eshutdown = 108,
  etoomanyrefs = 109,
  etimedout = 110,
};

// Aliases Xen keeps for source compatibility.
inline constexpr Errno kEwouldblock = Errno::eagain;
inline constexpr Errno kEdeadlock = Errno::edeadlk;

// The value a failing hypercall leaves in %rax.
constexpr long neg(Errno e) { return -static_cast<long>(static_cast<int>(e)); }

// Symbolic name for logs; "E?" for a number not in the list.
constexpr const char* errno_name(Errno e) {
  switch (e) {
    case Errno::eperm: return "EPERM";
    case Errno::enoent: return "ENOENT";
    case Errno::esrch: return "ESRCH";
    case Errno::eintr: return "EINTR";
    case Errno::eio: return "EIO";
    case Errno::enxio: return "ENXIO";
    case Errno::e2big: return "E2BIG";
    case Errno::enoexec: return "ENOEXEC";
    case Errno::ebadf: return "EBADF";
    case Errno::echild: return "ECHILD";
    case Errno::eagain: return "EAGAIN";
    case Errno::enomem: return "ENOMEM";
    case Errno::eacces: return "EACCES";
    case Errno::efault: return "EFAULT";
    case Errno::ebusy: return "EBUSY";
    case Errno::eexist: return "EEXIST";
    case Errno::exdev: return "EXDEV";
    case Errno::enodev: return "ENODEV";
    case Errno::einval: return "EINVAL";
    case Errno::enfile: return "ENFILE";
    case Errno::emfile: return "EMFILE";
    case Errno::enospc: return "ENOSPC";
    case Errno::emlink: return "EMLINK";
    case Errno::edom: return "EDOM";
    case Errno::erange: return "ERANGE";
    case Errno::edeadlk: return "EDEADLK";
    case Errno::enametoolong: return "ENAMETOOLONG";
    case Errno::enolck: return "ENOLCK";
    case Errno::enosys: return "ENOSYS";
    case Errno::ebadrqc: return "EBADRQC";
    case Errno::ebadslt: return "EBADSLT";
    case Errno::enodata: return "ENODATA";
    case Errno::etime: return "ETIME";
    case Errno::ebadmsg: return "EBADMSG";
    case Errno::eoverflow: return "EOVERFLOW";
    case Errno::eilseq: return "EILSEQ";
    case Errno::erestart: return "ERESTART";
    case Errno::eusers: return "EUSERS";
    case Errno::enotsock: return "ENOTSOCK";
    case Errno::eopnotsupp: return "EOPNOTSUPP";
    case Errno::eaddrinuse: return "EADDRINUSE";
    case Errno::eaddrnotavail: return "EADDRNOTAVAIL";
    case Errno::enobufs: return "ENOBUFS";
    case Errno::eisconn: return "EISCONN";
    case Errno::enotconn: return "ENOTCONN";
    case Errno::eshutdown: return "ESHUTDOWN";
    case Errno::etoomanyrefs: return "ETOOMANYREFS";
    case Errno::etimedout: return "ETIMEDOUT";
  }
  return "E?";
}

// Every number in the list, in ascending order (for tables and tests).
inline constexpr Errno kAllErrnos[] = {
    Errno::eperm, Errno::enoent, Errno::esrch, Errno::eintr, Errno::eio,
    Errno::enxio, Errno::e2big, Errno::enoexec, Errno::ebadf, Errno::echild,
    Errno::eagain, Errno::enomem, Errno::eacces, Errno::efault, Errno::ebusy,
    Errno::eexist, Errno::exdev, Errno::enodev, Errno::einval, Errno::enfile,
    Errno::emfile, Errno::enospc, Errno::emlink, Errno::edom, Errno::erange,
    Errno::edeadlk, Errno::enametoolong, Errno::enolck, Errno::enosys,
    Errno::ebadrqc, Errno::ebadslt, Errno::enodata, Errno::etime,
    Errno::ebadmsg, Errno::eoverflow, Errno::eilseq, Errno::erestart,
    Errno::eusers, Errno::enotsock, Errno::eopnotsupp, Errno::eaddrinuse,
    Errno::eaddrnotavail, Errno::enobufs, Errno::eisconn, Errno::enotconn,
    Errno::eshutdown, Errno::etoomanyrefs, Errno::etimedout,
};

static_assert(neg(Errno::enosys) == -38);
static_assert(static_cast<int>(Errno::einval) == 22);

}  // namespace abi
