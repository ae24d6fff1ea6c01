#include "pv.hpp"

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/hypercall.hpp>
#include <abi/hypercall_page.hpp>
#include <abi/memory.hpp>
#include <abi/moat.hpp>
#include <abi/start_info.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>
#include <elf/elf.hpp>
#include <pvboot/layout.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>

namespace builder {

namespace {

// The machine frames of the domain being built, by pfn.
uint64_t g_mfn[kMaxPages];

// The foreign window: pages of our image whose L1 entries are pointed at the
// new domain's frames while we write them, then given back our own frames
// (its frames must not stay mapped by us: a frame we map writable could never
// become one of its page tables). 64 pages: 256 KiB of the domain at a time.
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

bool window_map(uint16_t dom, const uint64_t* mfns, unsigned n, uint64_t flags = kRw) {
    abi::MmuUpdate u[kWindow];
    for (unsigned i = 0; i < n; ++i) u[i] = abi::MmuUpdate{g_window_l1e[i], (mfns[i] << 12) | flags};
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

// Runs fn(window, first pfn, pages) over pfns [first, first+count) of `dom`,
// kWindow pages at a time (consecutive pfns at consecutive window pages);
// fn returns false to stop.
template <typename F>
bool each_run(uint16_t dom, uint64_t first, uint64_t count, F&& fn) {
    for (uint64_t done = 0; done < count;) {
        unsigned n = count - done < kWindow ? unsigned(count - done) : kWindow;
        if (!window_map(dom, &g_mfn[first + done], n)) return false;
        bool ok = fn(&g_window[0][0], first + done, n);
        if (!window_unmap(n) || !ok) return false;
        done += n;
    }
    return true;
}

// Runs fn(page, pfn) over pfns [first, first+count) of `dom`.
template <typename F>
bool each_page(uint16_t dom, uint64_t first, uint64_t count, F&& fn) {
    return each_run(dom, first, count, [&](uint8_t* w, uint64_t pfn, unsigned n) {
        for (unsigned i = 0; i < n; ++i) fn(w + i * 4096ull, pfn + i);
        return true;
    });
}

// Reads image bytes [off, off+len): from the spec's memory (bounded by
// image_bytes) or from its boot module.
bool image_read(const PvSpec& s, uint64_t off, void* dst, uint64_t len) {
    if (!s.image) return module_read(s.image_module, off, dst, len) == 0;
    if (off > s.image_bytes || len > s.image_bytes - off) return false;
    __builtin_memcpy(dst, s.image + off, len);
    return true;
}

// The kernel image as an elf::Source: parse() reads its headers and notes
// through this, a block at a time; the segments are streamed separately.
struct ImageSource {
    const PvSpec* spec;
    static bool read(void* ctx, uint64_t off, void* dst, size_t len) {
        return image_read(*static_cast<ImageSource*>(ctx)->spec, off, dst, len);
    }
};

void fail(char* err, size_t len, const char* fmt, const char* what, long rc) {
    base::snformat(err, len, fmt, what, rc);
}

}  // namespace

long module_size(uint32_t index, char* name, size_t name_len) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::module_info);
    op.u.module.index = index;
    long r = domctl(op);
    if (r) return r;
    if (name) base::snformat(name, name_len, "%s", op.u.module.name);
    return long(op.u.module.size);
}

long module_read(uint32_t index, uint64_t off, void* buf, uint64_t len) {
    auto* p = static_cast<uint8_t*>(buf);
    for (uint64_t done = 0; done < len;) {
        abi::MoatDomctl rd{};
        rd.cmd = uint32_t(abi::DomctlCmd::module_read);
        rd.u.module.index = index;
        rd.u.module.offset = off + done;
        rd.u.module.len = len - done < abi::kModuleReadMax ? len - done : abi::kModuleReadMax;
        rd.u.module.buf = rt::ptr(p + done);
        long r = domctl(rd);
        if (r != 0) return r;
        done += rd.u.module.len;
    }
    return 0;
}

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
    if (domctl(op) != 0) return DomInfo{false, 0, 0, 0, 0, 0};
    return DomInfo{true,
                   op.u.info.state,
                   op.u.info.shutdown_reason,
                   op.u.info.mapped_grants,
                   op.u.info.paused,
                   op.u.info.cpu_time_ns};
}

PhysInfo domctl_physinfo() {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::physinfo);
    if (domctl(op) != 0) return PhysInfo{false, 0, 0, 0, 0, 0, false};
    return PhysInfo{true,
                    op.u.physinfo.total_frames,
                    op.u.physinfo.free_frames,
                    op.u.physinfo.held_frames,
                    op.u.physinfo.domains,
                    op.u.physinfo.hv_domain_bytes,
                    (op.u.physinfo.flags & abi::kPhysinfoDmaConfined) != 0};
}

bool copy_foreign(uint16_t dom, const uint64_t* mfns, uint64_t n, uint8_t* dst) {
    if (!window_init()) return false;
    // Read-only: a frame of its page tables maps too (its own memory to
    // read), and nothing of ours can write to it.
    constexpr uint64_t kRo = rt::kPteP | rt::kPteA;
    for (uint64_t done = 0; done < n;) {
        unsigned k = n - done < kWindow ? unsigned(n - done) : kWindow;
        if (!window_map(dom, mfns + done, k, kRo)) {
            (void)window_unmap(k);
            return false;
        }
        __builtin_memcpy(dst + done * 4096, g_window[0], k * 4096ull);
        if (!window_unmap(k)) return false;
        done += k;
    }
    return true;
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
    if (s.nr_pages > kMaxPages) {
        base::snformat(err, err_len, "%lu pages of memory, the builder handles at most %lu", s.nr_pages, kMaxPages);
        return false;
    }

    // The image: its headers and notes, read from its boot module (or memory).
    long image_size = s.image ? long(s.image_bytes) : module_size(s.image_module, nullptr, 0);
    if (image_size < 0) {
        base::snformat(err, err_len, "cannot read its image (boot module %u): %ld", s.image_module, image_size);
        return false;
    }
    ImageSource ms{&s};
    const elf::Source src{uint64_t(image_size), nullptr, &ImageSource::read, &ms};
    auto img = elf::parse(src);
    if (!img) {
        base::snformat(err, err_len, "image: %s", elf::describe(img.error()));
        return false;
    }
    const elf::Image& image = *img;
    if (uint32_t refused = image.xen.required_features & pvboot::kRefusedRequiredFeatures) {
        base::snformat(err, err_len, "image requires Xen features Moat does not offer (%#x)", refused);
        return false;
    }
    uint64_t ramdisk_bytes = 0;
    if (s.ramdisk_module) {
        long r = module_size(s.ramdisk_module, nullptr, 0);
        if (r < 0) {
            base::snformat(err, err_len, "cannot read its ramdisk (boot module %u): %ld", s.ramdisk_module, r);
            return false;
        }
        ramdisk_bytes = uint64_t(r);
    }

    // Where everything goes, as Xen's toolstack lays a domU out.
    auto lay = pvboot::compute(pvboot::kernel_of(image), pvboot::Options{s.nr_pages, ramdisk_bytes, true});
    if (!lay) {
        base::snformat(err, err_len, "layout: %s", pvboot::describe(lay.error()));
        return false;
    }
    const pvboot::Layout& l = *lay;
    {
        char pieces[200], addresses[200];
        pvboot::describe(l, pieces, sizeof pieces, addresses, sizeof addresses);
        rt::printf("%s: %s\n%s: entry %#lx, %s\n", s.name, pieces, s.name, image.xen.entry, addresses);
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
    // The rings: pages of the layout (inside the bootstrap mapping, after
    // start_info, as Xen's builder puts them), named only for a back-end.
    d.console_mfn = s.console_backend != kNoDomain ? g_mfn[l.console_pfn] : 0;
    d.store_mfn = s.store_backend != kNoDomain ? g_mfn[l.xenstore_pfn] : 0;

    // The kernel, streamed from its module into its frames: each window of
    // pages gets the segments' file bytes read straight into it and the rest
    // of their memory zeroed (fresh frames are zero already; this is cheap
    // insurance). Nothing of the image is ever buffered here.
    bool read_ok = true;
    bool ok = each_run(dom, l.kernel.pfn, l.kernel.pages, [&](uint8_t* w, uint64_t pfn, unsigned n) {
        const uint64_t lo = l.va(pfn), hi = lo + n * 4096ull;
        for (unsigned i = 0; i < image.nsegments; ++i) {
            const elf::Segment& g = image.segments[i];
            const uint64_t a = g.vaddr > lo ? g.vaddr : lo;
            const uint64_t mem_end = g.vaddr + g.memsz < hi ? g.vaddr + g.memsz : hi;
            if (a >= mem_end) continue;
            const uint64_t file_end = g.vaddr + g.filesz < mem_end ? g.vaddr + g.filesz : mem_end;
            if (a < file_end && !image_read(s, g.offset + (a - g.vaddr), w + (a - lo), file_end - a)) {
                read_ok = false;
                return false;
            }
            const uint64_t z = a > file_end ? a : file_end;
            if (z < mem_end) __builtin_memset(w + (z - lo), 0, mem_end - z);
        }
        return true;
    });
    if (!ok) {
        if (read_ok) base::snformat(err, err_len, "writing its image through foreign mappings failed");
        else base::snformat(err, err_len, "reading its image (boot module %u) failed", s.image_module);
        return false;
    }

    // The ramdisk, the same way, from the start of its pages.
    if (l.ramdisk.pages) {
        ok = each_run(dom, l.ramdisk.pfn, l.ramdisk.pages, [&](uint8_t* w, uint64_t pfn, unsigned n) {
            const uint64_t off = (pfn - l.ramdisk.pfn) * 4096;
            const uint64_t len = ramdisk_bytes - off < n * 4096ull ? ramdisk_bytes - off : n * 4096ull;
            read_ok = module_read(s.ramdisk_module, off, w, len) == 0;
            return read_ok;
        });
        if (!ok) {
            if (read_ok) base::snformat(err, err_len, "writing its ramdisk through foreign mappings failed");
            else base::snformat(err, err_len, "reading its ramdisk (boot module %u) failed", s.ramdisk_module);
            return false;
        }
    }

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

    // The P2M list: nr_pages MFNs, the rest of its last page zero (as Xen's).
    ok = each_page(dom, l.p2m.pfn, l.p2m_list_pages, [&](uint8_t* p, uint64_t pfn) {
        uint64_t first = (pfn - l.p2m.pfn) * 512;
        auto* e = reinterpret_cast<uint64_t*>(p);
        for (unsigned k = 0; k < 512; ++k) e[k] = first + k < s.nr_pages ? g_mfn[first + k] : 0;
    });
    // start_info, as Xen's start_info_x86_64.
    ok = ok && each_page(dom, l.start_info_pfn, 1, [&](uint8_t* p, uint64_t) {
        auto* si = reinterpret_cast<abi::StartInfo*>(p);
        __builtin_memset(p, 0, 4096);
        __builtin_memcpy(si->magic, abi::kStartInfoMagic, sizeof abi::kStartInfoMagic);
        si->nr_pages = s.nr_pages;
        si->shared_info = shared_info_mfn << 12;
        si->pt_base = l.pt_va;
        si->nr_pt_frames = l.nr_pt_frames;
        si->mfn_list = l.p2m_va;
        si->first_p2m_pfn = l.first_p2m_pfn;
        si->nr_p2m_frames = l.nr_p2m_frames;
        si->flags = l.flags;
        si->store_mfn = d.store_mfn;
        si->store_evtchn = d.store_port;
        si->console.domU.mfn = d.console_mfn;
        si->console.domU.evtchn = d.console_port;
        si->mod_start = l.mod_start;
        si->mod_len = l.mod_len;
        base::snformat(reinterpret_cast<char*>(si->cmd_line), sizeof si->cmd_line, "%s", s.cmdline ? s.cmdline : "");
    });
    // The ring pages start zeroed (fresh frames; said again, as Xen clears them).
    ok = ok && each_page(dom, l.xenstore_pfn, 1, [](uint8_t* p, uint64_t) { __builtin_memset(p, 0, 4096); });
    ok = ok && each_page(dom, l.console_pfn, 1, [](uint8_t* p, uint64_t) { __builtin_memset(p, 0, 4096); });
    // The hypercall page, only for an image that asks for one.
    if (image.xen.has_hypercall_page) {
        ok = ok && each_page(dom, l.pfn(image.xen.hypercall_page), 1,
                             [&](uint8_t* p, uint64_t) { abi::write_hypercall_page(p); });
    }
    // shared_info.arch.max_pfn: the size of its P2M.
    ok = ok && window_map(dom, &shared_info_mfn, 1);
    if (ok) {
        reinterpret_cast<abi::SharedInfo*>(g_window[0])->arch.max_pfn = s.nr_pages;
        ok = window_unmap(1);
    }
    if (!ok) return fail(err, err_len, "%s: %ld", "writing its memory through foreign mappings failed", -1), false;

    // The bootstrap page tables (and, with INIT_P2M, the P2M's), entry for
    // entry as Xen's setup_pgtables_pv writes them.
    auto mfn_of = [](uint64_t pfn) { return g_mfn[pfn]; };
    const pvboot::Segment runs[2] = {l.pgtables, l.p2m_tables()};
    for (const pvboot::Segment& run : runs) {
        bool filled = true;
        ok = each_page(dom, run.pfn, run.pages, [&](uint8_t* p, uint64_t pfn) {
            filled &= pvboot::fill_page_table(l, pfn, reinterpret_cast<uint64_t*>(p), mfn_of);
        });
        if (!ok || !filled) return fail(err, err_len, "%s: %ld", "writing its page tables failed", -1), false;
    }

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
    pin.arg1.mfn = g_mfn[l.l4_pfn()];
    long r = rt::hypercall(abi::Hypercall::mmuext_op, rt::ptr(&pin), 1, 0, dom);
    if (r != 0) return fail(err, err_len, "%s (%ld)", "its bootstrap page tables did not validate", r), false;

    // Its first context, as Xen's vcpu_x86_64.
    static abi::VcpuGuestContext ctx;
    ctx = abi::VcpuGuestContext{};
    ctx.user_regs.rip = image.xen.entry;
    ctx.user_regs.rsp = l.stack_va + 4096;
    ctx.user_regs.rsi = l.start_info_va;
    ctx.user_regs.rflags = 0x200;
    ctx.user_regs.cs = abi::kFlatKernelCs64;
    ctx.user_regs.ss = abi::kFlatKernelSs64;
    ctx.user_regs.ds = ctx.user_regs.es = ctx.user_regs.fs = ctx.user_regs.gs = abi::kFlatKernelDs64;
    ctx.debugreg[6] = 0xffff0ff0;
    ctx.debugreg[7] = 0x400;
    ctx.flags = abi::kVgcfInKernel | abi::kVgcfOnline;
    ctx.ctrlreg[3] = g_mfn[l.l4_pfn()] << 12;
    ctx.kernel_ss = ctx.user_regs.ss;
    ctx.kernel_sp = ctx.user_regs.rsp;
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::setvcpucontext);
    op.domain = dom;
    op.u.context = rt::ptr(&ctx);
    r = domctl(op);
    if (r != 0) return fail(err, err_len, "%s (%ld)", "setvcpucontext failed", r), false;
    return true;
}

}  // namespace builder
