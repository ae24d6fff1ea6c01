#pragma once
// Domains and their virtual CPUs. A Domain (with its vCPU) is allocated
// (core/kmem.hpp) when the domain is built and given back when it is taken
// apart; so are the parts of its state that grow with use (event-channel
// buckets, maptrack chunks, CSpace slots, the I/O bitmap), each allocated
// when first needed. Domains are found by id through a two-level table
// (domain_at: O(1)); ids are those of Xen, 0 .. kDomidFirstReserved - 1.

#include <cstddef>
#include <cstdint>

#include <abi/shared_info.hpp>
#include <abi/event_channel.hpp>
#include <abi/hypercall.hpp>
#include <abi/memory.hpp>
#include <cap/cspace.hpp>
#include <core/budget.hpp>
#include <core/caps.hpp>
#include <core/credit.hpp>
#include <core/evtchn.hpp>
#include <core/evtchn_fifo.hpp>
#include <core/frame_table.hpp>
#include <core/gnttab.hpp>
#include <core/regs.hpp>

namespace core {

// Domain ids: 0 .. kMaxDomains - 1. Xen's special ids (DOMID_SELF, ...)
// start at kDomidFirstReserved and are never a domain's.
constexpr unsigned kMaxDomains = abi::kDomidFirstReserved;
constexpr size_t kDomainNameLen = 32;
constexpr size_t kIoBitmapBytes = 8192;   // one bit per I/O port, as the TSS wants it

// stopped: shut down or crashed, its memory kept until whoever built it
// destroys it (domains created by domctl; see domain_shutdown).
// dying: being taken apart (domain_teardown); nothing can reach it any more.
enum class DomainState : uint8_t { free, running, dying, stopped };

// The steps of taking a domain apart, in order (domain_teardown).
enum class TeardownStep : uint8_t {
    grants_held,     // the grants of others it maps
    grants_given,    // others' mappings of its grants, whatever state the mapper is in
    foreign,         // others' foreign mappings of its frames
    tables,          // its own page tables, pins and base pointers
    frames,          // its frames back to the allocator (or held, if still referenced)
    caps,            // every capability naming it, and its CSpace
    done,
};

// Kernel log lines a domain causes (its console_io output, refusals it
// provokes) go through a token bucket (core/log.hpp: log_allowed).
struct LogBucket {
    uint32_t tokens = 0;
    bool primed = false;          // filled on first use
    uint64_t stamp_ns = 0;        // when tokens were last added
    uint64_t dropped = 0;         // lines refused since the last report
    uint64_t exempt_gen = 0;      // caps generation `exempt` was computed at
    bool exempt = false;          // holds DebugConsole: trusted with the log
};
enum class VcpuState : uint8_t { runnable, blocked, down };

struct Domain;
struct IoMmu;

// One guest exception handler, from set_trap_table.
struct TrapHandler {
    uint64_t address;      // 0: none registered
    uint8_t dpl;           // who may raise it with `int n` (0: nobody, 3: everybody)
    bool mask_events;      // set the upcall mask on entry
};

struct Vcpu {
    Domain* domain = nullptr;
    unsigned id = 0;
    VcpuState state = VcpuState::down;

    // The work the hypercall it is in may still do (core/budget.hpp): set
    // at hypercall entry, shared by the entries of a multicall.
    Budget work{kHypercallBudget};

    // Guest registers while the vCPU is off the CPU. While it runs they live in
    // the frame at the top of the CPU's stack.
    Regs regs{};

    // Xen x86-64 PV: guest kernel and guest user both run in ring 3; the
    // hypervisor tracks which one is active and switches page tables and GS
    // bases between them.
    bool kernel_mode = true;
    uint64_t kernel_ss = 0, kernel_sp = 0;             // stack_switch
    uint64_t event_callback = 0, failsafe_callback = 0, syscall_callback = 0;
    bool syscall_masks_events = false, failsafe_masks_events = false;
    TrapHandler traps[256] = {};

    uint64_t fs_base = 0, gs_base_kernel = 0, gs_base_user = 0;
    // Its data segment selectors (ds, es, fs, gs, the order of Xen's failsafe
    // frame) while it is off the CPU: the CPU's own while it runs, saved and
    // loaded again on every context switch (null for a new vCPU).
    uint16_t data_sel[4] = {};
    bool fpu_ts = false;                              // virtual CR0.TS
    // The guest's own view of what it controls (core/emulate.hpp): its
    // virtual IOPL (physdev_op set_iopl; its kernel has CPL 1 for I/O and
    // cli/sti, as under Xen), the CR4 bits it may set, its debug registers.
    uint8_t iopl = 0;
    uint64_t cr4_guest = 0;
    uint64_t dr[8] = {0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400};
    alignas(16) uint8_t fpu_state[512] = {};          // FXSAVE image

    Mfn guest_table = 0;        // kernel-mode L4
    Mfn guest_table_user = 0;   // user-mode L4, 0 if none

    // Its GDT (set_gdt, core/descriptors.hpp): frames of type seg_desc, each
    // holding a general and a type reference, and how many descriptors.
    Mfn gdt_frames[14] = {};
    unsigned gdt_ents = 0;

    // ---- The LDT and the callbacks beyond the trap table (issue 11) ----
    // Its LDT (MMUEXT_SET_LDT, core/descriptors.hpp): `ldt_ents` (<= 8192)
    // descriptors at guest address `ldt_base` (page aligned), whose pages are
    // ldt_frames[0, (ldt_ents + 511) / 512): frames of the domain's own, each
    // holding a general and a seg_desc type reference taken when the LDT was
    // set and dropped when it changes or the domain goes (so none of them can
    // be mapped writable meanwhile). No LDT: ldt_ents 0, ldt_base 0, no frames.
    uint64_t ldt_base = 0;
    unsigned ldt_ents = 0;
    Mfn ldt_frames[16] = {};
    // callback_op: where 32-bit user code's syscall and sysenter enter the
    // guest kernel (0: none registered; otherwise a guest address), and
    // whether entering masks events. The NMI callback lives in traps[2], as
    // in Xen.
    uint64_t syscall32_callback = 0, sysenter_callback = 0;
    bool syscall32_masks_events = false, sysenter_masks_events = false;

    abi::VcpuInfo* info = nullptr;   // this vCPU's slot in the shared info page

    // Page tables whose devalidation ran out of budget (see core/mm.hpp):
    // finished at the start of this vCPU's next memory hypercall.
    static constexpr unsigned kMaxCleanup = 32;
    Mfn cleanup[kMaxCleanup] = {};
    unsigned ncleanup = 0;

    SchedEntity se;                           // the scheduler's view (core/sched.hpp)
    uint32_t virq_port[abi::kNrVirqs] = {};   // bind_virq: port per virtual IRQ, 0 = none
    uint64_t timer_deadline = 0;             // set_timer_op / single-shot: system time (ns), 0 = none
    uint64_t periodic_period = 0;            // VCPUOP_set_periodic_timer (ns), 0 = none
    uint64_t periodic_next = 0;              // when it fires next

    // VCPUOP_register_vcpu_info: `info` points into this frame of the
    // domain's (holding a writable type reference), 0 = in shared info.
    Mfn info_mfn = 0;
    // Its runstate (core/vcpu.hpp), and where the guest wants a copy of it
    // (VCPUOP_register_runstate_memory_area: a guest virtual address, 0 = none),
    // written whenever the vCPU is put on a CPU.
    abi::VcpuRunstateInfo runstate{};
    uint64_t runstate_va = 0;

    // sched_op poll: blocked until one of these ports is pending (masked or
    // not) or the deadline passes.
    static constexpr unsigned kMaxPollPorts = 16;
    uint32_t poll_ports[kMaxPollPorts] = {};
    unsigned npoll = 0;
    uint64_t poll_deadline = 0;
};

struct Domain {
    DomId id = 0;
    DomainState state = DomainState::free;
    char name[kDomainNameLen] = {};
    Vcpu vcpu[1];

    Mfn shared_info_mfn = 0;
    abi::SharedInfo* shared_info = nullptr;
    uint64_t nr_pages = 0;      // frames the domain was built with
    uint64_t tot_pages = 0;     // frames it owns now (shared info not counted)
    uint64_t max_pages = 0;     // the most it may own (memory_op increase/populate)

    // What it asked of the hypervisor since it was created (a fresh Domain
    // starts at 0), for `moat top` through domctl getinfo (abi::DomctlInfo).
    // Each is written only by its own hypercalls, on its own vCPU, one
    // increment where the operation is handled: another domain can read
    // them (getinfo, with a Domain capability) but never change them.
    //  - events_sent: EVTCHNOP_send calls that succeeded (to a peer, to
    //    itself on an IPI port, or dropped on an unbound port, as Xen does);
    //  - grant_ops: grant map, unmap and copy operations it asked for, each
    //    operation of a batch once, whether or not it succeeded (its status
    //    says so): the work it asked the hypervisor to do;
    //  - grant_copy_bytes: bytes GNTTABOP_copy copied for it (successful
    //    operations only), a back-end's ring traffic.
    uint64_t events_sent = 0;
    uint64_t grant_ops = 0;
    uint64_t grant_copy_bytes = 0;

    abi::ShutdownReason shutdown_reason = abi::ShutdownReason::poweroff;
    // Created by domctl: on shutdown it stops and waits to be destroyed (its
    // builder reads why, lets back-ends let go, restarts it); the domains the
    // kernel builds itself are taken apart at once.
    bool held_after_shutdown = false;

    // Its event channels, in buckets of kEvtchnBucketPorts allocated as
    // ports are first used (Xen's evtchn buckets): port p is
    // evtchn_bucket[p / kEvtchnBucketPorts][p % kEvtchnBucketPorts]. A port
    // whose bucket is absent is free. Buckets are given back when the domain
    // is killed (evtchn_destroy). Use port_channel(), never the array.
    Channel* evtchn_bucket[kEvtchnBuckets] = {};
    // Xen's FIFO event-channel ABI, once it registered a control block: the
    // frames it holds references on (control blocks, event-array pages),
    // queue tails and per-port priorities. Invariants and locking rule:
    // core/evtchn_fifo.hpp (EvtchnFifo); evtchn_destroy gives it all back.
    EvtchnFifo fifo;

    // Its capabilities (core/caps.hpp): the CSpace lives in cspace_storage,
    // its cspace->size() slots in `cslots` (allocated with it, given back
    // with it: both non-null exactly while cspace is).
    cap::Slot* cslots = nullptr;
    alignas(cap::CSpace) unsigned char cspace_storage[sizeof(cap::CSpace)];
    cap::CSpace* cspace = nullptr;
    unsigned paused = 0;                       // domctl pause count

    // I/O ports it may use (IoPorts capabilities), as the TSS bitmap wants
    // them (kIoBitmapBytes); recomputed when capabilities change
    // (core/caps.hpp). Allocated only while it holds an IoPorts capability:
    // non-null exactly when io_open.
    uint8_t* io_bitmap = nullptr;
    bool io_open = false;
    uint64_t io_gen = 0;

    // Its I/O page table and the PCI functions attached to it (core/iommu.hpp):
    // non-null from its first bus-master enable on a machine with an IOMMU
    // until it is killed (iommu_release), which detaches its devices first.
    IoMmu* iommu = nullptr;

    Mfn grant_frames[kMaxGrantFrames] = {};   // its grant table (setup_table)
    unsigned nr_grant_frames = 0;
    // Grants it has mapped, in chunks of kMaptrackChunk entries allocated
    // as handles are first used (handle h: maptrack_dir[h / kMaptrackChunk]
    // [h % kMaptrackChunk]; use maptrack_at()), under a directory of
    // kMaptrackChunks pointers allocated at its first mapping (nullptr
    // until then). An absent chunk holds no used entry. All given back
    // when it is taken apart.
    Maptrack** maptrack_dir = nullptr;
    unsigned maptrack_limit = 0;              // no entry at or above this one was ever used
    unsigned maptrack_used = 0;               // used entries in its maptrack
    unsigned grants_mapped = 0;               // used maptrack entries anywhere naming it as granter

    // Grant table versions (core/gnttab.hpp, GNTTABOP_set_version). Invariants:
    //  - grant_version is 1 or 2;
    //  - every frame of grant_frames[0, nr_grant_frames) and of
    //    status_frames[0, nr_status_frames) is its own and holds one general
    //    and one `writable` type reference of the hypervisor's, dropped only
    //    when the frame leaves the table (v2 -> v1, or taking it apart);
    //  - nr_status_frames is 0 in v1 and gnttab_status_frames_for(nr_grant_frames) in v2;
    //  - grants_busy counts the used maptrack entries anywhere naming it as
    //    granter for a reference >= abi::kGrantNrReservedEntries (set_version
    //    refuses to switch while it is not 0).
    uint8_t grant_version = 1;
    Mfn status_frames[kMaxStatusFrames] = {};
    unsigned nr_status_frames = 0;
    unsigned grants_busy = 0;

    // vm_assist: which of Xen's opt-in behaviours it enabled (bit = VmAssistType).
    uint64_t vm_assist = 0;

    // Console output is collected into lines and logged with the domain's prefix.
    char console_line[160] = {};
    size_t console_len = 0;
    LogBucket log_bucket;

    // While dying: how far taking it apart got (domain_teardown).
    TeardownStep teardown = TeardownStep::grants_held;
    uint64_t teardown_cursor = 0;     // a frame, maptrack entry or domain slot, by step
    uint64_t teardown_freed = 0;      // frames given back so far
    uint64_t teardown_held = 0;       // frames still referenced: held back, never reused
    // Dying and taken apart by reap_dying: nobody destroys it explicitly (it
    // shut down and was not held). A domain a domctl destroy is taking apart
    // is that caller's alone: the reaper never touches it, so the caller's
    // continuation always finds its work where it left it. If the one
    // destroying it (`destroyer`) dies first, the work passes to the reaper.
    bool reaped = false;
    DomId destroyer = 0;

    // Bytes of hypervisor memory held for it: this object, every part
    // allocated for it (domain_mem_alloc) and its shared info frame.
    uint64_t hv_bytes = 0;
    // Every domain that is not free is on the list of domains (domains_first):
    // the loops that must see every domain walk it, never the id space.
    // Dying ones are also on the dying list (reap_dying, domain_kill).
    Domain* next = nullptr;
    Domain* prev = nullptr;
    Domain* dying_next = nullptr;
    Domain* dying_prev = nullptr;
};

// The channel of `port`, nullptr when it has none (out of range, or its
// bucket never allocated: a free port).
inline Channel* port_channel(Domain& d, uint32_t port) {
    if (port >= kMaxEvtchnPorts) return nullptr;
    Channel* b = d.evtchn_bucket[port / kEvtchnBucketPorts];
    return b ? &b[port % kEvtchnBucketPorts] : nullptr;
}
inline const Channel* port_channel(const Domain& d, uint32_t port) {
    return port_channel(const_cast<Domain&>(d), port);
}
// The state of `port` (free when it has no channel).
inline ChannelState port_state(const Domain& d, uint32_t port) {
    const Channel* c = port_channel(d, port);
    return c ? c->state : ChannelState::free;
}

// Maptrack entry `h`, nullptr when its chunk was never allocated (or h is
// out of range): such an entry is unused.
inline Maptrack* maptrack_at(Domain& d, uint64_t h) {
    if (h >= kMaxMaptrack || !d.maptrack_dir) return nullptr;
    Maptrack* c = d.maptrack_dir[h / kMaptrackChunk];
    return c ? &c[h % kMaptrackChunk] : nullptr;
}
inline const Maptrack* maptrack_at(const Domain& d, uint64_t h) { return maptrack_at(const_cast<Domain&>(d), h); }

// Kernel memory (core/kmem.hpp) for part of d's state, zeroed, counted in
// d.hv_bytes and domain_bytes(); nullptr when memory ran out.
[[nodiscard]] void* domain_mem_alloc(Domain& d, size_t bytes);
void domain_mem_free(Domain& d, void* p, size_t bytes);
// Bytes of hypervisor memory held for every domain not yet free (the sum
// of their hv_bytes), and for the id table.
uint64_t domain_bytes();
uint64_t domain_table_bytes();
// The shared info frame is the domain's but paid for by the hypervisor:
// pv_build and domctl create count it here.
void domain_count_shared_info(Domain& d);

// The domain's I/O bitmap (kIoBitmapBytes), nullptr when it may use no port (core/caps.hpp).
inline const uint8_t* io_bitmap(Domain& d) {
    if (d.io_gen != caps::generation()) return caps::io_bitmap_recompute(d);
    return d.io_open ? d.io_bitmap : nullptr;
}

// A freshly reset FPU for the vCPU's FXSAVE image: FCW 0x37F, MXCSR 0x1F80.
inline void vcpu_reset_fpu(Vcpu& v) {
    for (auto& b : v.fpu_state) b = 0;
    v.fpu_state[0] = 0x7F;
    v.fpu_state[1] = 0x03;
    v.fpu_state[24] = 0x80;
    v.fpu_state[25] = 0x1F;
}

// A new domain, running, with an empty CSpace of `cspace_slots` and the
// next free id after the last one handed out (ids are not reused at once,
// as Xen's toolstack does not: a stale id names nobody for as long as
// possible); nullptr when every id is in use, memory ran out, or the CSpace
// size is not allowed.
Domain* domain_alloc(const char* name, uint32_t cspace_slots = caps::kDefaultSlots);

// Starts taking a domain apart: it stops at once (its vCPUs leave the
// scheduler, its event channels close, so nothing can reach it) and becomes
// `dying`. The rest is domain_teardown's work. No-op if it is free or dying.
void domain_kill(Domain& d);

// Does what `budget` allows of taking a dying domain apart, in the order of
// TeardownStep: grant mappings both ways (whatever state the other domain is
// in), foreign mappings of its frames, its own page tables, its frames (each
// freed only once nothing references it; a frame still referenced is held
// back for good and said so), and last every capability naming it. true when
// it is finished: the domain is gone (its id free, its memory given back:
// `d` must not be used again), and the kernel has logged what it freed and
// whether anything was left behind.
[[nodiscard]] bool domain_teardown(Domain& d, Budget& budget);

// domain_kill and all of domain_teardown at once: for failed builds (and tests).
void domain_destroy_now(Domain& d);

// Takes apart, within `budget`, the dying domains nobody destroys explicitly
// (those the kernel built itself: killed when they shut down). The arch code
// calls it on its way back to a guest and when idle. true when no domain is
// dying any more.
[[nodiscard]] bool reap_dying(Budget& budget);

#if MOAT_HOSTED
// Tests: forget every domain (their CSpaces leave the registry, their vCPUs
// the scheduler), nothing dying; called before the fake machine's memory,
// where they live, is reset.
void domains_reset_for_tests();
#endif

// The domain asked to stop (sched_op shutdown) or was crashed by the
// hypervisor. Its vCPUs stop. A domain created by domctl is then `stopped`
// and VIRQ_DOM_EXC goes to every domain that bound it and controls this one
// (its builder destroys it, a budget at a time); any other is killed and
// then taken apart by the kernel itself (reap_dying).
void domain_shutdown(Domain& d, abi::ShutdownReason reason);
void domain_crash(Domain& d, const char* fmt, ...) __attribute__((format(printf, 2, 3)));


// Appends guest console output; complete lines go to the log as "<name>: ...".
// How many lines it completed (each costs the caller's budget more than a byte).
unsigned domain_console_write(Domain& d, const char* s, size_t n);

// The domain with id `id`, nullptr if there is none (never allocated, gone,
// or a reserved id). O(1).
Domain* domain_at(unsigned id);
// The list of domains not free, in no particular order: domains_first(),
// then each one's `next`.
Domain* domains_first();
unsigned domains_alive();    // running
unsigned domains_in_use();   // not free (running, stopped or being taken apart)

}  // namespace core
