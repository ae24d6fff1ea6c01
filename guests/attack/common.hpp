#pragma once
// What the attacker guests (guests/attack, tests/system/attacks.cmake) share:
// the usual PASS/FAIL lines, guest-time sleeps, the xenbus nodes of the RING
// connections the manifests give them (the builder writes them, as in
// guests/demo/common.hpp), and a few page-table helpers over our own
// read-only view of our page tables.
//
// Every attacker runs beside guests/victim. Each check is named
// attack.<finding>.<what>; each guest ends with "done, N failed".

#include <rt/caps.hpp>
#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/memory.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>

namespace attack {

using rt::check;

constexpr long kEinval = abi::neg(abi::Errno::einval);
constexpr long kEperm = abi::neg(abi::Errno::eperm);
constexpr long kEfault = abi::neg(abi::Errno::efault);

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSecond = 1'000'000'000;

// The hypervisor's virtual layout (kernel/arch/x86_64/include/arch/layout.h,
// the M2P at slot 256): the addresses the attacks aim at.
constexpr uint64_t kM2pVirt = 0xFFFF800000000000ull;        // slot 256, read-only M2P (4 KiB pages)
constexpr uint64_t kKernelVirt = 0xFFFF82D080000000ull;     // slot 261, kernel image -> physical 0 (2 MiB pages)
constexpr uint64_t kDirectMapVirt = 0xFFFF830000000000ull;  // slot 262+, all RAM (2 MiB pages)
constexpr uint64_t kHypervisorTop = 0xFFFF87FFFFFFF000ull;  // last page of slot 271

// Sleeps `ns` of guest time (sched_op poll on no port, with a timeout;
// again if an event woke it early).
inline void sleep_ns(uint64_t ns) {
    const uint64_t until = rt::now_ns() + ns;
    while (rt::now_ns() < until) {
        abi::SchedPoll p{0, 0, until};
        rt::hypercall(abi::Hypercall::sched_op, uint64_t(abi::SchedOp::poll), rt::ptr(&p));
    }
}

// Waits until `port` fires; false at the deadline (guest time). (One
// rt::wait_ports may return early: an event on another port wakes it.)
inline bool wait_port_until(uint32_t port, uint64_t deadline) {
    while (rt::now_ns() < deadline)
        if (rt::wait_ports(&port, 1, deadline)) return true;
    return false;
}

// A whole number from a node, or -1.
inline long read_number(const char* path) {
    auto r = rt::xs_read_number(path);
    return r ? long(*r) : -1;
}

// Polls `path` (every millisecond) until it holds a number >= want; false
// at the deadline (guest time).
inline bool wait_number(const char* path, long want, uint64_t deadline) {
    for (;;) {
        if (read_number(path) >= want) return true;
        if (rt::now_ns() > deadline) return false;
        sleep_ns(kMs);
    }
}

// Polls `path` until it holds a number >= want or is gone (its domain's
// home was removed); false at the deadline.
inline bool wait_number_or_gone(const char* path, long want, uint64_t deadline) {
    char buf[32];
    for (;;) {
        auto r = rt::xs_read(path, buf, sizeof buf - 1);
        if (!r && (r.error() == rt::XsError::noent || r.error() == rt::XsError::acces)) return true;
        if (read_number(path) >= want) return true;
        if (rt::now_ns() > deadline) return false;
        sleep_ns(kMs);
    }
}

// Polls `path` until reading it fails with ENOENT or EACCES (its domain's
// home was removed: the builder is reaping it); false at the deadline.
inline bool wait_gone(const char* path, uint64_t deadline) {
    char buf[32];
    for (;;) {
        auto r = rt::xs_read(path, buf, sizeof buf);
        if (!r && (r.error() == rt::XsError::noent || r.error() == rt::XsError::acces)) return true;
        if (rt::now_ns() > deadline) return false;
        sleep_ns(kMs);
    }
}

// Polls until we hold no capability of `type` naming `dom` (the kernel deletes
// every capability naming a domain when it destroys it); false at the deadline.
inline bool wait_cap_gone(abi::CapType type, uint16_t dom, uint64_t deadline) {
    for (;;) {
        if (rt::cap_find(type, dom) < 0) return true;
        if (rt::now_ns() > deadline) return false;
        sleep_ns(kMs);
    }
}

// One end of a RING connection, from the nodes the builder wrote.
struct RingEnd {
    long peer = -1;       // the other end's domain id
    char mine[96] = {};   // our directory of the connection (relative to our home)
    char theirs[128] = {};// the other end's directory (absolute)
};

// As a front-end: our `which`-th device/ring entry.
inline bool find_backend(RingEnd& e, unsigned which = 0) {
    char list[128], path[160];
    auto l = rt::xs_directory("device/ring", list, sizeof list);
    if (!l) return false;
    const char* dev = nullptr;
    for (unsigned k = 0; k <= which; ++k) {
        dev = rt::xs_next_name(list, *l, dev);
        if (!dev) return false;
    }
    base::snformat(e.mine, sizeof e.mine, "device/ring/%s", dev);
    base::snformat(path, sizeof path, "%s/backend-id", e.mine);
    e.peer = read_number(path);
    base::snformat(path, sizeof path, "%s/backend", e.mine);
    auto b = rt::xs_read(path, e.theirs, sizeof e.theirs);
    return e.peer >= 0 && b;
}

// As a back-end: up to `max` front-ends under backend/ring/<fe>/<n>.
inline unsigned find_frontends(RingEnd* out, unsigned max) {
    char fes[256], devs[64], path[160];
    auto l = rt::xs_directory("backend/ring", fes, sizeof fes);
    if (!l) return 0;
    unsigned n = 0;
    for (const char* fe = rt::xs_next_name(fes, *l, nullptr); fe && n < max; fe = rt::xs_next_name(fes, *l, fe)) {
        base::snformat(path, sizeof path, "backend/ring/%s", fe);
        auto d = rt::xs_directory(path, devs, sizeof devs);
        const char* dev = d && *d ? rt::xs_next_name(devs, *d, nullptr) : nullptr;
        if (!dev) continue;
        RingEnd& e = out[n];
        base::snformat(e.mine, sizeof e.mine, "backend/ring/%s/%s", fe, dev);
        base::snformat(path, sizeof path, "%s/frontend-id", e.mine);
        e.peer = read_number(path);
        base::snformat(path, sizeof path, "%s/frontend", e.mine);
        auto f = rt::xs_read(path, e.theirs, sizeof e.theirs);
        if (e.peer >= 0 && f) ++n;
    }
    return n;
}

// "<dir>/<leaf>" into buf.
inline const char* node(char* buf, size_t cap, const char* dir, const char* leaf) {
    base::snformat(buf, cap, "%s/%s", dir, leaf);
    return buf;
}

// --- our own page tables -----------------------------------------------------------

inline uint64_t pfn_of_va(uint64_t va) { return (va - rt::kVirtBase) >> 12; }
inline uint64_t mfn_of_va(const void* va) { return rt::mfn_of_pfn(pfn_of_va(rt::ptr(va))); }

// The L1 entry that maps `va` now (read through the read-only view of the
// table in our initial region), or 0 if some level is missing.
inline uint64_t l1e_of(uint64_t va) {
    uint64_t table = 0;
    uint64_t ma = rt::l1e_maddr(va, &table, 1);
    if (!ma) return 0;
    const auto* t = reinterpret_cast<const volatile uint64_t*>(rt::va_of_pfn(rt::m2p()[table]));
    return t[(ma & 4095) / 8];
}

inline uint64_t own_pte(const void* va, bool writable = true) {
    return (mfn_of_va(va) << 12) | rt::kPteP | rt::kPteA | (writable ? rt::kPteRw | rt::kPteD : 0);
}

// Points the page at `va` (a page of our image) at frame `mfn`, or back at its own frame.
inline long map_at(const void* va, uint64_t mfn, bool writable) {
    return rt::update_va_mapping(rt::ptr(va), (mfn << 12) | rt::kPteP | rt::kPteA | (writable ? rt::kPteRw | rt::kPteD : 0));
}
inline long restore(const void* va) { return rt::update_va_mapping(rt::ptr(va), own_pte(va)); }

// Our page tables at each level on the path that maps the image (index 1..4).
inline void own_tables(uint64_t out[5]) {
    for (unsigned level = 1; level <= 4; ++level) {
        uint64_t t = 0;
        (void)rt::l1e_maddr(rt::kVirtBase, &t, level);
        out[level] = t;
    }
}

inline bool is_page_table_pfn(uint64_t pfn) {
    const abi::StartInfo& si = rt::start_info();
    uint64_t first = pfn_of_va(si.pt_base);
    return pfn >= first && pfn < first + si.nr_pt_frames;
}

inline long gnttab(abi::GnttabOp op, void* arg, uint64_t count = 1) { return rt::gnttab_op(op, arg, count); }

inline long memory_op(abi::MemoryOp op, uint64_t* frames, uint64_t n) {
    abi::XenMemoryReservation res{rt::ptr(frames), n, 0, 0, abi::kDomidSelf};
    return rt::hypercall(abi::Hypercall::memory_op, uint64_t(op), rt::ptr(&res));
}

// The last line of every attacker: "<its name>: done, N failed" on the console.
inline void done() { rt::printf("done, %u failed\n", rt::g_failed_checks); }

}  // namespace attack
