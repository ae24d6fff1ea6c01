#include <core/log.hpp>
#include <core/m2p.hpp>
#include <core/memory.hpp>
#include <core/mm.hpp>
#include <core/platform.hpp>
#include <core/pte.hpp>
#include <core/pv_build.hpp>
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
    case BuildStage::layout: base::snformat(buf, cap, "%s", describe(e.layout)); return;
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

    bool alloc_memory() {
        p2m_first_pfn = l.pfn(l.p2m_va);
        for (uint64_t k = 0; k < l.p2m_pages; ++k) {
            auto m = alloc_domain_frame(d.id);
            if (!m) return false;
            g_p2m_frames[k] = *m;
        }
        for (uint64_t pfn = 0; pfn < l.nr_pages; ++pfn) {
            Mfn mfn;
            if (pfn >= p2m_first_pfn && pfn < p2m_first_pfn + l.p2m_pages) {
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

    void fill_start_info(Mfn shared_info_mfn) {
        auto* si = reinterpret_cast<abi::StartInfo*>(va_ptr(l.start_info_va));
        __builtin_memcpy(si->magic, abi::kStartInfoMagic, sizeof abi::kStartInfoMagic);
        si->nr_pages = l.nr_pages;
        si->shared_info = shared_info_mfn << 12;
        si->flags = 0;
        si->pt_base = l.pt_va;
        si->nr_pt_frames = l.nr_pt_frames;
        si->mfn_list = l.p2m_va;
        si->mod_start = 0;
        si->mod_len = 0;
        base::snformat(reinterpret_cast<char*>(si->cmd_line), sizeof si->cmd_line, "%s",
                       spec.cmdline ? spec.cmdline : "");
    }

    // Xen's 64-bit hypercall page (abi/hypercall_page.hpp).
    void fill_hypercall_page(uint64_t va) { abi::write_hypercall_page(va_ptr(va)); }

    // Bootstrap page tables for [v_start, v_end): L4 first, then the lower
    // levels in the order they are needed. Every frame in the region is mapped
    // writable except the tables themselves, which are mapped read-only. The
    // entries are only written here; pinning the L4 validates the whole tree
    // through the same checks every guest update goes through (core/mm).
    Mfn build_page_tables() {
        uint64_t pt_first = l.pfn(l.pt_va);
        uint64_t next = 1;
        Mfn l4 = mfn_of(pt_first);
        constexpr uint64_t kTableFlags = pte::kPresent | pte::kWritable | pte::kUser | pte::kAccessed;

        for (uint64_t va = l.v_start; va < l.v_end; va += 4096) {
            Mfn t = l4;
            for (unsigned level = 4; level > 1; --level) {
                uint64_t& e = frame_ptr<uint64_t>(t)[pte::index(va, level)];
                if (!(e & pte::kPresent)) e = pte::make(mfn_of(pt_first + next++), kTableFlags);
                t = pte::mfn(e);
            }
            uint64_t pfn = l.pfn(va);
            uint64_t flags = pte::kPresent | pte::kUser | pte::kAccessed;
            if (!l.is_page_table_pfn(pfn)) flags |= pte::kWritable | pte::kDirty;
            frame_ptr<uint64_t>(t)[pte::index(va, 1)] = pte::make(mfn_of(pfn), flags);
        }
        if (next != l.nr_pt_frames)
            log("builder: %s: %lu page-table frames used, %lu laid out", spec.name, next, l.nr_pt_frames);
        return l4;
    }
};

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
    if (uint32_t missing = image.xen.required_features & ~kSupportedFeatures) {
        BuildError e = fail(BuildStage::features);
        e.features = missing;
        return base::Err{e};
    }
    auto lay = compute_pv_layout(image.xen.virt_base, image.kstart, image.kend, spec.nr_pages);
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
    return &d;
}

}  // namespace core
