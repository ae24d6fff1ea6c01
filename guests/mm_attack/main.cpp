// The attacks of Xen's PV memory advisories, from inside a guest. Every one
// must be refused with the right error; after each group the guest checks that
// it is itself intact, and the system test checks that the bystander domain
// (mm_victim) kept running and kept its memory. One line per check:
// "PASS name" or "FAIL name: why".

#include <rt/check.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/traps.hpp>

#include <abi/errno.hpp>
#include <base/format.hpp>

namespace {

using abi::Hypercall;
using abi::MmuextCmd;
using rt::kPteA;
using rt::kPteD;
using rt::kPteP;
using rt::kPtePse;
using rt::kPteRw;

using rt::check;

constexpr long kEinval = abi::neg(abi::Errno::einval);
constexpr long kEfault = abi::neg(abi::Errno::efault);
constexpr long kEperm = abi::neg(abi::Errno::eperm);
constexpr uint64_t kHypervisorAddress = 0xFFFF830000001000ull;

// Pages of our image whose mappings the tests change and put back.
alignas(4096) uint8_t g_scratch[3][4096];
uint64_t scratch_va(unsigned i) { return rt::ptr(g_scratch[i]); }
uint64_t scratch_mfn(unsigned i) { return rt::mfn_of_pfn((scratch_va(i) - rt::kVirtBase) >> 12); }
long restore_scratch(unsigned i) {
    return rt::update_va_mapping(scratch_va(i), (scratch_mfn(i) << 12) | kPteP | kPteRw | kPteA | kPteD);
}
long map_scratch(unsigned i, uint64_t mfn, bool writable) {
    return rt::update_va_mapping(scratch_va(i), (mfn << 12) | kPteP | kPteA | (writable ? kPteRw | kPteD : 0));
}

// Frames we own that nothing maps: new page tables, data, things to give back.
uint64_t g_next_free_pfn;
uint64_t take_free_frame() { return rt::mfn_of_pfn(g_next_free_pfn++); }

// Our page tables at each level, on the path that maps the image.
uint64_t g_table_mfn[5];

// A known pattern in our own memory, checked after every group of attacks.
uint32_t g_canary[1024];
void fill_canary() {
    for (unsigned i = 0; i < 1024; ++i) g_canary[i] = i * 2654435761u;
}
void check_intact(const char* group) {
    bool ok = true;
    for (unsigned i = 0; i < 1024; ++i) ok &= g_canary[i] == i * 2654435761u;
    long v = rt::hypercall(Hypercall::xen_version, 0, 0);
    g_scratch[0][0] = 0x5A;   // the scratch page is ours and writable again
    ok &= v == (4 << 16 | 21) && g_scratch[0][0] == 0x5A;
    char name[64];
    base::snformat(name, sizeof name, "intact_after.%s", group);
    check(ok, name, "canary or hypercall path broken");
}

// --- page-table frames must never be writable ------------------------------

void attack_writable_tables() {
    for (unsigned level = 1; level <= 4; ++level) {
        uint64_t mfn = g_table_mfn[level];
        char name[64];
        long r = map_scratch(0, mfn, true);
        base::snformat(name, sizeof name, "attack.map_l%u_writable", level);
        check(r == kEinval, name, "rc %ld", r);
        r = rt::mmu_update_one(rt::l1e_maddr(scratch_va(0)), (mfn << 12) | kPteP | kPteRw | kPteA | kPteD);
        base::snformat(name, sizeof name, "attack.alias_l%u_writable_via_mmu_update", level);
        check(r == kEinval, name, "rc %ld", r);
    }
    // A read-only view of a page table is fine (and shows the real contents).
    long r = map_scratch(0, g_table_mfn[4], false);
    bool same = *reinterpret_cast<volatile uint64_t*>(scratch_va(0)) ==
                *reinterpret_cast<const uint64_t*>(rt::start_info().pt_base);
    check(r == 0 && same, "mm.readonly_alias_of_l4", "rc %ld", r);
    check(restore_scratch(0) == 0, "mm.restore_scratch");
    check_intact("writable_tables");
}

// --- frames that are not ours ------------------------------------------------

uint8_t g_own_bitmap[1 << 17];   // up to 1M frames

void attack_foreign_frames() {
    const abi::StartInfo& si = rt::start_info();
    uint64_t max_mfn = uint64_t(rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::maximum_ram_page), 0));
    check(max_mfn > 0 && max_mfn < (8ull << 20), "mm.maximum_ram_page", "got %ld", long(max_mfn));
    for (uint64_t pfn = 0; pfn < si.nr_pages; ++pfn) {
        uint64_t m = rt::mfn_of_pfn(pfn);
        if (m < 8 * sizeof g_own_bitmap) g_own_bitmap[m / 8] |= uint8_t(1u << (m % 8));
    }
    uint64_t shared = si.shared_info >> 12;
    uint64_t refused = 0, accepted = 0, first_accepted = 0;
    for (uint64_t m = 0; m <= max_mfn && m < 8 * sizeof g_own_bitmap; ++m) {
        if ((g_own_bitmap[m / 8] >> (m % 8)) & 1) continue;
        if (m == shared) continue;
        long r = map_scratch(0, m, false);
        if (r == kEinval) {
            ++refused;
        } else {
            if (!accepted) first_accepted = m;
            ++accepted;
            (void)restore_scratch(0);
        }
    }
    rt::printf("mm_attack: tried every frame that is not ours: %lu refused, %lu accepted\n", refused, accepted);
    check(accepted == 0 && refused > 1000, "attack.foreign_frames_refused", "frame %#lx was mapped", long(first_accepted));

    const uint64_t beyond[] = {max_mfn + 1, 1ull << 30, (1ull << 40) - 1};
    bool all = true;
    for (uint64_t m : beyond) all &= map_scratch(0, m, false) == kEinval && map_scratch(0, m, true) == kEinval;
    check(all, "attack.beyond_ram_refused");
    check(map_scratch(0, 0x100, true) == kEinval && map_scratch(0, 0x100, false) == kEinval,
          "attack.hypervisor_image_frame_refused");

    uint64_t m2p_mfn = 0;
    abi::XenMachphysMfnList ml{1, rt::ptr(&m2p_mfn), 0};
    long r = rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::machphys_mfn_list), rt::ptr(&ml));
    check(r == 0 && ml.nr_extents == 1 && m2p_mfn != 0, "mm.machphys_mfn_list", "rc %ld", r);
    check(map_scratch(0, m2p_mfn, true) == kEinval, "attack.m2p_frame_writable_refused");
    check(rt::l1e_maddr(scratch_va(0)) != 0 && restore_scratch(0) == 0, "mm.scratch_unchanged");
    check_intact("foreign_frames");
}

// --- superpages and linear page tables -----------------------------------------

uint64_t entry_maddr(unsigned level, unsigned index) { return (g_table_mfn[level] << 12) | (index * 8); }

void attack_superpages_and_linear_tables() {
    uint64_t data = scratch_mfn(1);
    long r = rt::mmu_update_one(entry_maddr(2, 511), (data << 12) | kPteP | kPteRw | kPtePse);
    check(r == kEinval, "attack.superpage_l2_refused", "rc %ld", r);
    r = rt::mmu_update_one(entry_maddr(3, 511), (data << 12) | kPteP | kPteRw | kPtePse);
    check(r == kEinval, "attack.superpage_l3_refused", "rc %ld", r);

    r = rt::mmu_update_one(entry_maddr(4, 100), (g_table_mfn[4] << 12) | kPteP);
    check(r == kEinval, "attack.linear_l4_readonly_refused", "rc %ld", r);
    r = rt::mmu_update_one(entry_maddr(4, 100), (g_table_mfn[4] << 12) | kPteP | kPteRw);
    check(r == kEinval, "attack.linear_l4_writable_refused", "rc %ld", r);
    r = rt::mmu_update_one(entry_maddr(3, 500), (g_table_mfn[4] << 12) | kPteP | kPteRw);
    check(r == kEinval, "attack.l3_entry_to_l4_refused", "rc %ld", r);
    r = rt::mmu_update_one(entry_maddr(2, 500), (g_table_mfn[2] << 12) | kPteP | kPteRw);
    check(r == kEinval, "attack.linear_l2_refused", "rc %ld", r);
    r = rt::mmu_update_one(entry_maddr(2, 500), (g_table_mfn[1] << 12) | kPteP | kPteRw | 0x10);   // PCD
    check(r == kEinval, "attack.cache_attributes_refused", "rc %ld", r);

    // Nothing of the refused entries landed.
    const uint64_t* l2 = reinterpret_cast<const uint64_t*>(rt::va_of_pfn(rt::m2p()[g_table_mfn[2]]));
    const uint64_t* l4 = reinterpret_cast<const uint64_t*>(rt::start_info().pt_base);
    check(l2[511] == 0 && l2[500] == 0 && l4[100] == 0, "mm.refused_entries_not_written");
    check_intact("superpages_and_linear_tables");
}

// --- types of frames in use -----------------------------------------------------

void attack_type_changes() {
    long r = rt::mmuext(MmuextCmd::pin_l1_table, scratch_mfn(0));
    check(r == kEinval, "attack.pin_writable_mapped_frame_refused", "rc %ld", r);
    r = rt::mmuext(MmuextCmd::pin_l2_table, g_table_mfn[1]);
    check(r == kEinval, "attack.retype_l1_in_use_as_l2_refused", "rc %ld", r);
    r = rt::mmuext(MmuextCmd::pin_l4_table, g_table_mfn[2]);
    check(r == kEinval, "attack.retype_l2_in_use_as_l4_refused", "rc %ld", r);

    // A table holding a writable mapping of itself.
    uint64_t f = take_free_frame();
    check(map_scratch(1, f, true) == 0, "mm.map_free_frame");
    auto* t = reinterpret_cast<uint64_t*>(scratch_va(1));
    for (unsigned i = 0; i < 512; ++i) t[i] = 0;
    for (unsigned i = 0; i < 300; ++i) t[i] = (scratch_mfn(2) << 12) | kPteP | kPteA;
    t[300] = (f << 12) | kPteP | kPteRw | kPteA | kPteD;
    check(restore_scratch(1) == 0, "mm.unmap_free_frame");
    r = rt::mmuext(MmuextCmd::pin_l1_table, f);
    check(r == kEinval, "attack.pin_table_mapping_itself_writable_refused", "rc %ld", r);
    // The half-validated table gave everything back: it can be mapped again.
    r = map_scratch(1, f, true);
    check(r == 0, "mm.refused_table_released", "rc %ld", r);

    // A proper L1: pin, pin again, unpin, unpin again.
    t[300] = 0;
    check(restore_scratch(1) == 0, "mm.unmap_table_to_pin");
    r = rt::mmuext(MmuextCmd::pin_l1_table, f);
    check(r == 0, "mm.pin_l1", "rc %ld", r);
    check(map_scratch(1, f, true) == kEinval, "attack.map_pinned_l1_writable_refused");
    check(rt::mmuext(MmuextCmd::pin_l1_table, f) == kEinval, "attack.double_pin_refused");
    check(rt::mmuext(MmuextCmd::unpin_table, f) == 0, "mm.unpin_l1");
    check(rt::mmuext(MmuextCmd::unpin_table, f) == kEinval, "attack.unpin_unpinned_refused");
    check(rt::mmuext(MmuextCmd::unpin_table, g_table_mfn[3]) == kEinval, "attack.unpin_in_use_table_refused");
    check(map_scratch(1, f, true) == 0 && restore_scratch(1) == 0, "mm.unpinned_table_is_memory_again");

    // Unpinning the L4 we run on leaves it in use (the base pointer holds it).
    check(rt::mmuext(MmuextCmd::unpin_table, g_table_mfn[4]) == 0, "mm.unpin_running_l4");
    check(map_scratch(0, g_table_mfn[4], true) == kEinval, "attack.map_unpinned_running_l4_writable_refused");
    check(rt::mmuext(MmuextCmd::pin_l4_table, g_table_mfn[4]) == 0, "mm.repin_running_l4");
    check_intact("type_changes");
}

// --- giving memory back ------------------------------------------------------------

long reservation(abi::MemoryOp op, uint64_t* frames, uint64_t n) {
    abi::XenMemoryReservation res{rt::ptr(frames), n, 0, 0, abi::kDomidSelf};
    return rt::hypercall(Hypercall::memory_op, uint64_t(op), rt::ptr(&res));
}

long current_reservation() {
    uint16_t self = abi::kDomidSelf;
    return rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), rt::ptr(&self));
}

void attack_reservation() {
    long cur = current_reservation();
    uint64_t f = g_table_mfn[1];
    check(reservation(abi::MemoryOp::decrease_reservation, &f, 1) == 0, "attack.give_back_page_table_refused");
    f = scratch_mfn(0);
    check(reservation(abi::MemoryOp::decrease_reservation, &f, 1) == 0, "attack.give_back_mapped_frame_refused");
    f = 0x100;
    check(reservation(abi::MemoryOp::decrease_reservation, &f, 1) == 0, "attack.give_back_foreign_frame_refused");
    check(current_reservation() == cur, "mm.reservation_unchanged_by_refusals");

    uint64_t pfn = g_next_free_pfn++;
    f = rt::mfn_of_pfn(pfn);
    long r = reservation(abi::MemoryOp::decrease_reservation, &f, 1);
    check(r == 1 && current_reservation() == cur - 1, "mm.decrease_reservation", "rc %ld", r);
    check(map_scratch(0, f, false) == kEinval, "attack.map_given_back_frame_refused");

    uint64_t got = ~0ull;
    r = reservation(abi::MemoryOp::increase_reservation, &got, 1);
    check(r == 1 && got != ~0ull && current_reservation() == cur, "mm.increase_reservation", "rc %ld", r);
    uint64_t more = 0;
    r = reservation(abi::MemoryOp::increase_reservation, &more, 1);
    check(r == 0, "mm.reservation_limit_enforced", "rc %ld", r);

    // Tell the hypervisor which pseudo-physical frame the new one is.
    r = rt::mmu_update_one((got << 12) | abi::kMmuMachphysUpdate, pfn);
    check(r == 0 && rt::m2p()[got] == pfn, "mm.machphys_update", "rc %ld", r);
    r = rt::mmu_update_one((0x100ull << 12) | abi::kMmuMachphysUpdate, 5);
    check(r == kEinval, "attack.machphys_update_foreign_refused", "rc %ld", r);
    check_intact("reservation");
}

// --- the hypervisor's own slots and the M2P -----------------------------------------

volatile unsigned g_faults;
volatile uint64_t g_fault_cr2;
uint64_t g_resume;
bool on_fault(rt::TrapFrame& f) {
    g_faults = g_faults + 1;
    g_fault_cr2 = rt::vcpu_info().arch.cr2;
    f.rip = g_resume;
    return true;
}

void attack_hypervisor_areas() {
    const unsigned slots[] = {256, 261, 262, 271};
    bool all = true;
    for (unsigned s : slots) all &= rt::mmu_update_one(entry_maddr(4, s), (g_table_mfn[3] << 12) | kPteP | kPteRw) == kEinval;
    check(all, "attack.hypervisor_l4_slots_refused");

    rt::set_trap_handler(14, on_fault);
    g_faults = 0;
    uint64_t target = abi::kRoMptVirtStart + 64;
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, %[resume]\n movq $0, (%[p])\n 1:"
                 : [resume] "=m"(g_resume) : [p] "r"(target) : "rax", "memory");
    check(g_faults == 1 && g_fault_cr2 == target, "attack.m2p_write_faults", "faults %ld", long(g_faults));
    g_faults = 0;
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, %[resume]\n movq (%[p]), %%rax\n 1:"
                 : [resume] "=m"(g_resume) : [p] "r"(kHypervisorAddress) : "rax", "memory");
    check(g_faults == 1, "attack.hypervisor_memory_read_faults", "faults %ld", long(g_faults));
    rt::set_trap_handler(14, nullptr);   // from here on a fault is a failure
    check_intact("hypervisor_areas");
}

// --- arguments pointing where they must not ---------------------------------------------

void attack_bad_arguments() {
    check(rt::hypercall(Hypercall::mmu_update, kHypervisorAddress, 1, 0, abi::kDomidSelf) == kEfault,
          "attack.mmu_update_hypervisor_pointer");
    check(rt::hypercall(Hypercall::mmu_update, 0x10, 1, 0, abi::kDomidSelf) == kEfault,
          "attack.mmu_update_unmapped_pointer");
    check(rt::hypercall(Hypercall::mmuext_op, kHypervisorAddress, 1, 0, abi::kDomidSelf) == kEfault,
          "attack.mmuext_op_hypervisor_pointer");
    check(rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::decrease_reservation), kHypervisorAddress) ==
              kEfault,
          "attack.memory_op_hypervisor_pointer");
    check(rt::hypercall(Hypercall::memory_op, uint64_t(abi::MemoryOp::current_reservation), 0x10) == kEfault,
          "attack.memory_op_unmapped_pointer");
    check(rt::hypercall(Hypercall::multicall, kHypervisorAddress, 1) == kEfault, "attack.multicall_hypervisor_pointer");
    check(rt::update_va_mapping(kHypervisorAddress, (scratch_mfn(0) << 12) | kPteP) == kEinval,
          "attack.update_va_mapping_hypervisor_va");
    uint64_t far = 0;
    abi::MmuUpdate req{rt::l1e_maddr(scratch_va(0)), (scratch_mfn(0) << 12) | kPteP | kPteRw | kPteA | kPteD};
    check(rt::hypercall(Hypercall::mmu_update, rt::ptr(&req), 1, kHypervisorAddress, abi::kDomidSelf) == kEfault,
          "attack.mmu_update_done_pointer");
    check(rt::hypercall(Hypercall::mmu_update, rt::ptr(&req), 1, rt::ptr(&far), 3) == kEperm,
          "attack.mmu_update_other_domain_refused");
    uint64_t vcpumask_bad = kHypervisorAddress;
    abi::MmuextOp op{};
    op.cmd = uint32_t(MmuextCmd::tlb_flush_multi);
    op.arg2.vcpumask = vcpumask_bad;
    check(rt::hypercall(Hypercall::mmuext_op, rt::ptr(&op), 1, 0, abi::kDomidSelf) == kEfault,
          "attack.mmuext_vcpumask_pointer");
    check_intact("bad_arguments");
}

// --- multicall ---------------------------------------------------------------------------

void test_multicall() {
    abi::MmuextOp flush{};
    flush.cmd = uint32_t(MmuextCmd::tlb_flush_local);
    uint16_t self = abi::kDomidSelf;
    abi::MulticallEntry e[5] = {};
    e[0].op = uint64_t(Hypercall::xen_version);
    e[1].op = uint64_t(Hypercall::update_va_mapping);
    e[1].args[0] = kHypervisorAddress;
    e[2].op = uint64_t(Hypercall::mmuext_op);
    e[2].args[0] = rt::ptr(&flush);
    e[2].args[1] = 1;
    e[2].args[3] = abi::kDomidSelf;
    e[3].op = uint64_t(Hypercall::memory_op);
    e[3].args[0] = uint64_t(abi::MemoryOp::current_reservation);
    e[3].args[1] = rt::ptr(&self);
    e[4].op = uint64_t(Hypercall::multicall);
    long r = rt::hypercall(Hypercall::multicall, rt::ptr(e), 5);
    check(r == 0 && long(e[0].result) == (4 << 16 | 21) && long(e[1].result) == kEinval && e[2].result == 0 &&
              long(e[3].result) == current_reservation() && long(e[4].result) == kEinval,
          "mm.multicall", "rc %ld", r);
}

// --- a million updates in one hypercall ---------------------------------------------------

void attack_million() {
    constexpr uint64_t kWindow = 0x40000000;   // 1 GiB: L3 index 1, empty until now
    constexpr uint64_t kCount = 1ull << 20;   // 16 MiB of requests
    uint64_t target_pte = rt::l1e_maddr(scratch_va(2));
    uint64_t t1 = take_free_frame(), t2 = take_free_frame();
    uint64_t page_a = take_free_frame(), page_b = take_free_frame();
    uint64_t l2 = take_free_frame();
    uint64_t l1s[8];
    for (auto& m : l1s) m = take_free_frame();

    // Two pages of requests: every request in A maps scratch 2 writable onto
    // t1, every one in B read-only onto t2.
    auto fill = [](uint64_t mfn, auto&& body) {
        (void)map_scratch(1, mfn, true);
        body(reinterpret_cast<uint64_t*>(scratch_va(1)));
        (void)restore_scratch(1);
    };
    fill(page_a, [&](uint64_t* p) {
        for (unsigned i = 0; i < 256; ++i) p[2 * i] = target_pte, p[2 * i + 1] = (t1 << 12) | kPteP | kPteRw | kPteA | kPteD;
    });
    fill(page_b, [&](uint64_t* p) {
        for (unsigned i = 0; i < 256; ++i) p[2 * i] = target_pte, p[2 * i + 1] = (t2 << 12) | kPteP | kPteA;
    });
    // 16 MiB of window: 8 L1 tables mapping A, B, A, B, ... read-only.
    for (unsigned k = 0; k < 8; ++k)
        fill(l1s[k], [&](uint64_t* p) {
            for (unsigned i = 0; i < 512; ++i) p[i] = (((i & 1) ? page_b : page_a) << 12) | kPteP | kPteA;
        });
    fill(l2, [&](uint64_t* p) {
        for (unsigned i = 0; i < 512; ++i) p[i] = i < 8 ? (l1s[i] << 12) | kPteP | kPteRw | kPteA : 0;
    });
    long r = rt::mmu_update_one(entry_maddr(3, 1), (l2 << 12) | kPteP | kPteRw | kPteA);
    check(r == 0, "mm.link_new_l2_and_l1s", "rc %ld", r);
    const auto* reqs = reinterpret_cast<const abi::MmuUpdate*>(kWindow);
    check(r == 0 && reqs[0].ptr == target_pte && reqs[kCount - 1].val == ((t2 << 12) | kPteP | kPteA),
          "mm.new_tables_map_the_window");

    uint64_t done = 0;
    rt::printf("mm_attack: batch start\n");
    r = rt::mmu_update(reqs, kCount, &done);
    rt::printf("mm_attack: batch end\n");
    check(r == 0 && done == kCount, "attack.million_updates_complete", "rc %ld, done %ld", r, long(done));
    const uint64_t* l1 = reinterpret_cast<const uint64_t*>(rt::va_of_pfn(rt::m2p()[target_pte >> 12]));
    check((l1[(target_pte & 4095) / 8] & rt::kPteAddr) == (t2 << 12), "attack.million_final_state");

    // Unlinking the new L2 takes the tree apart (preemptibly); its frames are
    // memory again afterwards.
    r = rt::mmu_update_one(entry_maddr(3, 1), 0);
    check(r == 0, "mm.unlink_l2", "rc %ld", r);
    check(map_scratch(1, l2, true) == 0 && map_scratch(1, l1s[7], true) == 0 && restore_scratch(1) == 0,
          "mm.unlinked_tables_are_memory_again");
    check(restore_scratch(2) == 0, "mm.restore_batch_target");
    check_intact("million");
}

}  // namespace

void rt::main() {
    rt::printf("mm_attack: start\n");
    fill_canary();
    g_next_free_pfn = rt::first_unmapped_pfn();
    for (unsigned level = 1; level <= 4; ++level) {
        uint64_t table;
        (void)rt::l1e_maddr(rt::kVirtBase, &table, level);
        g_table_mfn[level] = table;
    }
    check(g_table_mfn[1] && g_table_mfn[4] == rt::mfn_of_pfn((rt::start_info().pt_base - rt::kVirtBase) >> 12),
          "mm.walk_own_tables_through_m2p");

    attack_writable_tables();
    attack_foreign_frames();
    attack_superpages_and_linear_tables();
    attack_type_changes();
    attack_reservation();
    attack_hypervisor_areas();
    attack_bad_arguments();
    test_multicall();
    attack_million();
    rt::printf("mm_attack: done, %u failed\n", rt::g_failed_checks);
}
