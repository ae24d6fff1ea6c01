#include "pv.hpp"

#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/hypercall.hpp>
#include <abi/hypercall_page.hpp>
#include <abi/memory.hpp>
#include <abi/moat.hpp>
#include <abi/start_info.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>
#include <core/pv_layout.hpp>
#include <elf/elf.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>

namespace builder {

namespace {

// The machine frames of the domain being built, by pfn.
constexpr uint64_t kMaxPages = 64 * 1024;   // 256 MiB
uint64_t g_mfn[kMaxPages];

// The foreign window: pages of our image whose L1 entries are pointed at the
// new domain's frames while we write them, then given back our own frames
// (its frames must not stay mapped by us: a frame we map writable could never
// become one of its page tables).
constexpr unsigned kWindow = 64;
alignas(4096) uint8_t g_window[kWindow][4096];
uint64_t g_window_l1e[kWindow];   // machine addresses of their L1 entries

constexpr uint64_t kRw = rt::kPteP | rt::kPteRw | rt::kPteA | rt::kPteD;

bool window_init() {
    if (g_window_l1e[0]) return true;
    for (unsigned i = 0; i < kWindow; ++i)
        if (!(g_window_l1e[i] = rt::l1e_maddr(rt::ptr(g_window[i])))) return false;
    return true;
}

bool window_map(uint16_t dom, const uint64_t* mfns, unsigned n) {
    abi::MmuUpdate u[kWindow];
    for (unsigned i = 0; i < n; ++i) u[i] = abi::MmuUpdate{g_window_l1e[i], (mfns[i] << 12) | kRw};
    // mmu_update leaves the TLB alone, as in Xen: stale translations of the
    // window would write to our own frames.
    return rt::hypercall(abi::Hypercall::mmu_update, rt::ptr(u), n, 0, dom) == 0 &&
           rt::mmuext(abi::MmuextCmd::tlb_flush_local) == 0;
}

bool window_unmap(unsigned n) {
    abi::MmuUpdate u[kWindow];
    for (unsigned i = 0; i < n; ++i) {
        uint64_t own = rt::mfn_of_pfn((rt::ptr(g_window[i]) - rt::kVirtBase) >> 12);
        u[i] = abi::MmuUpdate{g_window_l1e[i], (own << 12) | kRw};
    }
    return rt::mmu_update(u, n) == 0 && rt::mmuext(abi::MmuextCmd::tlb_flush_local) == 0;
}

// Runs fn(page pointer, pfn) over pfns [first, first+count) of `dom`, kWindow at a time.
template <typename F>
bool each_page(uint16_t dom, uint64_t first, uint64_t count, F&& fn) {
    for (uint64_t done = 0; done < count;) {
        unsigned n = count - done < kWindow ? unsigned(count - done) : kWindow;
        if (!window_map(dom, &g_mfn[first + done], n)) return false;
        for (unsigned i = 0; i < n; ++i) fn(g_window[i], first + done + i);
        if (!window_unmap(n)) return false;
        done += n;
    }
    return true;
}

// Page tables are composed here, then copied into the domain's frames.
constexpr unsigned kMaxPt = 64;
uint64_t g_pt[kMaxPt][512];

void fail(char* err, size_t len, const char* fmt, const char* what, long rc) {
    base::snformat(err, len, fmt, what, rc);
}

}  // namespace

long domctl(abi::MoatDomctl& op) {
    op.version = abi::kMoatDomctlVersion;
    return rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
}

long domctl_simple(uint32_t cmd, uint16_t dom) {
    abi::MoatDomctl op{};
    op.cmd = cmd;
    op.domain = dom;
    return domctl(op);
}

DomInfo domctl_info(uint16_t dom) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::getinfo);
    op.domain = dom;
    if (domctl(op) != 0) return DomInfo{false, 0, 0, 0, 0};
    return DomInfo{true, op.u.info.state, op.u.info.shutdown_reason, op.u.info.mapped_grants, op.u.info.paused};
}

PhysInfo domctl_physinfo() {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::physinfo);
    if (domctl(op) != 0) return PhysInfo{false, 0, 0, 0};
    return PhysInfo{true, op.u.physinfo.total_frames, op.u.physinfo.free_frames, op.u.physinfo.held_frames};
}

bool pv_create(const PvSpec& s, PvDomain& out, char* err, size_t err_len) {
    if (s.nr_pages > kMaxPages) {
        base::snformat(err, err_len, "%lu pages of memory, the builder handles at most %lu", s.nr_pages, kMaxPages);
        return false;
    }
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::create);
    op.u.create.max_pages = s.nr_pages;
    op.u.create.vcpus = 1;
    op.u.create.cspace_slots = s.cspace_slots;
    op.u.create.weight = s.weight;
    op.u.create.cap_pct = s.cpu_cap;
    base::snformat(op.u.create.name, sizeof op.u.create.name, "%s", s.name);
    long r = domctl(op);
    if (r != 0) {
        base::snformat(err, err_len, "domctl create failed (%ld)", r);
        return false;
    }
    out = PvDomain{};
    out.id = op.domain;
    out.slot_domain = op.u.create.slot_domain;
    out.slot_grant = op.u.create.slot_grant;
    out.slot_event = op.u.create.slot_event;
    return true;
}

bool pv_build(const PvSpec& s, PvDomain& d, char* err, size_t err_len) {
    const uint16_t dom = d.id;
    if (!window_init()) {
        base::snformat(err, err_len, "cannot find our own page-table entries for the foreign window");
        return false;
    }
    auto img = elf::parse(s.image, s.image_size);
    if (!img) {
        base::snformat(err, err_len, "image: %s", elf::describe(img.error()));
        return false;
    }
    const elf::Image& image = *img;
    if (image.xen.required_features) {
        base::snformat(err, err_len, "image requires Xen features Moat does not offer (%#x)", image.xen.required_features);
        return false;
    }
    auto lay = core::compute_pv_layout(image.xen.virt_base, image.kstart, image.kend, s.nr_pages);
    if (!lay) {
        base::snformat(err, err_len, "layout: %s", core::describe(lay.error()));
        return false;
    }
    const core::PvLayout& l = *lay;
    // The console and store pages are the last two frames, outside the
    // bootstrap region.
    if (l.mapped_pages + 2 > s.nr_pages || l.nr_pt_frames > kMaxPt) {
        base::snformat(err, err_len, "%lu pages of memory is too little for this image (its start-of-day region alone takes %lu)",
                       s.nr_pages, l.mapped_pages);
        return false;
    }

    // Memory: every pfn, the kernel tells us the frames.
    for (uint64_t pfn = 0; pfn < s.nr_pages; pfn += 512) {
        uint64_t n = s.nr_pages - pfn < 512 ? s.nr_pages - pfn : 512;
        for (uint64_t k = 0; k < n; ++k) g_mfn[pfn + k] = pfn + k;
        abi::XenMemoryReservation res{rt::ptr(&g_mfn[pfn]), n, 0, 0, dom};
        long r = rt::hypercall(abi::Hypercall::memory_op, uint64_t(abi::MemoryOp::populate_physmap), rt::ptr(&res));
        if (r != long(n)) {
            if (r >= 0)
                base::snformat(err, err_len, "out of memory: %lu of its %lu pages could be given", pfn + uint64_t(r),
                               s.nr_pages);
            else
                base::snformat(err, err_len, "populating its memory failed at pfn %lu (%ld)", pfn, r);
            return false;
        }
    }
    d.console_mfn = s.console_backend != kNoDomain ? g_mfn[s.nr_pages - 2] : 0;
    d.store_mfn = s.store_backend != kNoDomain ? g_mfn[s.nr_pages - 1] : 0;

    // The image.
    const uint64_t first_pfn = 0, region = l.mapped_pages;
    auto loaded = elf::load(image, s.image, s.image_size, [&](uint64_t va, const uint8_t* src, uint64_t n) {
        while (n) {
            uint64_t pfn = l.pfn(va), off = va & 4095, chunk = 4096 - off < n ? 4096 - off : n;
            each_page(dom, pfn, 1, [&](uint8_t* p, uint64_t) {
                if (src) __builtin_memcpy(p + off, src, chunk);
                else __builtin_memset(p + off, 0, chunk);
            });
            va += chunk;
            n -= chunk;
            if (src) src += chunk;
        }
    });
    if (!loaded) {
        base::snformat(err, err_len, "image: %s", elf::describe(loaded.error()));
        return false;
    }
    (void)first_pfn;
    (void)region;

    // Event channels for its rings: unbound ports of its own, for the back-ends.
    auto port_for = [&](uint16_t backend, uint32_t* port) {
        abi::EvtchnAllocUnbound a{dom, backend, 0};
        long r = rt::evtchn_op(abi::EvtchnOp::alloc_unbound, &a);
        *port = a.port;
        return r;
    };
    if (s.console_backend != kNoDomain) {
        long r = port_for(s.console_backend, &d.console_port);
        if (r) return fail(err, err_len, "%s port: %ld", "console", r), false;
    }
    if (s.store_backend != kNoDomain) {
        long r = port_for(s.store_backend, &d.store_port);
        if (r) return fail(err, err_len, "%s port: %ld", "xenstore", r), false;
    }
    // Grant references 0 and 1, as Xen's builder seeds them.
    auto seed = [&](uint32_t ref, uint16_t to, uint64_t frame) {
        abi::MoatDomctl op{};
        op.cmd = uint32_t(abi::DomctlCmd::set_grant);
        op.domain = dom;
        op.u.grant = abi::DomctlGrant{ref, abi::kGtfPermitAccess, to, frame};
        return domctl(op);
    };
    if (s.console_backend != kNoDomain && seed(0, s.console_backend, d.console_mfn) != 0)
        return fail(err, err_len, "%s grant: %ld", "console", -1), false;
    if (s.store_backend != kNoDomain && seed(1, s.store_backend, d.store_mfn) != 0)
        return fail(err, err_len, "%s grant: %ld", "xenstore", -1), false;

    abi::MoatDomctl info{};
    info.cmd = uint32_t(abi::DomctlCmd::getinfo);
    info.domain = dom;
    if (domctl(info) != 0) return fail(err, err_len, "%s: %ld", "getinfo", -1), false;
    uint64_t shared_info_mfn = info.u.info.shared_info_mfn;

    // P2M list, start_info, hypercall page.
    bool ok = each_page(dom, l.pfn(l.p2m_va), l.p2m_pages, [&](uint8_t* p, uint64_t pfn) {
        uint64_t first = (pfn - l.pfn(l.p2m_va)) * 512;
        auto* e = reinterpret_cast<uint64_t*>(p);
        for (unsigned k = 0; k < 512; ++k) e[k] = first + k < s.nr_pages ? g_mfn[first + k] : ~0ull;
    });
    ok = ok && each_page(dom, l.pfn(l.start_info_va), 1, [&](uint8_t* p, uint64_t) {
        auto* si = reinterpret_cast<abi::StartInfo*>(p);
        __builtin_memset(p, 0, 4096);
        __builtin_memcpy(si->magic, abi::kStartInfoMagic, sizeof abi::kStartInfoMagic);
        si->nr_pages = s.nr_pages;
        si->shared_info = shared_info_mfn << 12;
        si->pt_base = l.pt_va;
        si->nr_pt_frames = l.nr_pt_frames;
        si->mfn_list = l.p2m_va;
        si->store_mfn = d.store_mfn;
        si->store_evtchn = d.store_port;
        si->console.domU.mfn = d.console_mfn;
        si->console.domU.evtchn = d.console_port;
        base::snformat(reinterpret_cast<char*>(si->cmd_line), sizeof si->cmd_line, "%s", s.cmdline ? s.cmdline : "");
    });
    if (image.xen.has_hypercall_page) {
        ok = ok && each_page(dom, l.pfn(image.xen.hypercall_page), 1,
                             [&](uint8_t* p, uint64_t) { abi::write_hypercall_page(p); });
    }
    // shared_info.arch.max_pfn, as Xen's builder sets it.
    ok = ok && window_map(dom, &shared_info_mfn, 1);
    if (ok) {
        reinterpret_cast<abi::SharedInfo*>(g_window[0])->arch.max_pfn = s.nr_pages;
        ok = window_unmap(1);
    }
    if (!ok) return fail(err, err_len, "%s: %ld", "writing its memory through foreign mappings failed", -1), false;

    // Bootstrap page tables for [v_start, v_end): everything writable but the
    // tables themselves (read-only), as the kernel's builder lays them out.
    uint64_t pt_first = l.pfn(l.pt_va), next = 1;
    __builtin_memset(g_pt, 0, sizeof(g_pt[0]) * l.nr_pt_frames);
    constexpr uint64_t kTable = rt::kPteP | rt::kPteRw | rt::kPteU | rt::kPteA;
    for (uint64_t va = l.v_start; va < l.v_end; va += 4096) {
        unsigned t = 0;
        for (unsigned level = 4; level > 1; --level) {
            uint64_t& e = g_pt[t][(va >> (12 + 9 * (level - 1))) & 511];
            if (!(e & rt::kPteP)) {
                if (next >= l.nr_pt_frames) return fail(err, err_len, "%s (%ld)", "page-table layout overflow", long(next)), false;
                e = (g_mfn[pt_first + next++] << 12) | kTable;
            }
            uint64_t mfn = (e & rt::kPteAddr) >> 12;
            t = 0;
            while (g_mfn[pt_first + t] != mfn) ++t;
        }
        uint64_t pfn = l.pfn(va);
        uint64_t flags = rt::kPteP | rt::kPteU | rt::kPteA;
        if (!l.is_page_table_pfn(pfn)) flags |= rt::kPteRw | rt::kPteD;
        g_pt[t][(va >> 12) & 511] = (g_mfn[pfn] << 12) | flags;
    }
    ok = each_page(dom, pt_first, l.nr_pt_frames, [&](uint8_t* p, uint64_t pfn) {
        __builtin_memcpy(p, g_pt[pfn - pt_first], 4096);
    });
    if (!ok) return fail(err, err_len, "%s: %ld", "writing its page tables failed", -1), false;

    // The M2P entries of its frames.
    for (uint64_t pfn = 0; pfn < s.nr_pages; pfn += 256) {
        abi::MmuUpdate u[256];
        unsigned n = s.nr_pages - pfn < 256 ? unsigned(s.nr_pages - pfn) : 256;
        for (unsigned k = 0; k < n; ++k) u[k] = abi::MmuUpdate{(g_mfn[pfn + k] << 12) | abi::kMmuMachphysUpdate, pfn + k};
        long r = rt::hypercall(abi::Hypercall::mmu_update, rt::ptr(u), n, 0, dom);
        if (r != 0) return fail(err, err_len, "%s (%ld)", "machine-to-phys update refused", r), false;
    }

    // Pinning its L4 validates the whole tree against its own frames.
    abi::MmuextOp pin{};
    pin.cmd = uint32_t(abi::MmuextCmd::pin_l4_table);
    pin.arg1.mfn = g_mfn[pt_first];
    long r = rt::hypercall(abi::Hypercall::mmuext_op, rt::ptr(&pin), 1, 0, dom);
    if (r != 0) return fail(err, err_len, "%s (%ld)", "its bootstrap page tables did not validate", r), false;

    static abi::VcpuGuestContext ctx;
    ctx = abi::VcpuGuestContext{};
    ctx.user_regs.rip = image.xen.entry;
    ctx.user_regs.rsp = l.stack_va + 4096;
    ctx.user_regs.rsi = l.start_info_va;
    ctx.user_regs.rflags = 0x200;
    ctx.ctrlreg[3] = g_mfn[pt_first] << 12;
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::setvcpucontext);
    op.domain = dom;
    op.u.context = rt::ptr(&ctx);
    r = domctl(op);
    if (r != 0) return fail(err, err_len, "%s (%ld)", "setvcpucontext failed", r), false;
    return true;
}

}  // namespace builder
