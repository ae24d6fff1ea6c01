#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>
#include <core/pv_build.hpp>
#include <pvboot/layout.hpp>
#include <core/sched.hpp>
#include <core/timer.hpp>

#include <abi/hypercall.hpp>
#include <abi/hypercall_page.hpp>
#include <abi/start_info.hpp>
#include <abi/x86_64.hpp>
#include <base/format.hpp>

namespace core {

void describe(const BuildError& e, char* buf, size_t cap) {
    switch (e.stage) {
    case BuildStage::elf: base::snformat(buf, cap, "%s", elf::describe(e.elf)); return;
    case BuildStage::layout: base::snformat(buf, cap, "%s", pvboot::describe(e.layout)); return;
    case BuildStage::features:
        base::snformat(buf, cap, "it requires Xen features Moat does not offer (XENFEAT bits %#x)", e.features);
        return;
    case BuildStage::no_domain_slot: base::snformat(buf, cap, "no free domain slot"); return;
    case BuildStage::out_of_memory: base::snformat(buf, cap, "not enough free memory for it"); return;
    case BuildStage::too_large: base::snformat(buf, cap, "its memory size is larger than Moat supports"); return;
    case BuildStage::page_tables: base::snformat(buf, cap, "its bootstrap page tables did not validate"); return;
    }
    base::snformat(buf, cap, "unknown build error");
}

namespace {

BuildError fail(BuildStage s) { return BuildError{s, elf::Error{}, LayoutError{}, 0}; }

uint64_t table_mfn(void* ctx, uint64_t pfn);

template <typename T = uint8_t>
T* frame_ptr(Mfn mfn) { return static_cast<T*>(platform::phys_to_virt(mfn << 12)); }

// The P2M is built inside the guest's own P2M pages; these are their frames,
// allocated first. Static: the builder runs once at a time, on the boot CPU.
Mfn g_p2m_frames[kMaxDomainPages * 8 / 4096];

struct Builder {
    const BuildSpec& spec;
    const PvLayout& l;
    Domain& d;
    uint64_t p2m_first_pfn = 0;

    Mfn mfn_of(uint64_t pfn) const {
        return frame_ptr<uint64_t>(g_p2m_frames[pfn / 512])[pfn % 512];
    }
    uint8_t* va_ptr(uint64_t va) const {
        return frame_ptr(mfn_of(l.pfn(va))) + (va & 4095);
    }

    // Every pfn gets a frame; the P2M list's frames come first, so that the
    // list is written in place as the rest are allocated.
    bool alloc_memory() {
        p2m_first_pfn = l.p2m.pfn;
        for (uint64_t k = 0; k < l.p2m_list_pages; ++k) {
            auto m = alloc_domain_frame(d.id);
            if (!m) return false;
            g_p2m_frames[k] = *m;
        }
        for (uint64_t pfn = 0; pfn < l.nr_pages; ++pfn) {
            Mfn mfn;
            if (pfn >= p2m_first_pfn && pfn < p2m_first_pfn + l.p2m_list_pages) {
                mfn = g_p2m_frames[pfn - p2m_first_pfn];
            } else {
                auto m = alloc_domain_frame(d.id);
                if (!m) return false;
                mfn = *m;
            }
            frame_ptr<uint64_t>(g_p2m_frames[pfn / 512])[pfn % 512] = mfn;
        }
        return true;
    }

    // As Xen's start_info_x86_64, without the rings (none here).
    void fill_start_info(Mfn shared_info_mfn) {
        auto* si = reinterpret_cast<abi::StartInfo*>(va_ptr(l.start_info_va));
        __builtin_memcpy(si->magic, abi::kStartInfoMagic, sizeof abi::kStartInfoMagic);
        si->nr_pages = l.nr_pages;
        si->shared_info = shared_info_mfn << 12;
        si->flags = l.flags;
        si->pt_base = l.pt_va;
        si->nr_pt_frames = l.nr_pt_frames;
        si->mfn_list = l.p2m_va;
        si->first_p2m_pfn = l.first_p2m_pfn;
        si->nr_p2m_frames = l.nr_p2m_frames;
        si->mod_start = l.mod_start;
        si->mod_len = l.mod_len;
        base::snformat(reinterpret_cast<char*>(si->cmd_line), sizeof si->cmd_line, "%s",
                       spec.cmdline ? spec.cmdline : "");
    }

    // Xen's 64-bit hypercall page (abi/hypercall_page.hpp).
    void fill_hypercall_page(uint64_t va) { abi::write_hypercall_page(va_ptr(va)); }

    // The bootstrap page tables, as Xen's builder writes them (libs/pvboot):
    // the region mapped onto its pfns, the tables themselves read-only, and
    // with an INIT_P2M the P2M list at that address. The entries are only
    // written here; pinning the L4 validates the whole tree through the same
    // checks every guest update goes through (core/mm).
    Mfn build_page_tables() {
        const pvboot::Segment runs[2] = {l.pgtables, l.p2m_tables()};
        for (const pvboot::Segment& run : runs)
            for (uint64_t k = 0; k < run.pages; ++k)
                pvboot::fill_page_table(l, run.pfn + k, frame_ptr<uint64_t>(mfn_of(run.pfn + k)), &table_mfn, this);
        return mfn_of(l.l4_pfn());
    }
};

uint64_t table_mfn(void* ctx, uint64_t pfn) { return static_cast<Builder*>(ctx)->mfn_of(pfn); }

}  // namespace

base::Result<Domain*, BuildError> build_pv_domain(const BuildSpec& spec) {
    if (spec.nr_pages > kMaxDomainPages) return base::Err{fail(BuildStage::too_large)};

    auto img = elf::parse(spec.image, spec.image_size);
    if (!img) {
        BuildError e = fail(BuildStage::elf);
        e.elf = img.error();
        return base::Err{e};
    }
    const elf::Image& image = *img;
    if (uint32_t refused = image.xen.required_features & kRefusedFeatures) {
        BuildError e = fail(BuildStage::features);
        e.features = refused;
        return base::Err{e};
    }
    auto lay = pvboot::compute(pvboot::kernel_of(image), pvboot::Options{spec.nr_pages, 0, false});
    if (!lay) {
        BuildError e = fail(BuildStage::layout);
        e.layout = lay.error();
        return base::Err{e};
    }
    const PvLayout& l = *lay;
    // The domain's frames plus its shared info page.
    if (frame_allocator().free_frames() < l.nr_pages + 1) return base::Err{fail(BuildStage::out_of_memory)};

    Domain* dp = domain_alloc(spec.name, spec.cspace_slots);
    if (!dp) return base::Err{fail(BuildStage::no_domain_slot)};
    Domain& d = *dp;
    Builder b{spec, l, d};

    auto si = alloc_domain_frame(d.id);
    if (!si || !b.alloc_memory()) {
        domain_destroy_now(d);
        return base::Err{fail(BuildStage::out_of_memory)};
    }
    d.shared_info_mfn = *si;
    domain_count_shared_info(d);
    d.shared_info = frame_ptr<abi::SharedInfo>(*si);
    d.nr_pages = d.max_pages = d.tot_pages = l.nr_pages;
    d.shared_info->arch.max_pfn = l.nr_pages;
    for (auto& vi : d.shared_info->vcpu_info) vi.evtchn_upcall_mask = 1;

    auto loaded = elf::load(image, spec.image, spec.image_size, [&](uint64_t va, const uint8_t* src, uint64_t n) {
        uint8_t* dst = b.va_ptr(va);
        if (src) __builtin_memcpy(dst, src, n);
        else __builtin_memset(dst, 0, n);
    });
    if (!loaded) {   // parse() already checked the same bounds; keep the error honest anyway
        domain_destroy_now(d);
        BuildError e = fail(BuildStage::elf);
        e.elf = loaded.error();
        return base::Err{e};
    }

    b.fill_start_info(d.shared_info_mfn);
    if (image.xen.has_hypercall_page) b.fill_hypercall_page(image.xen.hypercall_page);
    Mfn l4 = b.build_page_tables();
    for (uint64_t pfn = 0; pfn < l.nr_pages; ++pfn) m2p_set(b.mfn_of(pfn), pfn);

    Vcpu& v = d.vcpu[0];
    sched_set_params(v, spec.weight, 0);
    // The L4 is pinned (as Xen's builder leaves it) and referenced as the
    // vCPU's page table; taking the type validates the whole tree.
    Budget unlimited = Budget::unlimited();   // at boot, before any guest runs
    MmCtx ctx{d, v, unlimited};
    if (pin_table(ctx, l4, PageType::l4) != 0 || get_page_and_type(ctx, l4, PageType::l4) != 0) {
        log("builder: %s: its bootstrap page tables did not validate", spec.name);
        domain_destroy_now(d);
        return base::Err{fail(BuildStage::page_tables)};
    }
    v.info = &d.shared_info->vcpu_info[0];
    v.guest_table = l4;
    v.kernel_mode = true;
    v.regs = Regs{};
    v.regs.rip = image.xen.entry;
    v.regs.rsp = l.stack_va + 4096;
    v.regs.rsi = l.start_info_va;
    v.regs.cs = sel::kGuestCs64;
    v.regs.ss = sel::kGuestDs;
    v.regs.rflags = flags::kIf | flags::kFixed;
    v.regs.rcx = v.regs.rip;
    v.regs.r11 = v.regs.rflags;
    vcpu_reset_fpu(v);
    publish_time(v);
    vcpu_start(v);

    log("domain %u (%s): %lu pages, image %#lx-%#lx, entry %#lx, start_info %#lx", d.id, d.name, l.nr_pages,
        l.kstart, l.kend, image.xen.entry, l.start_info_va);
    char pieces[200], addresses[200];
    pvboot::describe(l, pieces, sizeof pieces, addresses, sizeof addresses);
    log("domain %u (%s): %s", d.id, d.name, pieces);
    log("domain %u (%s): %s", d.id, d.name, addresses);
    return &d;
}

}  // namespace core
