// Writable page tables (core/ptwr.hpp): where the emulated write goes. The
// address is computed from the instruction (registers, displacement, RIP,
// an FS/GS override's base), as the CPU and Xen's emulator do, and must be
// exactly the fault's address, with the write naturally aligned and so inside
// that one entry; anything else is the guest's own page fault, the table
// unchanged. Also: prefixes and instruction bytes an attacker chooses, an
// instruction that would leave a non-canonical rip, and the writes Linux
// makes (with the registers and flags they leave). How the value is checked
// (mod_entry, as mmu_update) is in pv_abi_test.cpp's Ptwr tests.

#include <gtest/gtest.h>

#include <iterator>
#include <vector>

#include <core/platform.hpp>
#include <core/pte.hpp>
#include <core/ptwr.hpp>
#include <core/traps.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;
namespace pte = core::pte;

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kPfWrite = 0x7;   // present + write + user: a guest kernel's write to a read-only page
constexpr uint64_t kZf = 1u << 6, kCf = 1u << 0, kOf = 1u << 11, kAf = 1u << 4, kSf = 1u << 7;

class PtwrAddress : public MultiDomainTest {
protected:
    void SetUp() override {
        MultiDomainTest::SetUp();
        d = build("guest");
        ASSERT_TRUE(d);
        v = &d->vcpu[0];
        // Its L1 for kPlay, mapped read-only at kWin (as Linux maps its page
        // tables); the page before kWin stays an ordinary writable page.
        l1 = pte_ma(d, kPlay) >> 12;
        ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kWin, pte::make(l1, pte::kPresent | pte::kAccessed), 0), 0);
        ASSERT_TRUE(l1e(d, kWin - kPageSize) & pte::kWritable);
        v->traps[14] = core::TrapHandler{kPfHandler, 0, false};
        code = kScratch + 0x3000;
        good = pte::make(mfn_at(d, kPlay + 0x6000), pte::kPresent | pte::kWritable | pte::kAccessed | pte::kDirty);
    }

    // Where entry `i` of the L1 is seen through kWin, and its value.
    static uint64_t at(unsigned i) { return kWin + i * 8; }
    uint64_t entry(unsigned i) const { return fake::table(l1)[i]; }

    // Runs `bytes` at `code` with registers `r` as a write that faulted at
    // `cr2` (present + write, guest kernel mode).
    core::Regs run(std::vector<uint8_t> bytes, core::Regs r, uint64_t cr2) {
        as(d);
        EXPECT_TRUE(platform::copy_to_guest(code, bytes.data(), bytes.size()));
        r.rip = code;
        r.rsp = kScratch + 0x800;
        core::guest_exception(*v, r, core::vec::kPageFault, kPfWrite, cr2);
        return r;
    }
    // The vCPU's registers with no arithmetic flag set.
    core::Regs regs() const {
        core::Regs r = v->regs;
        r.rflags = core::flags::kIf | core::flags::kFixed;
        return r;
    }
    bool emulated(const core::Regs& r, size_t len) const { return r.rip == code + len; }
    // The guest got the page fault it caused, at `cr2`.
    bool delivered(const core::Regs& r, uint64_t cr2) const { return r.rip == kPfHandler && v->info->arch.cr2 == cr2; }

    static constexpr uint64_t kWin = kPlay + 0x80000;
    static constexpr uint64_t kPfHandler = 0x400700;
    // The entry that maps an ordinary page of its own (and the next one, and
    // the one before, do too): the entries the tests write.
    static constexpr unsigned kA = pte::index(kPlay + 0x5000, 1);
    core::Domain* d = nullptr;
    core::Vcpu* v = nullptr;
    core::Mfn l1 = 0;
    uint64_t code = 0;
    uint64_t good = 0;   // an entry mmu_update takes: one of its own frames, writable
};

// The finding: 8 bytes from 4 before the L1's alias. The CPU faults on the
// alias with CR2 at its first byte; the write is not emulated (entry 0 as it
// was, the ordinary page's bytes as they were) and the guest gets the fault.
TEST_F(PtwrAddress, AStoreAcrossThePageBoundaryIsRefused) {
    constexpr uint32_t kTail = 0x7A7A7A7A;
    struct Case {
        std::vector<uint8_t> bytes;
        uint64_t before;   // bytes before the boundary the store starts
    } cases[] = {
        {{0x48, 0x89, 0x07}, 4},   // mov %rax, (%rdi)
        {{0x48, 0x89, 0x07}, 1},
        {{0x89, 0x07}, 2},         // mov %eax, (%rdi)
        {{0x66, 0x89, 0x07}, 1},   // mov %ax, (%rdi)
        {{0x48, 0x87, 0x07}, 4},   // xchg %rax, (%rdi)
        {{0xF0, 0x48, 0x09, 0x07}, 4},   // lock or %rax, (%rdi)
    };
    for (auto& c : cases) {
        uint32_t tail = kTail;
        ASSERT_TRUE(platform::copy_to_guest(kWin - sizeof tail, &tail, sizeof tail));
        uint64_t e0 = entry(0);
        core::Regs r = regs();
        r.rax = good;
        r.rdi = kWin - c.before;
        r = run(c.bytes, r, kWin);
        EXPECT_TRUE(delivered(r, kWin)) << "starting " << c.before << " before the boundary";
        EXPECT_EQ(entry(0), e0);
        EXPECT_EQ(get<uint32_t>(d, kWin - sizeof tail), kTail) << "the ordinary page is the guest's to write";
    }
    EXPECT_EQ(mm_invariant_violations(), "");
}

// A write that starts inside the alias but runs into the next entry: CR2 is
// its first byte, but it is not inside one entry.
TEST_F(PtwrAddress, AStoreAcrossTwoEntriesIsRefused) {
    uint64_t eA = entry(kA), eB = entry(kA + 1);
    struct Case {
        std::vector<uint8_t> bytes;
        unsigned offset;
    } cases[] = {
        {{0x48, 0x89, 0x07}, 4}, {{0x48, 0x89, 0x07}, 1}, {{0x89, 0x07}, 6}, {{0x66, 0x89, 0x07}, 7},
        {{0xF0, 0x48, 0x0F, 0xB1, 0x0F}, 4},   // lock cmpxchg %rcx, (%rdi)
    };
    for (auto& c : cases) {
        core::Regs r = regs();
        r.rax = eA;
        r.rcx = good;
        r.rdi = at(kA) + c.offset;
        r = run(c.bytes, r, r.rdi);
        EXPECT_TRUE(delivered(r, at(kA) + c.offset)) << "at offset " << c.offset;
        EXPECT_EQ(entry(kA), eA);
        EXPECT_EQ(entry(kA + 1), eB);
    }
    EXPECT_EQ(mm_invariant_violations(), "");
}

// Inside one entry but not naturally aligned: refused, as Xen does. Naturally
// aligned parts of an entry combine with the rest of it.
TEST_F(PtwrAddress, APartOfAnEntryMustBeNaturallyAligned) {
    uint64_t eA = entry(kA);
    ASSERT_TRUE(eA & pte::kPresent);
    for (auto [bytes, offset] : {std::pair<std::vector<uint8_t>, unsigned>{{0x89, 0x07}, 2},
                                 {{0x89, 0x07}, 1},
                                 {{0x66, 0x89, 0x07}, 1},
                                 {{0x66, 0x89, 0x07}, 3}}) {
        core::Regs r = regs();
        r.rax = 0;   // what the entry has there (or less): harmless if it were taken
        r.rdi = at(kA) + offset;
        r = run(bytes, r, r.rdi);
        EXPECT_TRUE(delivered(r, at(kA) + offset)) << bytes.size() << " bytes at offset " << offset;
        EXPECT_EQ(entry(kA), eA);
    }
    // A byte anywhere: mov %al, 1(%rdi) sets an available bit (bit 9).
    core::Regs r = regs();
    r.rax = ((eA >> 8) & 0xFF) | 0x02;
    r.rdi = at(kA);
    r = run({0x88, 0x47, 0x01}, r, at(kA) + 1);
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(entry(kA), eA | (1ull << 9));
    // The high half: mov %eax, 4(%rdi) sets NX.
    r = regs();
    r.rax = uint32_t(pte::kNx >> 32);
    r.rdi = at(kA);
    r = run({0x89, 0x47, 0x04}, r, at(kA) + 4);
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(entry(kA), eA | (1ull << 9) | pte::kNx);
    // The top 16 bits (66 prefix), back to 0.
    r = regs();
    r.rax = 0;
    r.rdi = at(kA) + 6;
    r = run({0x66, 0x89, 0x07}, r, at(kA) + 6);
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(entry(kA), eA | (1ull << 9));
    EXPECT_EQ(mm_invariant_violations(), "");
}

// The address the instruction names must be CR2: a fault reported for one
// entry never lets the instruction's bytes write another, or another page.
TEST_F(PtwrAddress, TheInstructionsAddressMustBeTheFaultsAddress) {
    uint64_t eA = entry(kA), eB = entry(kA + 1);
    for (uint64_t rdi : {at(kA + 1), at(kA - 1), at(kA) + 4, kScratch, kWin - kPageSize + kA * 8, at(kA) + kPageSize}) {
        core::Regs r = regs();
        r.rax = good;
        r.rdi = rdi;
        r = run({0x48, 0x89, 0x07}, r, at(kA));
        EXPECT_TRUE(delivered(r, at(kA))) << std::hex << rdi;
        EXPECT_EQ(entry(kA), eA);
        EXPECT_EQ(entry(kA + 1), eB);
    }
    // RIP-relative: mov %rax, disp32(%rip), from the end of the instruction.
    constexpr size_t kRipLen = 7;
    auto rip_store = [&](uint64_t target) {
        int32_t disp = int32_t(target - (code + kRipLen));
        std::vector<uint8_t> b = {0x48, 0x89, 0x05};
        for (unsigned i = 0; i < 4; ++i) b.push_back(uint8_t(uint32_t(disp) >> (8 * i)));
        return b;
    };
    core::Regs r = regs();
    r.rax = good;
    r = run(rip_store(at(kA) + 8), r, at(kA));
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    EXPECT_EQ(entry(kA + 1), eB);
    r = regs();
    r.rax = good;
    r = run(rip_store(at(kA)), r, at(kA));
    EXPECT_TRUE(emulated(r, kRipLen));
    EXPECT_EQ(entry(kA), good | pte::kUser);
    // base + index * scale + disp: mov %rax, 8(%rbx,%rcx,8).
    r = regs();
    r.rax = 0;
    r.rbx = at(0);
    r.rcx = kA;
    r = run({0x48, 0x89, 0x44, 0xCB, 0x08}, r, at(kA + 1));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(entry(kA + 1), 0u);
    EXPECT_EQ(entry(kA), good | pte::kUser);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// bts/btr with a register offset address a bit string: the offset selects
// the entry, which must be the one CR2 is in.
TEST_F(PtwrAddress, BitStringOffsetsSelectTheEntry) {
    constexpr uint64_t kAvailBit = 9;
    constexpr int64_t kAccessedBit = 5;
    static_assert(pte::kAccessed == 1ull << kAccessedBit);
    uint64_t eA = entry(kA), eB = entry(kA + 1);
    ASSERT_TRUE(eB & pte::kPresent);
    core::Regs r = regs();
    r.rdi = at(kA);
    r.rcx = 64 + kAvailBit;   // bit 9 of the next entry
    r = run({0xF0, 0x48, 0x0F, 0xAB, 0x0F}, r, at(kA));   // lock bts %rcx, (%rdi)
    EXPECT_TRUE(delivered(r, at(kA))) << "the CPU writes the next entry, not the faulting one";
    EXPECT_EQ(entry(kA), eA);
    EXPECT_EQ(entry(kA + 1), eB);
    r = regs();
    r.rdi = at(kA);
    r.rcx = 64 + kAvailBit;
    r = run({0xF0, 0x48, 0x0F, 0xAB, 0x0F}, r, at(kA + 1));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(entry(kA + 1), eB | (1ull << kAvailBit));
    EXPECT_EQ(entry(kA), eA);
    EXPECT_FALSE(r.rflags & kCf);
    // A negative offset: back to entry A from the next (lock btr %rcx, (%rdi)).
    r = regs();
    r.rdi = at(kA + 1);
    r.rcx = uint64_t(kAccessedBit - 64);
    ASSERT_TRUE(eA & pte::kAccessed);
    r = run({0xF0, 0x48, 0x0F, 0xB3, 0x0F}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_TRUE(r.rflags & kCf);
    EXPECT_EQ(entry(kA), eA & ~pte::kAccessed);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// FS and GS overrides add their base (FS: the CPU's, GS: the vCPU's kernel
// GS base); the other segments have base 0 in 64-bit mode.
TEST_F(PtwrAddress, SegmentOverridesAddTheirBase) {
    constexpr uint64_t kFsBase = 0x10000000, kGsBase = 0x20000000;
    platform::set_fs_base(kFsBase);
    v->gs_base_kernel = kGsBase;
    uint64_t eA = entry(kA);
    // The register alone names the entry, but %fs: moves the write away.
    core::Regs r = regs();
    r.rax = good;
    r.rdi = at(kA);
    r = run({0x64, 0x48, 0x89, 0x07}, r, at(kA));   // mov %rax, %fs:(%rdi)
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    r = regs();
    r.rax = good;
    r.rdi = at(kA);
    r = run({0x65, 0x48, 0x89, 0x07}, r, at(kA));   // mov %rax, %gs:(%rdi)
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    // With the base taken off the register, it is the entry's address.
    r = regs();
    r.rax = good;
    r.rdi = at(kA) - kFsBase;
    r = run({0x64, 0x48, 0x89, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(entry(kA), good | pte::kUser);
    r = regs();
    r.rax = 0;
    r.rdi = at(kA) - kGsBase;
    r = run({0x65, 0x48, 0x87, 0x07}, r, at(kA));   // xchg %rax, %gs:(%rdi)
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(r.rax, good | pte::kUser);
    EXPECT_EQ(entry(kA), 0u);
    // ES, CS, SS, DS: no base (Linux's uniprocessor `ds` in place of `lock`).
    for (uint8_t seg : {0x26, 0x2E, 0x36, 0x3E}) {
        r = regs();
        r.rax = seg == 0x3E ? 0 : good;
        r.rdi = at(kA);
        r = run({seg, 0x48, 0x89, 0x07}, r, at(kA));
        EXPECT_TRUE(emulated(r, 4)) << std::hex << unsigned(seg);
        EXPECT_EQ(entry(kA), r.rax ? good | pte::kUser : 0u);
    }
    EXPECT_EQ(mm_invariant_violations(), "");
}

// Prefixes and instruction bytes an attacker controls.
TEST_F(PtwrAddress, PrefixesAndInstructionBytes) {
    uint64_t eA = entry(kA);
    core::Regs r = regs();
    // lock mov is #UD on the CPU: never what faulted.
    r.rax = good;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x89, 0x07}, r, at(kA));
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    // rep stosq: no string instruction is emulated.
    r = regs();
    r.rax = good;
    r.rdi = at(kA);
    r.rcx = 1;
    r = run({0xF3, 0x48, 0xAB}, r, at(kA));
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    // 32-bit addressing (67): not decoded.
    r = regs();
    r.rax = good;
    r.rdi = at(kA);
    r = run({0x67, 0x48, 0x89, 0x07}, r, at(kA));
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), eA);
    // F3 before xchg is a hint (XRELEASE) the CPU ignores here: emulated.
    r = regs();
    r.rax = eA;
    r.rdi = at(kA);
    r = run({0xF3, 0x48, 0x87, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(r.rax, eA);
    // 66 with REX.W: REX.W wins, 8 bytes.
    r = regs();
    r.rax = good;
    r.rdi = at(kA);
    r = run({0x66, 0x48, 0x89, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(entry(kA), good | pte::kUser);
    // An instruction whose last byte is in a page that is not mapped: cut
    // short, not decoded.
    constexpr uint64_t kCodePage = kPlay + 0x10000;
    ASSERT_EQ(hc(d, Hypercall::update_va_mapping, kCodePage + kPageSize, 0, 0), 0);
    const uint8_t cut[] = {0x48, 0x89};   // mov %rax, (%rdi) without its ModRM byte
    as(d);
    ASSERT_TRUE(platform::copy_to_guest(kCodePage + kPageSize - sizeof cut, cut, sizeof cut));
    r = regs();
    r.rax = 0;
    r.rdi = at(kA);
    r.rip = kCodePage + kPageSize - sizeof cut;
    r.rsp = kScratch + 0x800;
    core::guest_exception(*v, r, core::vec::kPageFault, kPfWrite, at(kA));
    EXPECT_TRUE(delivered(r, at(kA)));
    EXPECT_EQ(entry(kA), good | pte::kUser);
    // The whole instruction just before the end of the page: emulated.
    const uint8_t whole[] = {0x48, 0x89, 0x07};
    ASSERT_TRUE(platform::copy_to_guest(kCodePage + kPageSize - sizeof whole, whole, sizeof whole));
    r = regs();
    r.rax = 0;
    r.rdi = at(kA);
    r.rip = kCodePage + kPageSize - sizeof whole;
    core::guest_exception(*v, r, core::vec::kPageFault, kPfWrite, at(kA));
    EXPECT_EQ(r.rip, kCodePage + kPageSize);
    EXPECT_EQ(entry(kA), 0u);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// An instruction that ends exactly at the end of the lower half: the rip it
// would leave (0x0000800000000000) is not canonical, and the exit path must
// never be handed one (an iretq to it faults in the hypervisor on real
// CPUs). The guest gets its page fault instead.
TEST_F(PtwrAddress, NoExitToANonCanonicalRip) {
    constexpr uint64_t kLowerEnd = 0x0000800000000000ull;
    constexpr uint64_t kLastPage = kLowerEnd - kPageSize;
    constexpr uint64_t kTable = pte::kPresent | pte::kWritable | pte::kUser | pte::kAccessed;
    // Four of its own pages: an L3, L2 and L1 for the lower half's last page,
    // and that page. The tables are zeroed while still mapped, then
    // unmapped (a page table has no writable mapping), filled in machine
    // memory, and linked by mmu_update, which validates them.
    uint64_t va[4];
    core::Mfn m[4];
    const std::vector<uint8_t> zero(kPageSize, 0);
    for (unsigned i = 0; i < 4; ++i) {
        va[i] = kPlay + 0x20000 + i * kPageSize;
        m[i] = mfn_at(d, va[i]);
        as(d);
        ASSERT_TRUE(platform::copy_to_guest(va[i], zero.data(), zero.size()));
        if (i < 3) ASSERT_EQ(hc(d, Hypercall::update_va_mapping, va[i], 0, 0), 0);
    }
    for (unsigned level = 3; level >= 1; --level)
        fake::table(m[3 - level])[pte::index(kLastPage, level)] = pte::make(m[4 - level], kTable);
    const abi::MmuUpdate link{v->guest_table * kPageSize | (pte::index(kLastPage, 4) * sizeof(uint64_t)) |
                                  abi::kMmuNormalPtUpdate,
                              pte::make(m[0], kTable)};
    put(d, kScratch, link);
    ASSERT_EQ(hc(d, Hypercall::mmu_update, kScratch, 1, 0, abi::kDomidSelf), 0);
    ASSERT_EQ(mfn_at(d, kLastPage), m[3]);

    const uint8_t mov[] = {0x48, 0x89, 0x07};   // mov %rax, (%rdi)
    uint64_t eA = entry(kA);
    for (uint64_t end : {kLowerEnd, kLowerEnd - 1}) {
        uint64_t rip = end - sizeof mov;
        as(d);
        ASSERT_TRUE(platform::copy_to_guest(rip, mov, sizeof mov));
        core::Regs r = regs();
        r.rax = 0;
        r.rdi = at(kA);
        r.rip = rip;
        r.rsp = kScratch + 0x800;
        core::guest_exception(*v, r, core::vec::kPageFault, kPfWrite, at(kA));
        if (end == kLowerEnd) {
            EXPECT_TRUE(delivered(r, at(kA)));
            EXPECT_EQ(entry(kA), eA);
        } else {
            EXPECT_EQ(r.rip, end) << "one byte earlier it is emulated";
            EXPECT_EQ(entry(kA), 0u);
        }
    }
    EXPECT_EQ(mm_invariant_violations(), "");
}

// What Linux does to its own L1 entries, still emulated, with the registers
// and flags the instruction leaves.
TEST_F(PtwrAddress, LinuxsWritesAreStillEmulated) {
    uint64_t eA = entry(kA);
    ASSERT_TRUE((eA & pte::kPresent) && (eA & pte::kWritable) && (eA & pte::kAccessed));
    // set_pte: mov %rsi, (%rdi).
    core::Regs r = regs();
    r.rsi = good;
    r.rdi = at(kA);
    r = run({0x48, 0x89, 0x37}, r, at(kA));
    EXPECT_TRUE(emulated(r, 3));
    uint64_t cur = good | pte::kUser;
    EXPECT_EQ(entry(kA), cur);
    // ptep_get_and_clear: xchg %rax, (%rdi).
    r = regs();
    r.rax = 0;
    r.rdi = at(kA);
    r = run({0x48, 0x87, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 3));
    EXPECT_EQ(r.rax, cur);
    EXPECT_EQ(entry(kA), 0u);
    // cmpxchg that fails (rax gets the entry; flags of rax - entry), then succeeds.
    r = regs();
    r.rax = 1;
    r.rcx = cur;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x0F, 0xB1, 0x0F}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(r.rax, 0u);
    EXPECT_FALSE(r.rflags & (kZf | kCf));
    EXPECT_EQ(entry(kA), 0u);
    r = regs();
    r.rax = 0;
    r.rcx = cur;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x0F, 0xB1, 0x0F}, r, at(kA));
    EXPECT_TRUE(r.rflags & kZf);
    EXPECT_EQ(entry(kA), cur);
    // ptep_set_wrprotect: lock andb $~_PAGE_RW, (%rdi).
    r = regs();
    r.rdi = at(kA);
    r = run({0xF0, 0x80, 0x27, 0xFD}, r, at(kA));
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(entry(kA), cur & ~pte::kWritable);
    // ptep_test_and_clear_young: lock btr %rax, (%rdi), the accessed bit in CF.
    r = regs();
    r.rax = 5;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x0F, 0xB3, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_TRUE(r.rflags & kCf);
    EXPECT_EQ(entry(kA), cur & ~(pte::kWritable | pte::kAccessed));
    // lock or %rax, (%rdi): writable again.
    r = regs();
    r.rax = pte::kWritable;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x09, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 4));
    EXPECT_EQ(entry(kA), cur & ~pte::kAccessed);
    EXPECT_FALSE(r.rflags & (kZf | kCf | kOf));
    // lock addq $0x20, (%rdi) (the accessed bit back, by arithmetic): no
    // carry, no overflow, no sign; lock subq the same takes it away again.
    r = regs();
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x83, 0x07, 0x20}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(entry(kA), cur);
    EXPECT_FALSE(r.rflags & (kCf | kOf | kSf | kZf));
    r = regs();
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x83, 0x2F, 0x20}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(entry(kA), cur & ~pte::kAccessed);
    EXPECT_FALSE(r.rflags & (kCf | kOf | kSf | kZf));
    // The low half: movl %eax, (%rdi).
    r = regs();
    r.rax = uint32_t(eA);
    r.rdi = at(kA);
    r = run({0x89, 0x07}, r, at(kA));
    EXPECT_TRUE(emulated(r, 2));
    EXPECT_EQ(entry(kA), eA | pte::kUser);
    EXPECT_EQ(mm_invariant_violations(), "");
}

// Flags as the CPU leaves them: add and sub at the operand size, with signed
// overflow (OF), on the entry's high half (NX, the only bit of it an entry
// of a small machine may have); cmpxchg's as `cmp` of the accumulator with
// the entry, a borrow from bit 4 (AF) included.
TEST_F(PtwrAddress, ArithmeticFlags) {
    uint64_t eA = entry(kA);
    ASSERT_EQ(eA >> 32, 0u);
    const uint8_t kAddHigh[] = {0xF0, 0x81, 0x47, 0x04, 0x00, 0x00, 0x00, 0x80};
    // lock addl $0x80000000, 4(%rdi): 0 + 0x80000000, negative, no overflow.
    core::Regs r = regs();
    r.rdi = at(kA);
    r = run({std::begin(kAddHigh), std::end(kAddHigh)}, r, at(kA) + 4);
    EXPECT_TRUE(emulated(r, sizeof kAddHigh));
    EXPECT_EQ(entry(kA), eA | pte::kNx);
    EXPECT_TRUE(r.rflags & kSf);
    EXPECT_FALSE(r.rflags & (kCf | kOf | kZf));
    // Again: 0x80000000 + 0x80000000 carries out and overflows to 0.
    r = regs();
    r.rdi = at(kA);
    r = run({std::begin(kAddHigh), std::end(kAddHigh)}, r, at(kA) + 4);
    EXPECT_TRUE(emulated(r, sizeof kAddHigh));
    EXPECT_EQ(entry(kA), eA);
    EXPECT_TRUE((r.rflags & (kCf | kOf | kZf)) == (kCf | kOf | kZf));
    EXPECT_FALSE(r.rflags & kSf);
    // A failing lock cmpxchg %rcx, (%rdi) with rax = 1 below the entry
    // (whose low nibble is above 1): borrow, from bit 4 too, negative.
    ASSERT_GT(eA & 0xF, 1u);
    r = regs();
    r.rax = 1;
    r.rcx = 0;
    r.rdi = at(kA);
    r = run({0xF0, 0x48, 0x0F, 0xB1, 0x0F}, r, at(kA));
    EXPECT_TRUE(emulated(r, 5));
    EXPECT_EQ(r.rax, eA);
    EXPECT_TRUE((r.rflags & (kCf | kAf | kSf)) == (kCf | kAf | kSf));
    EXPECT_FALSE(r.rflags & (kZf | kOf));
    EXPECT_EQ(entry(kA), eA);
    // lock subl $0x80000000, 4(%rdi): 0 - 0x80000000 borrows and overflows.
    r = regs();
    r.rdi = at(kA);
    r = run({0xF0, 0x81, 0x6F, 0x04, 0x00, 0x00, 0x00, 0x80}, r, at(kA) + 4);
    EXPECT_TRUE(emulated(r, 8));
    EXPECT_EQ(entry(kA), eA | pte::kNx);
    EXPECT_TRUE((r.rflags & (kCf | kOf | kSf)) == (kCf | kOf | kSf));
    EXPECT_EQ(mm_invariant_violations(), "");
}

}  // namespace
