// What keeps one domain from hurting the others beyond memory validation
// (issue 10): a domain taken apart a budget at a time, every frame back or
// held (never reused while referenced); one work budget per hypercall
// invocation that multicall cannot multiply; kernel log lines rate limited
// per domain.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <core/log.hpp>

#include "multi_domain.hpp"

namespace {

using namespace coretest;
using abi::Hypercall;
namespace pte = core::pte;

constexpr int64_t kEinval = -22;

class Isolation : public MultiDomainTest {};

// The builder's way: domctl destroy, continued until the domain is gone; a
// domain with everything a teardown must undo: pinned tables, a foreign
// mapping by its builder, grants mapped both ways, ports, capabilities.
TEST_F(Isolation, DestroyIsPreemptibleAndGivesEveryFrameBack) {
    core::Domain* root = build("root");
    ASSERT_NE(root, nullptr);
    uint64_t free_before = free_frames();
    core::Domain* x = build("x", true, 2 * kPages);
    core::Domain* peer = build("peer");
    ASSERT_TRUE(x && peer);
    give(root, cap::Type::domain, cap::right::control | cap::right::build, x->id);
    give(peer, cap::Type::grant, cap::right::map_rw | cap::right::map_ro, x->id);
    give(x, cap::Type::grant, cap::right::map_rw | cap::right::map_ro, peer->id);
    give(x, cap::Type::event, cap::right::bind, peer->id);
    // root maps one of x's frames writable in its own tables (building it).
    core::Mfn xf = mfn_at(x, kPlay);
    abi::MmuUpdate u{pte_ma(root, kPlay), pte::make(xf, pte::kPresent | pte::kWritable | pte::kAccessed)};
    put(root, kScratch, u);
    ASSERT_EQ(hc(root, Hypercall::mmu_update, kScratch, 1, 0, x->id), 0);
    ASSERT_EQ(mfn_at(root, kPlay), xf);
    // Grants both ways.
    grant(x, 8, peer->id, mfn_at(x, kPlay + 0x1000));
    grant(peer, 8, x->id, mfn_at(peer, kPlay + 0x1000));
    ASSERT_EQ(map(peer, x->id, 8, kPlay).status, 0);
    ASSERT_EQ(map(x, peer->id, 8, kPlay + 0x2000).status, 0);
    EXPECT_EQ(mm_invariant_violations(), "");

    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::destroy);
    op.domain = x->id;
    put(root, kScratch, op);
    unsigned continued = 0;
    EXPECT_EQ(hc(root, Hypercall::domctl, kScratch, 0, 0, 0, 0, &continued), 0);
    EXPECT_GE(continued, 1u) << "2,000 frames and their tables do not go in one budget";
    EXPECT_TRUE(is_gone(x));
    EXPECT_NE(fake::log().find("(x) taken apart"), std::string::npos);
    EXPECT_NE(fake::log().find("nothing left behind"), std::string::npos) << fake::log();
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
    EXPECT_EQ(l1e(root, kPlay) & pte::kPresent, 0u) << "root's foreign mapping went with x";
    EXPECT_EQ(l1e(peer, kPlay) & pte::kPresent, 0u) << "peer's mapping of x's grant went with x";
    EXPECT_EQ(core::gnttab_mapped_by_others(*peer), 0u) << "x's mapping of peer's grant went with x";
    EXPECT_EQ(owned_by(x->id), 0u);
    EXPECT_EQ(mm_invariant_violations(), "");
    destroy(peer);
    EXPECT_EQ(free_frames(), free_before) << "every frame of x and of peer is back";
    EXPECT_EQ(core::held_frames(), 0u);
    // A destroy of what is gone, or of itself.
    EXPECT_EQ(hc(root, Hypercall::domctl, kScratch), -1) << "EPERM: the capability went with it";
    op.domain = root->id;
    put(root, kScratch, op);
    EXPECT_EQ(hc(root, Hypercall::domctl, kScratch), -1);
}

// The reaper (taking apart, on every slow exit, the domains that shut down
// by themselves) once also took up a domain the builder was destroying: the
// builder's next continuation found the slot free and its capability gone,
// and its destroy of a domain that was in fact destroyed failed (EPERM).
TEST_F(Isolation, ReaperLeavesADestroyInProgressToItsCaller) {
    core::Domain* root = build("root");
    core::Domain* x = build("x", true, 2 * kPages);
    ASSERT_TRUE(root && x);
    give(root, cap::Type::domain, cap::right::control, x->id);
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::destroy);
    op.domain = x->id;
    put(root, kScratch, op);
    unsigned reaps = 0;
    between_continuations = [&] {
        core::Budget b = core::Budget::unlimited();
        EXPECT_TRUE(core::reap_dying(b)) << "nothing for the reaper to do";
        EXPECT_EQ(x->state, core::DomainState::dying) << "x is root's to take apart";
        ++reaps;
    };
    unsigned continued = 0;
    EXPECT_EQ(hc(root, Hypercall::domctl, kScratch, 0, 0, 0, 0, &continued), 0) << fake::log();
    EXPECT_GE(reaps, 1u);
    EXPECT_TRUE(is_gone(x));
    EXPECT_NE(fake::log().find("(x) taken apart"), std::string::npos);
    EXPECT_EQ(owned_by(x->id), 0u);
}

// ... and if the destroyer itself dies half way, the reaper finishes both.
TEST_F(Isolation, ADestroyersWorkPassesToTheReaperWhenItDies) {
    core::Domain* root = build("root");
    core::Domain* x = build("x", true, 2 * kPages);
    ASSERT_TRUE(root && x);
    give(root, cap::Type::domain, cap::right::control, x->id);
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::destroy);
    op.domain = x->id;
    put(root, kScratch, op);
    root->held_after_shutdown = false;   // as the kernel builds it: nobody destroys it
    between_continuations = [&] { core::domain_shutdown(*root, abi::ShutdownReason::crash); };
    (void)hc(root, Hypercall::domctl, kScratch);
    EXPECT_EQ(x->state, core::DomainState::dying) << "half taken apart when root went";
    reap();
    EXPECT_TRUE(is_gone(x));
    EXPECT_TRUE(is_gone(root));
    EXPECT_NE(fake::log().find("(x) taken apart"), std::string::npos);
    EXPECT_EQ(fake::log().find("LEFT BEHIND"), std::string::npos) << fake::log();
    EXPECT_EQ(owned_by(x->id), 0u);
    EXPECT_EQ(owned_by(root->id), 0u);
}

// Defence in depth: a frame something still references when its domain goes
// is never freed (so never handed to another domain); it is held back, said
// so, and freed when that reference finally goes.
TEST_F(Isolation, AFrameStillReferencedIsHeldNotReused) {
    core::Domain* x = build("x");
    ASSERT_NE(x, nullptr);
    core::Mfn f = mfn_at(x, kPlay);
    ++core::frame_table()[f].count;   // a reference the teardown cannot know about
    destroy(x);
    EXPECT_TRUE(is_gone(x));
    EXPECT_EQ(core::frame_table()[f].owner, core::kOwnerHeld);
    EXPECT_EQ(core::held_frames(), 1u);
    EXPECT_NE(fake::log().find("LEFT BEHIND: 1 frames held"), std::string::npos) << fake::log();
    // Nobody can map it: it is nobody's.
    core::Domain* y = build("y");
    ASSERT_NE(y, nullptr);
    EXPECT_LT(hc(y, Hypercall::update_va_mapping, kPlay, pte::make(f, pte::kPresent), 0), 0);
    core::put_page(f);
    EXPECT_EQ(core::held_frames(), 0u);
    EXPECT_EQ(core::frame_table()[f].owner, core::kOwnerNone) << "freed with its last reference";
}

// Issue 10, finding 3: each multicall entry used to get a budget of its own,
// so 64 entries of mmuext_op(4,095 copy_page) ran ~200 ms without a
// preemption point. Now every entry spends the multicall's one budget.
TEST_F(Isolation, MulticallSharesOneBudget) {
    core::Domain* x = build("x");
    ASSERT_NE(x, nullptr);
    constexpr unsigned kCopies = 255, kEntries = 64;
    core::Mfn dst = mfn_at(x, kPlay), src = mfn_at(x, kPlay + 0x1000);
    std::vector<abi::MmuextOp> ops(kCopies);
    for (auto& o : ops) {
        o.cmd = uint32_t(abi::MmuextCmd::copy_page);
        o.arg1.mfn = dst;
        o.arg2.src_mfn = src;
    }
    uint64_t ops_va = kScratch + 0x4000;
    as(x);
    ASSERT_TRUE(platform::copy_to_guest(ops_va, ops.data(), ops.size() * sizeof ops[0]));
    std::vector<abi::MulticallEntry> mc(kEntries);
    for (auto& e : mc) {
        e.op = uint64_t(Hypercall::mmuext_op);
        e.args[0] = ops_va;
        e.args[1] = kCopies;
        e.args[2] = 0;
        e.args[3] = abi::kDomidSelf;
    }
    ASSERT_TRUE(platform::copy_to_guest(kScratch, mc.data(), mc.size() * sizeof mc[0]));
    unsigned continued = 0;
    EXPECT_EQ(hc(x, Hypercall::multicall, kScratch, kEntries, 0, 0, 0, &continued), 0);
    // kEntries * kCopies page copies at cost::kPage each: at least that many
    // budgets' worth of invocations.
    unsigned need = kEntries * kCopies * core::cost::kPage / core::kHypercallBudget;
    EXPECT_GE(continued + 1, need);
    as(x);
    ASSERT_TRUE(platform::copy_from_guest(mc.data(), kScratch, mc.size() * sizeof mc[0]));
    for (auto& e : mc) EXPECT_EQ(e.result, 0u);

    // A multicall inside a multicall, and iret, are refused per entry.
    abi::MulticallEntry nested[2]{};
    nested[0].op = uint64_t(Hypercall::multicall);
    nested[0].args[0] = kScratch;
    nested[0].args[1] = 1;
    nested[1].op = uint64_t(Hypercall::iret);
    ASSERT_TRUE(platform::copy_to_guest(kScratch + 0x2000, nested, sizeof nested));
    EXPECT_EQ(hc(x, Hypercall::multicall, kScratch + 0x2000, 2), 0);
    abi::MulticallEntry back[2];
    as(x);
    ASSERT_TRUE(platform::copy_from_guest(back, kScratch + 0x2000, sizeof back));
    EXPECT_EQ(int64_t(back[0].result), kEinval);
    EXPECT_EQ(int64_t(back[1].result), kEinval);
}

// Issue 10, finding 5: kernel log lines a domain causes are rate limited per
// domain, with a count of the dropped ones; other domains' lines still go out.
TEST_F(Isolation, LogFloodIsRateLimitedPerDomain) {
    core::Domain* noisy = build("noisy");
    core::Domain* quiet = build("quiet");
    ASSERT_TRUE(noisy && quiet);
    const char line[] = "flood\n";
    put(noisy, kScratch, line);
    for (unsigned i = 0; i < 3 * core::kLogBurst; ++i)
        ASSERT_EQ(hc(noisy, Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 6, kScratch), 0);
    // Refusals it provokes count against the same bucket.
    abi::EvtchnBindInterdomain bi{quiet->id, 1, 0};
    put(noisy, kScratch + 64, bi);
    for (unsigned i = 0; i < 100; ++i)
        EXPECT_EQ(hc(noisy, Hypercall::event_channel_op, uint64_t(abi::EvtchnOp::bind_interdomain), kScratch + 64),
                  -1);
    const char hello[] = "still here\n";
    put(quiet, kScratch, hello);
    ASSERT_EQ(hc(quiet, Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 11, kScratch), 0);
    std::string log = fake::log();
    size_t floods = 0;
    for (size_t p = 0; (p = log.find("noisy: flood", p)) != std::string::npos; ++p) ++floods;
    EXPECT_LE(floods, core::kLogBurst + 2u) << "at most a burst (and what the clock refilled)";
    EXPECT_GE(floods, core::kLogBurst - 1u);
    EXPECT_NE(log.find("quiet: still here"), std::string::npos);
    destroy(noisy);
    EXPECT_NE(fake::log().find("(noisy): "), std::string::npos);
    EXPECT_NE(fake::log().find("log lines dropped (rate limit)"), std::string::npos) << "counted when it goes";
}

// setvcpucontext takes callbacks only as set_callbacks does: none, or a guest
// address (from the audit of every argument, docs/security.md).
TEST_F(Isolation, SetvcpucontextRefusesHypervisorCallbacks) {
    core::Domain* root = build("root");
    core::Domain* x = build("x");
    ASSERT_TRUE(root && x);
    give(root, cap::Type::domain, cap::right::control | cap::right::build, x->id);
    auto ctx = std::make_unique<abi::VcpuGuestContext>();
    ctx->user_regs.rip = kEntry;
    ctx->user_regs.rsp = kScratch;
    ctx->ctrlreg[3] = x->vcpu[0].guest_table << 12;
    uint64_t ctx_va = kScratch + 0x2000;
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::setvcpucontext);
    op.domain = x->id;
    op.u.context = ctx_va;
    put(root, kScratch, op);
    for (uint64_t* cb : {&ctx->event_callback_eip, &ctx->failsafe_callback_eip, &ctx->syscall_callback_eip})
        for (uint64_t bad : {0xFFFF830000000000ull, 0xFFFF800000001000ull, 0x0000800000000000ull}) {
            *cb = bad;
            as(root);
            ASSERT_TRUE(platform::copy_to_guest(ctx_va, ctx.get(), sizeof *ctx));
            EXPECT_EQ(hc(root, Hypercall::domctl, kScratch), kEinval) << std::hex << bad;
            *cb = 0;
        }
    ctx->event_callback_eip = kEntry;
    as(root);
    ASSERT_TRUE(platform::copy_to_guest(ctx_va, ctx.get(), sizeof *ctx));
    EXPECT_EQ(hc(root, Hypercall::domctl, kScratch), 0);
    EXPECT_EQ(x->vcpu[0].event_callback, kEntry);
}

TEST_F(Isolation, DebugConsoleHoldersAreNotLimited) {
    core::Domain* trusted = build("trusted");
    ASSERT_NE(trusted, nullptr);
    give(trusted, cap::Type::debug_console, cap::right::use, 0);
    const char line[] = "line\n";
    put(trusted, kScratch, line);
    for (unsigned i = 0; i < 2 * core::kLogBurst; ++i)
        ASSERT_EQ(hc(trusted, Hypercall::console_io, uint64_t(abi::ConsoleIo::write), 5, kScratch), 0);
    std::string log = fake::log();
    size_t lines = 0;
    for (size_t p = 0; (p = log.find("trusted: line", p)) != std::string::npos; ++p) ++lines;
    EXPECT_EQ(lines, 2 * core::kLogBurst);
}

}  // namespace
