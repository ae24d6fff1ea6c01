// build_pv_domain on the fake machine: everything checked through the
// guest's own page tables, as the guest would see it.

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <abi/hypercall.hpp>
#include <abi/start_info.hpp>
#include <core/domain.hpp>
#include <core/kmem.hpp>
#include <core/memory.hpp>
#include <core/pte.hpp>
#include <core/pv_build.hpp>
#include <core/m2p.hpp>
#include <pvboot/layout.hpp>

#include <core/kmem.hpp>

#include "test_domain.hpp"

namespace {

using namespace coretest;
using core::BuildStage;
using core::PageType;

class PvBuild : public DomainTest {};

TEST_F(PvBuild, VcpuStartsAtEntryInRing3) {
    EXPECT_EQ(v->regs.rip, kEntry);
    EXPECT_EQ(v->regs.rsi, l.start_info_va);
    EXPECT_EQ(v->regs.rsp, l.stack_va + 4096);
    EXPECT_EQ(v->regs.cs, 0xe033u);
    EXPECT_EQ(v->regs.ss, 0xe02bu);
    EXPECT_TRUE(v->regs.rflags & core::flags::kIf);
    EXPECT_TRUE(v->regs.rflags & core::flags::kFixed);
    EXPECT_EQ(v->regs.rflags & core::flags::kIopl, 0u);
    EXPECT_EQ(v->state, core::VcpuState::runnable);
    EXPECT_TRUE(v->kernel_mode);
    EXPECT_EQ(v->domain, d);
    ASSERT_NE(v->info, nullptr);
    EXPECT_EQ(v->info, &d->shared_info->vcpu_info[0]);
    EXPECT_EQ(v->info->evtchn_upcall_mask, 1) << "events start masked";
    EXPECT_EQ(d->state, core::DomainState::running);
    EXPECT_EQ(d->nr_pages, kPages);
    EXPECT_EQ(d->tot_pages, kPages);
    EXPECT_STREQ(d->name, "test");
    EXPECT_EQ(core::domains_alive(), 1u);
    // FXSAVE image of a reset FPU.
    EXPECT_EQ(v->fpu_state[0] | v->fpu_state[1] << 8, 0x37f);
    EXPECT_EQ(v->fpu_state[24] | v->fpu_state[25] << 8, 0x1f80);
}

TEST_F(PvBuild, StartInfoThroughGuestTables) {
    auto si = read_guest<abi::StartInfo>(v->regs.rsi);
    EXPECT_STREQ(si.magic, "xen-3.0-x86_64");
    EXPECT_EQ(si.nr_pages, kPages);
    EXPECT_EQ(si.shared_info, d->shared_info_mfn << 12);
    EXPECT_EQ(si.flags, 0u);
    EXPECT_EQ(si.pt_base, l.pt_va);
    EXPECT_EQ(si.nr_pt_frames, l.nr_pt_frames);
    EXPECT_EQ(si.nr_pt_frames, 5u);
    EXPECT_EQ(si.mfn_list, l.p2m_va);
    EXPECT_EQ(si.mfn_list, kImageEnd) << "the P2M follows the image";
    EXPECT_EQ(si.mod_start, 0u);
    EXPECT_EQ(si.mod_len, 0u);
    EXPECT_STREQ(reinterpret_cast<const char*>(si.cmd_line), "console=hvc0 quiet");
    // pt_base is the L4 itself, mapped in the guest.
    uint64_t pa;
    bool w;
    ASSERT_TRUE(fake::translate(v->guest_table, si.pt_base, &pa, &w));
    EXPECT_EQ(pa, v->guest_table << 12);
    EXPECT_FALSE(w);
    // The shared info page records the P2M size.
    EXPECT_EQ(d->shared_info->arch.max_pfn, kPages);
}

TEST(PvBuildCmdline, LongCommandLineIsTruncatedAndTerminated) {
    fake::reset();
    auto image = guest_image();
    std::string cmd(3000, 'x');
    cmd[0] = 'A';
    auto r = core::build_pv_domain({"long", image.data(), image.size(), cmd.c_str(), kPages});
    ASSERT_TRUE(r.ok());
    platform::load_page_table((*r)->vcpu[0].guest_table);
    auto si = read_guest<abi::StartInfo>((*r)->vcpu[0].regs.rsi);
    const char* c = reinterpret_cast<const char*>(si.cmd_line);
    EXPECT_EQ(strnlen(c, sizeof si.cmd_line), sizeof si.cmd_line - 1);
    EXPECT_EQ(c[0], 'A');

    // A null command line gives an empty one.
    fake::reset();
    auto r2 = core::build_pv_domain({"null", image.data(), image.size(), nullptr, kPages});
    ASSERT_TRUE(r2.ok());
    platform::load_page_table((*r2)->vcpu[0].guest_table);
    auto si2 = read_guest<abi::StartInfo>((*r2)->vcpu[0].regs.rsi);
    EXPECT_EQ(si2.cmd_line[0], 0);
}

TEST_F(PvBuild, P2mMapsEveryPfnToADistinctOwnedFrame) {
    std::vector<uint64_t> p2m(kPages);
    ASSERT_TRUE(platform::copy_from_guest(p2m.data(), l.p2m_va, kPages * 8));
    std::set<uint64_t> seen;
    core::FrameTable& ft = core::frame_table();
    for (uint64_t pfn = 0; pfn < kPages; ++pfn) {
        uint64_t m = p2m[pfn];
        ASSERT_TRUE(ft.valid(m)) << "pfn " << pfn;
        EXPECT_EQ(ft[m].owner, d->id) << "pfn " << pfn;
        EXPECT_GE(m, fake::kReservedFrames) << "pfn " << pfn << " got a reserved frame";
        EXPECT_TRUE(seen.insert(m).second) << "frame " << m << " appears twice";
        EXPECT_NE(m, d->shared_info_mfn);
        EXPECT_EQ(core::m2p_get(m), pfn) << "M2P of pfn " << pfn;
        // The region is mapped 1:1 onto pfns.
        uint64_t pa;
        bool w;
        ASSERT_TRUE(fake::translate(v->guest_table, l.v_start + pfn * 4096, &pa, &w)) << "pfn " << pfn;
        EXPECT_EQ(pa, m << 12) << "pfn " << pfn;
    }
    EXPECT_EQ(ft[d->shared_info_mfn].owner, d->id);
    // Frames used: the domain's pages and its shared info page, and the
    // hypervisor's for its state (nothing else held any on this machine).
    EXPECT_EQ(free_at_start - core::frame_allocator().free_frames(), kPages + 1 + core::kmem::stats().frames);
    EXPECT_LE(core::kmem::stats().frames, 4u) << "its Domain (2), CSpace (1) and the id table's leaf (1)";
    EXPECT_TRUE(core::frame_allocator().check_invariants());
    // Nothing beyond the region is mapped.
    uint64_t pa;
    bool w;
    EXPECT_FALSE(fake::translate(v->guest_table, l.v_end, &pa, &w));
    EXPECT_FALSE(fake::translate(v->guest_table, l.v_start - 4096, &pa, &w));
}

TEST_F(PvBuild, ImageBytesAtTheirVirtualAddresses) {
    auto text = elftest::pattern(kTextSize, 1);
    auto got = read_guest_bytes(kText, kHypercallPage - kText);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), text.begin())) << "text differs";
    auto data = elftest::pattern(kDataFile, 99);
    auto gd = read_guest_bytes(kData, kDataFile);
    EXPECT_EQ(gd, data);
    auto bss = read_guest_bytes(kData + kDataFile, kDataMem - kDataFile);
    EXPECT_EQ(bss, std::vector<uint8_t>(kDataMem - kDataFile, 0));
    // The gap between the segments and the rest of the region are zero.
    auto gap = read_guest_bytes(kText + kTextSize, kData - (kText + kTextSize));
    EXPECT_EQ(gap, std::vector<uint8_t>(gap.size(), 0));
}

TEST_F(PvBuild, HypercallPageHasSyscallStubs) {
    auto entry = [&](unsigned i, size_t n) { return read_guest_bytes(kHypercallPage + 32 * i, n); };
    // xen_version: push %rcx; push %r11; mov $17,%eax; syscall; pop %r11; pop %rcx; ret
    std::vector<uint8_t> xv = {0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3};
    EXPECT_EQ(entry(17, xv.size()), xv);
    // iret: push %rcx; push %r11; push %rax; mov $23,%eax; syscall
    std::vector<uint8_t> ir = {0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05};
    EXPECT_EQ(entry(23, ir.size()), ir);
    for (unsigned i : {0u, 1u, 29u, 55u, 127u}) {
        auto e = entry(i, 14);
        EXPECT_EQ(e[3], 0xb8) << i;
        EXPECT_EQ(e[4] | e[5] << 8 | e[6] << 16 | e[7] << 24, int(i)) << i;
        EXPECT_EQ(e[8], 0x0f) << i;
        EXPECT_EQ(e[9], 0x05) << i;
        EXPECT_EQ(e[13], 0xc3) << i;
    }
}

TEST_F(PvBuild, BootstrapTablesTypedAndReadOnly) {
    core::FrameTable& ft = core::frame_table();
    // The L4 is the first page-table frame, pinned, and carries the
    // hypervisor slots.
    uint64_t pa;
    bool w;
    ASSERT_TRUE(fake::translate(v->guest_table, l.pt_va, &pa, &w));
    EXPECT_EQ(pa >> 12, v->guest_table);
    EXPECT_EQ(ft[v->guest_table].type, PageType::l4);
    EXPECT_TRUE(ft[v->guest_table].flags & core::kFramePinned);
    EXPECT_GE(fake::calls().hv_slot_copies, 1u);
    uint64_t* l4 = fake::table(v->guest_table);
    for (unsigned s = fake::kHvFirstSlot; s <= fake::kHvLastSlot; ++s)
        EXPECT_EQ(l4[s], fake::hv_slot_marker(s)) << "slot " << s;

    // Every frame of the page-table area is a table, mapped read-only;
    // the types come out as one L4, one L3, one L2 and two L1s.
    unsigned count[8] = {};
    for (uint64_t i = 0; i < l.nr_pt_frames; ++i) {
        uint64_t va = l.pt_va + i * 4096;
        ASSERT_TRUE(fake::translate(v->guest_table, va, &pa, &w));
        EXPECT_FALSE(w) << "page table at " << std::hex << va << " is writable";
        core::Mfn m = pa >> 12;
        EXPECT_TRUE(ft[m].flags & core::kFrameValidated);
        ++count[int(ft[m].type)];
        EXPECT_FALSE(platform::copy_to_guest(va, "x", 1)) << "guest can write its page table";
    }
    EXPECT_EQ(count[int(PageType::l4)], 1u);
    EXPECT_EQ(count[int(PageType::l3)], 1u);
    EXPECT_EQ(count[int(PageType::l2)], 1u);
    EXPECT_EQ(count[int(PageType::l1)], 2u);

    // Every other page of the region is writable and holds a `writable`
    // reference.
    for (uint64_t va = l.v_start; va < l.v_end; va += 4096) {
        if (va >= l.pt_va && va < l.pt_va + l.nr_pt_frames * 4096) continue;
        ASSERT_TRUE(fake::translate(v->guest_table, va, &pa, &w));
        EXPECT_TRUE(w) << std::hex << va;
        EXPECT_EQ(ft[pa >> 12].type, PageType::writable) << std::hex << va;
        EXPECT_EQ(ft[pa >> 12].type_count, 1u) << std::hex << va;
    }
    EXPECT_EQ(check_frame_accounting(v->guest_table, d->id), 0);
}

TEST_F(PvBuild, GuestCopiesObeyTheTables) {
    // The stack is writable, the start_info page too (Xen maps it RW).
    uint64_t x = 0x1122334455667788;
    EXPECT_TRUE(platform::copy_to_guest(l.stack_va + 8, &x, 8));
    EXPECT_EQ(read_guest<uint64_t>(l.stack_va + 8), x);
    // Across a page boundary.
    uint8_t buf[32];
    std::memset(buf, 0x5a, sizeof buf);
    EXPECT_TRUE(platform::copy_to_guest(l.stack_va + 4096 - 16, buf, sizeof buf));
    EXPECT_EQ(read_guest<uint8_t>(l.stack_va + 4096 + 15), 0x5a);
    // Running from the stack down into the (read-only) page tables fails.
    EXPECT_FALSE(platform::copy_to_guest(l.stack_va - 16, buf, sizeof buf));
    // Unmapped, non-canonical and hypervisor addresses fail.
    EXPECT_FALSE(platform::copy_from_guest(buf, l.v_end, 1));
    EXPECT_FALSE(platform::copy_from_guest(buf, l.v_end - 8, 16));
    EXPECT_FALSE(platform::copy_from_guest(buf, 0x0000800000000000ull, 1));
    EXPECT_FALSE(platform::copy_from_guest(buf, 0xFFFF800000000000ull, 1));
    EXPECT_FALSE(platform::copy_from_guest(buf, 0xFFFF87FFFFFFFFF8ull, 8));
    EXPECT_FALSE(platform::copy_from_guest(buf, ~0ull - 3, 8));
    // After leaving the guest's address space nothing is reachable.
    platform::leave_guest_address_space();
    EXPECT_FALSE(platform::copy_from_guest(buf, l.stack_va, 8));
}

TEST_F(PvBuild, ShutdownReturnsEveryFrame) {
    core::DomId id = d->id;
    core::domain_shutdown(*d, abi::ShutdownReason::poweroff);
    EXPECT_EQ(d->state, core::DomainState::dying) << "the kernel takes it apart on its way back to a guest";
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
    EXPECT_TRUE(core::frame_allocator().check_invariants());
    EXPECT_TRUE(is_gone(d));
    EXPECT_EQ(core::domains_alive(), 0u);
    EXPECT_EQ(fake::calls().leave_guest, 1u);
    EXPECT_EQ(fake::current_l4(), fake::kNoTable);
    EXPECT_NE(fake::log().find("shut down: poweroff"), std::string::npos) << fake::log();
    core::FrameTable& ft = core::frame_table();
    for (core::Mfn m = 0; m < ft.nframes(); ++m) {
        EXPECT_NE(ft[m].owner, id) << "frame " << m << " still owned";
        EXPECT_EQ(ft[m].count, 0u) << "frame " << m;
        EXPECT_EQ(core::m2p_get(m), core::kM2pInvalid) << "frame " << m;
    }
    // And the slot and memory can be used again.
    auto r = core::build_pv_domain(spec(kPages));
    ASSERT_TRUE(r.ok());
    core::domain_shutdown(**r, abi::ShutdownReason::reboot);
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

TEST_F(PvBuild, TwoDomainsShareNothing) {
    auto r = core::build_pv_domain(spec(kPages));
    ASSERT_TRUE(r.ok());
    core::Domain* d2 = *r;
    EXPECT_NE(d2->id, d->id);
    EXPECT_NE(d2->vcpu[0].guest_table, v->guest_table);
    EXPECT_EQ(check_frame_accounting(v->guest_table, d->id), 0);
    EXPECT_EQ(check_frame_accounting(d2->vcpu[0].guest_table, d2->id), 0);
    core::domain_shutdown(*d2, abi::ShutdownReason::poweroff);
    reap();
    EXPECT_EQ(check_frame_accounting(v->guest_table, d->id), 0);
    core::domain_shutdown(*d, abi::ShutdownReason::poweroff);
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

// ---- refusals: the right stage, and nothing allocated ---------------------

class PvBuildRefusal : public ::testing::Test {
protected:
    void SetUp() override {
        fake::reset();
        free_at_start = core::frame_allocator().free_frames();
    }
    core::BuildError refused(const std::vector<uint8_t>& img, uint64_t pages, BuildStage stage) {
        auto r = core::build_pv_domain({"refused", img.data(), img.size(), "", pages});
        EXPECT_FALSE(r.ok());
        if (r.ok()) return {};
        EXPECT_EQ(r.error().stage, stage);
        EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
        EXPECT_TRUE(core::frame_allocator().check_invariants());
        EXPECT_EQ(core::domains_alive(), 0u);
        char why[200];
        core::describe(r.error(), why, sizeof why);
        EXPECT_GT(std::strlen(why), 5u);
        return r.error();
    }
    uint64_t free_at_start = 0;
};

TEST_F(PvBuildRefusal, BadElf) {
    auto img = guest_image();
    img.resize(10);
    EXPECT_EQ(refused(img, kPages, BuildStage::elf).elf, elf::Error::TooSmall);
    auto img2 = guest_image();
    img2[0] = 0;
    EXPECT_EQ(refused(img2, kPages, BuildStage::elf).elf, elf::Error::BadMagic);
}

TEST_F(PvBuildRefusal, RequiredFeature) {
    // As Xen's toolstack: a PV kernel may not require auto_translated_physmap.
    auto b = guest_builder();
    b.notes.push_back(elftest::note_str(elf::xen_note::kFeatures, "!auto_translated_physmap|!writable_page_tables"));
    auto e = refused(b.build(), kPages, BuildStage::features);
    EXPECT_EQ(e.features, 1u << elf::xen_feat::kAutoTranslatedPhysmap);
}

TEST(PvBuildFeatures, WritablePageTablesRequiredAsLinuxDoes) {
    // Linux's FEATURES note, without its NUL: built, as Xen builds it.
    fake::reset();
    auto b = guest_builder();
    const std::string f = "!writable_page_tables|pae_pgdir_above_4gb";
    b.notes.push_back(elftest::Note{elf::xen_note::kFeatures, std::vector<uint8_t>(f.begin(), f.end())});
    auto img = b.build();
    auto r = core::build_pv_domain({"linuxish", img.data(), img.size(), "", kPages});
    ASSERT_TRUE(r.ok()) << int(r.error().stage);
    core::domain_shutdown(**r, abi::ShutdownReason::poweroff);
    reap();
}

TEST_F(PvBuildRefusal, TooLittleMemoryForTheLayout) {
    auto e = refused(guest_image(), kPages - 1, BuildStage::layout);
    EXPECT_EQ(e.layout, core::LayoutError::does_not_fit);
}

TEST_F(PvBuildRefusal, TooLarge) {
    refused(guest_image(), core::kMaxDomainPages + 1, BuildStage::too_large);
}

TEST_F(PvBuildRefusal, OutOfMachineMemory) {
    // The domain needs nr_pages + 1 frames (its shared info page).
    uint64_t free = core::frame_allocator().free_frames();
    refused(guest_image(), free, BuildStage::out_of_memory);
    // Take some frames away: a domain that fitted no longer does.
    std::vector<uint64_t> taken;
    while (core::frame_allocator().free_frames() > kPages) taken.push_back(*core::frame_allocator().alloc(0));
    free_at_start = core::frame_allocator().free_frames();
    refused(guest_image(), kPages, BuildStage::out_of_memory);
}

TEST_F(PvBuildRefusal, ExactlyEnoughMemory) {
    auto img = guest_image();
    // What the hypervisor takes for the domain's state, measured on a probe.
    core::Domain* probe = core::domain_alloc("probe");
    ASSERT_NE(probe, nullptr);
    uint64_t hv_frames = core::kmem::stats().frames;
    core::domain_destroy_now(*probe);
    ASSERT_EQ(core::kmem::stats().frames, 0u);
    uint64_t pages = core::frame_allocator().free_frames() - 1 - hv_frames;
    auto r = core::build_pv_domain({"big", img.data(), img.size(), "", pages});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(core::frame_allocator().free_frames(), 0u);
    platform::load_page_table((*r)->vcpu[0].guest_table);
    EXPECT_EQ(read_guest<abi::StartInfo>((*r)->vcpu[0].regs.rsi).nr_pages, pages);
    EXPECT_EQ(check_frame_accounting((*r)->vcpu[0].guest_table, (*r)->id), 0);
    core::domain_shutdown(**r, abi::ShutdownReason::poweroff);
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

// No domain can be made (here: the hypervisor's memory for one ran out;
// domain_table_test runs out of ids): refused, and nothing of the attempt
// is left once the fillers go.
TEST_F(PvBuildRefusal, NoDomainSlot) {
    std::vector<core::Domain*> fillers;
    while (core::Domain* f = core::domain_alloc("filler", 1)) fillers.push_back(f);
    ASSERT_GT(fillers.size(), 100u);
    auto img = guest_image();
    auto r = core::build_pv_domain({"late", img.data(), img.size(), "", kPages});
    ASSERT_FALSE(r.ok());
    // No Domain could be had at all, or one could (a partial slab, a free
    // block) but not its frames.
    EXPECT_TRUE(r.error().stage == BuildStage::no_domain_slot || r.error().stage == BuildStage::out_of_memory)
        << int(r.error().stage);
    for (core::Domain* f : fillers) core::domain_destroy_now(*f);
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
    EXPECT_EQ(core::kmem::stats().frames, 0u);
}

}  // namespace

// ---- an upper-half image shaped like Linux --------------------------------

namespace {

// VIRT_BASE 0xffffffff80000000, PADDR_OFFSET 0; text at p_paddr 0, a
// per-CPU segment with p_vaddr 0 at p_paddr 0x2000, data after it;
// INIT_P2M 0x8000000000; Linux's FEATURES (no NUL); no hypercall page.
constexpr uint64_t kUpper = 0xffffffff80000000;
std::vector<uint8_t> upper_image() {
    namespace xn = elf::xen_note;
    elftest::Builder b;
    b.entry = 0x1000000;
    b.segs.push_back(elftest::Seg{kUpper, elftest::pattern(0x2000, 7), 0, elftest::PF_R | elftest::PF_X, 4096, true, 0});
    b.segs.push_back(elftest::Seg{0, elftest::pattern(0x1000, 8), 0, elftest::PF_R | elftest::PF_W, 4096, true, 0x2000});
    b.segs.push_back(
        elftest::Seg{kUpper + 0x3000, elftest::pattern(0x800, 9), 0x2000, elftest::PF_R | elftest::PF_W, 4096, true, 0x3000});
    const std::string f = "!writable_page_tables|pae_pgdir_above_4gb";
    b.notes = {elftest::note_str(xn::kGuestOs, "linux"), elftest::note_str(xn::kXenVersion, "xen-3.0"),
               elftest::note_str(xn::kLoader, "generic"), elftest::note_u64(xn::kVirtBase, kUpper),
               elftest::note_u64(xn::kPaddrOffset, 0), elftest::note_u64(xn::kEntry, kUpper + 0x100),
               elftest::note_u64(xn::kInitP2m, 0x8000000000),
               elftest::Note{xn::kFeatures, std::vector<uint8_t>(f.begin(), f.end())},
               elftest::note_u32(xn::kModStartPfn, 1)};
    return b.build();
}

}  // namespace

TEST(PvBuildUpperHalf, LinuxShapedImageWithInitP2m) {
    fake::reset();
    const uint64_t free_at_start = core::frame_allocator().free_frames();
    auto img = upper_image();
    constexpr uint64_t kN = 2048;
    auto r = core::build_pv_domain({"upper", img.data(), img.size(), "console=hvc0", kN});
    ASSERT_TRUE(r.ok()) << int(r.error().stage);
    core::Domain* d = *r;
    core::Vcpu* v = &d->vcpu[0];
    platform::load_page_table(v->guest_table);
    fake::calls().current = v;

    // Xen's layout (pvboot): kernel pfns 0-4, start_info 5, 5 tables (L4,
    // L3, L2 and two L1s for [0xffffffff80000000, +4 MiB)), the stack, the
    // region to 4 MiB; then the P2M list (4 pages) and its own L3, L2, L1
    // for INIT_P2M.
    auto lay = pvboot::compute(pvboot::Kernel{kUpper, kUpper, kUpper + 0x5000, true, 0x8000000000, true},
                               pvboot::Options{kN, 0, false});
    ASSERT_TRUE(lay.ok());
    const pvboot::Layout& l = *lay;
    EXPECT_EQ(v->regs.rip, kUpper + 0x100);
    EXPECT_EQ(v->regs.rsi, l.start_info_va);
    EXPECT_EQ(v->regs.rsp, l.stack_va + 4096);
    EXPECT_EQ(l.v_end, kUpper + 0x400000);
    EXPECT_EQ(l.start_info_pfn, 5u);
    EXPECT_EQ(l.nr_pt_frames, 5u);
    EXPECT_EQ(l.p2m.pfn, 1024u);
    EXPECT_EQ(l.p2m.pages, 4u + 3);

    auto si = read_guest<abi::StartInfo>(v->regs.rsi);
    EXPECT_EQ(si.nr_pages, kN);
    EXPECT_EQ(si.mfn_list, 0x8000000000u);
    EXPECT_EQ(si.first_p2m_pfn, 1024u);
    EXPECT_EQ(si.nr_p2m_frames, 7u);
    EXPECT_EQ(si.pt_base, l.pt_va);
    EXPECT_EQ(si.nr_pt_frames, l.nr_pt_frames);
    EXPECT_EQ(si.flags, 0u);
    EXPECT_EQ(si.mod_start, 0u);

    // The image where Xen puts it: the per-CPU segment at VIRT_BASE + 0x2000.
    auto text = elftest::pattern(0x2000, 7);
    EXPECT_EQ(read_guest_bytes(kUpper, 0x2000), text);
    EXPECT_EQ(read_guest_bytes(kUpper + 0x2000, 0x1000), elftest::pattern(0x1000, 8));
    EXPECT_EQ(read_guest_bytes(kUpper + 0x3800, 0x1800), std::vector<uint8_t>(0x1800, 0));
    // The P2M list, read at INIT_P2M through the guest's own tables.
    std::vector<uint64_t> p2m(kN);
    ASSERT_TRUE(platform::copy_from_guest(p2m.data(), 0x8000000000, kN * 8));
    std::set<uint64_t> seen;
    for (uint64_t pfn = 0; pfn < kN; ++pfn) {
        EXPECT_EQ(core::m2p_get(p2m[pfn]), pfn) << pfn;
        EXPECT_TRUE(seen.insert(p2m[pfn]).second);
    }
    uint64_t pa;
    bool w;
    ASSERT_TRUE(fake::translate(v->guest_table, 0x8000000000, &pa, &w));
    EXPECT_TRUE(w);
    EXPECT_EQ(pa >> 12, p2m[1024]);
    EXPECT_FALSE(fake::translate(v->guest_table, 0x8000000000 + 4 * 4096, &pa, &w));
    // Its three tables are typed and validated, and mapped nowhere.
    core::FrameTable& ft = core::frame_table();
    EXPECT_EQ(ft[p2m[1024 + 4]].type, core::PageType::l3);
    EXPECT_EQ(ft[p2m[1024 + 5]].type, core::PageType::l2);
    EXPECT_EQ(ft[p2m[1024 + 6]].type, core::PageType::l1);
    // The region's tables read-only, in Xen's order: L4, L3, L2, L1s.
    EXPECT_EQ(ft[p2m[l.pgtables.pfn]].type, core::PageType::l4);
    EXPECT_EQ(ft[p2m[l.pgtables.pfn + 1]].type, core::PageType::l3);
    EXPECT_EQ(ft[p2m[l.pgtables.pfn + 2]].type, core::PageType::l2);
    EXPECT_EQ(ft[p2m[l.pgtables.pfn + 3]].type, core::PageType::l1);
    ASSERT_TRUE(fake::translate(v->guest_table, l.pt_va, &pa, &w));
    EXPECT_FALSE(w);
    EXPECT_EQ(check_frame_accounting(v->guest_table, d->id), 0);

    core::domain_shutdown(*d, abi::ShutdownReason::poweroff);
    reap();
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
}

TEST(PvBuildUpperHalf, HypervisorRangeRefused) {
    // The same image with VIRT_BASE (and so its region) in the hypervisor's
    // L4 slots: refused by the layout, nothing allocated.
    fake::reset();
    const uint64_t free_at_start = core::frame_allocator().free_frames();
    namespace xn = elf::xen_note;
    elftest::Builder b;
    const uint64_t hv = 0xffff800000000000;
    b.entry = hv + 0x100;
    b.segs.push_back(elftest::Seg{hv, elftest::pattern(0x2000, 7), 0, elftest::PF_R | elftest::PF_X});
    b.notes = {elftest::note_str(xn::kGuestOs, "evil"), elftest::note_u64(xn::kVirtBase, hv),
               elftest::note_u64(xn::kEntry, hv + 0x100)};
    auto img = b.build();
    auto r = core::build_pv_domain({"evil", img.data(), img.size(), "", 2048});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().stage, BuildStage::layout);
    EXPECT_EQ(r.error().layout, core::LayoutError::hypervisor_range);
    EXPECT_EQ(core::frame_allocator().free_frames(), free_at_start);
    char why[200];
    core::describe(r.error(), why, sizeof why);
    EXPECT_NE(std::string(why).find("hypervisor"), std::string::npos) << why;
}
