#pragma once
// Several domains on the fake machine, each built from guest_image() in its
// own address space, and hypercalls made as any of them: the fixture of the
// grant-table, event-channel, capability and teardown tests, which put an
// attacker beside a victim the way the system tests do, on the host.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/moat.hpp>
#include <cap/capability.hpp>
#include <core/caps.hpp>
#include <core/gnttab.hpp>
#include <core/hypercall.hpp>
#include <core/memory.hpp>
#include <core/pte.hpp>

#include "test_domain.hpp"

namespace coretest {

constexpr uint64_t kSyscall = 0x400802;   // just past a `syscall` in the image's text

class MultiDomainTest : public ::testing::Test {
protected:
    void SetUp() override {
        fake::reset(8192);
        image = guest_image();
        free_at_start = free_frames();
    }

    // A domain of `pages` frames; `held`: stops on shutdown and waits to be
    // destroyed, as the domains the builder makes do.
    core::Domain* build(const char* name, bool held = true, uint64_t pages = kPages) {
        auto r = core::build_pv_domain(core::BuildSpec{name, image.data(), image.size(), "", pages});
        EXPECT_TRUE(r.ok()) << "build of " << name << " failed";
        if (!r.ok()) return nullptr;
        (*r)->held_after_shutdown = held;
        return *r;
    }

    // Makes `d` the domain on the CPU: its tables loaded, its vCPU current.
    void as(core::Domain* d) {
        platform::load_page_table(d->vcpu[0].guest_table);
        fake::calls().current = &d->vcpu[0];
    }

    // A hypercall as `d`, issued again for as long as it continues (the rip
    // rewound onto the syscall); `continued` counts the continuations.
    int64_t hc(core::Domain* d, uint64_t nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
               uint64_t a5 = 0, unsigned* continued = nullptr) {
        as(d);
        core::Vcpu& v = d->vcpu[0];
        core::Regs r = v.regs;
        r.rax = nr;
        r.rdi = a1;
        r.rsi = a2;
        r.rdx = a3;
        r.r10 = a4;
        r.r8 = a5;
        r.rip = r.rcx = kSyscall;
        unsigned k = 0;
        for (;; ++k) {
            core::hypercall(v, r);
            if (d->state != core::DomainState::running || r.rip != kSyscall - 2) break;
            EXPECT_LT(k, 1000000u) << "a hypercall that never ends";
            if (k >= 1000000u) break;
            if (between_continuations) {   // what else the machine does meanwhile
                between_continuations();
                if (d->state != core::DomainState::running) break;
                as(d);
            }
            r.rip = r.rcx = kSyscall;   // the guest issues it again
        }
        if (continued) *continued = k;
        return static_cast<int64_t>(r.rax);
    }
    int64_t hc(core::Domain* d, abi::Hypercall h, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
               uint64_t a4 = 0, uint64_t a5 = 0, unsigned* continued = nullptr) {
        return hc(d, uint64_t(h), a1, a2, a3, a4, a5, continued);
    }

    // A plain writable page of every domain's, at the same virtual address in
    // each, for hypercall arguments.
    static constexpr uint64_t kScratch = kImageEnd + 0x200000;
    // Virtual addresses whose mappings tests change (inside the 4 MiB region).
    static constexpr uint64_t kPlay = kImageEnd + 0x300000;

    template <typename T>
    void put(core::Domain* d, uint64_t va, const T& t) {
        as(d);
        ASSERT_TRUE(platform::copy_to_guest(va, &t, sizeof t));
    }
    template <typename T>
    T get(core::Domain* d, uint64_t va) {
        as(d);
        T t{};
        EXPECT_TRUE(platform::copy_from_guest(&t, va, sizeof t));
        return t;
    }

    // The iret hypercall as `d`, from a frame (rip, cs, rflags 0x202, a stack
    // in the scratch page, ss) it put in its scratch page; the registers it
    // leaves the vCPU with.
    core::Regs iret_to(core::Domain* d, uint64_t rip, uint64_t cs, uint64_t ss) {
        abi::IretContext c{};
        c.rip = rip;
        c.cs = cs;
        c.rflags = 0x202;
        c.rsp = kScratch + 0x1800;
        c.ss = ss;
        put(d, kScratch + 0x1000, c);
        core::Regs r = d->vcpu[0].regs;
        r.rax = uint64_t(abi::Hypercall::iret);
        r.rsp = kScratch + 0x1000;
        r.rip = r.rcx = kSyscall;
        as(d);
        core::hypercall(d->vcpu[0], r);
        return r;
    }

    // The L1 entry mapping `va` in d's tables (0 if some level is missing).
    uint64_t l1e(core::Domain* d, uint64_t va) {
        namespace pte = core::pte;
        uint64_t m = d->vcpu[0].guest_table;
        for (unsigned level = 4; level > 1; --level) {
            uint64_t e = fake::table(m)[pte::index(va, level)];
            if (!(e & pte::kPresent)) return 0;
            m = pte::mfn(e);
        }
        return fake::table(m)[pte::index(va, 1)];
    }
    core::Mfn mfn_at(core::Domain* d, uint64_t va) { return core::pte::mfn(l1e(d, va)); }
    // The machine address of the L1 entry mapping `va` (for GNTMAP_contains_pte).
    uint64_t pte_ma(core::Domain* d, uint64_t va) {
        namespace pte = core::pte;
        uint64_t m = d->vcpu[0].guest_table;
        for (unsigned level = 4; level > 1; --level) m = pte::mfn(fake::table(m)[pte::index(va, level)]);
        return (m << 12) | (pte::index(va, 1) * 8);
    }

    // A root capability for `to`.
    void give(core::Domain* to, cap::Type t, uint32_t rights, uint64_t object) {
        ASSERT_GE(core::caps::give_root(*to, cap::Capability{t, rights, object, 0, 0}), 0);
    }

    // Grant entry `ref` of `granter` (its table is made on first use).
    void grant(core::Domain* granter, uint32_t ref, core::DomId to, core::Mfn frame, bool readonly = false) {
        uint16_t flags = abi::kGtfPermitAccess | (readonly ? abi::kGtfReadonly : 0);
        ASSERT_EQ(core::gnttab_seed(*granter, ref, flags, to, frame), 0);
    }
    uint16_t grant_flags(core::Domain* granter, uint32_t ref) {
        auto* e = core::frame_va<abi::GrantEntryV1>(granter->grant_frames[ref / abi::kGrantEntriesV1PerPage]) +
                  ref % abi::kGrantEntriesV1PerPage;
        return e->flags;
    }

    // Maps (granter, ref) at host_addr as `d`; the op as it came back.
    abi::GnttabMapGrantRef map(core::Domain* d, core::DomId granter, uint32_t ref, uint64_t host_addr,
                               uint32_t flags = abi::kGntmapHostMap) {
        abi::GnttabMapGrantRef op{host_addr, flags, ref, granter, 0, 0, 0};
        put(d, kScratch, op);
        EXPECT_EQ(hc(d, abi::Hypercall::grant_table_op, uint64_t(abi::GnttabOp::map_grant_ref), kScratch, 1), 0);
        return get<abi::GnttabMapGrantRef>(d, kScratch);
    }
    int16_t unmap(core::Domain* d, uint32_t handle, uint64_t host_addr) {
        abi::GnttabUnmapGrantRef op{host_addr, 0, handle, 0};
        put(d, kScratch, op);
        EXPECT_EQ(hc(d, abi::Hypercall::grant_table_op, uint64_t(abi::GnttabOp::unmap_grant_ref), kScratch, 1), 0);
        return get<abi::GnttabUnmapGrantRef>(d, kScratch).status;
    }

    // Takes `x` apart a hypercall's budget at a time; how many budgets it took.
    unsigned destroy(core::Domain* x) {
        core::domain_kill(*x);
        for (unsigned steps = 1;; ++steps) {
            core::Budget b{core::kHypercallBudget};
            if (core::domain_teardown(*x, b)) {
                switch_away_from_gone();
                return steps;
            }
            if (steps > 100000) {
                ADD_FAILURE() << "teardown never ends";
                return steps;
            }
        }
    }

    uint64_t free_frames() const { return core::frame_allocator().free_frames(); }
    // Every frame the machine has that some domain owns.
    uint64_t owned_by(core::DomId id) const {
        uint64_t n = 0;
        for (core::Mfn m = 0; m < core::frame_table().nframes(); ++m) n += core::frame_table()[m].owner == id;
        return n;
    }

    std::vector<uint8_t> image;
    uint64_t free_at_start = 0;
    // Run by hc() before each continuation of a hypercall, when set.
    std::function<void()> between_continuations;
};

}  // namespace coretest
