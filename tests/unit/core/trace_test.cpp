// The kernel's trace buffers (core/trace.hpp) through domctl trace, as a
// guest calls it: the capability, the ring (wrap, lost counts, cursors, a
// start clearing it), the hooks, and every bad argument of a read.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <abi/grant_table.hpp>
#include <abi/hypercall.hpp>
#include <abi/moat.hpp>
#include <abi/trace.hpp>
#include <cap/capability.hpp>
#include <core/caps.hpp>
#include <core/evtchn.hpp>
#include <core/hypercall.hpp>
#include <core/trace.hpp>

#include "test_domain.hpp"

namespace {

using namespace coretest;
using abi::TraceCtl;
using abi::TraceKind;
using abi::TraceRecord;

constexpr int64_t kEperm = -1, kEfault = -14, kEinval = -22;

class Trace : public DomainTest {
protected:
    void SetUp() override {
        DomainTest::SetUp();
        if (HasFatalFailure()) return;
        args = kImageEnd + 0x200000;
        buf = args + 0x1000;
        ASSERT_LT(buf + 0x4000, l.v_end);
    }
    void TearDown() override {
        // Never leave recording on for the next test (the state is the kernel's).
        core::g_trace_on = false;
        core::hypercall_trace(false);
    }

    using DomainTest::call;
    // domctl trace with `t`; `out` gets what the kernel wrote back.
    int64_t ctl(const abi::DomctlTrace& t, abi::DomctlTrace* out = nullptr) {
        abi::MoatDomctl op{};
        op.version = abi::kMoatDomctlVersion;
        op.cmd = uint32_t(abi::DomctlCmd::trace);
        std::memcpy(op.u.raw, &t, sizeof t);
        write_guest(args, op);
        int64_t rc = call(uint64_t(abi::Hypercall::domctl), args);
        if (out) {
            auto back = read_guest<abi::MoatDomctl>(args);
            std::memcpy(out, back.u.raw, sizeof *out);
        }
        return rc;
    }
    int64_t op(TraceCtl c, abi::DomctlTrace* out = nullptr) {
        abi::DomctlTrace t{};
        t.op = uint32_t(c);
        return ctl(t, out);
    }
    int64_t read(uint32_t cpu, uint64_t cursor, uint64_t to, uint64_t len, abi::DomctlTrace* out) {
        abi::DomctlTrace t{};
        t.op = uint32_t(TraceCtl::read);
        t.cpu = cpu;
        t.cursor = cursor;
        t.buf = to;
        t.len = len;
        return ctl(t, out);
    }
    // Every record of buffer 0 from `cursor` on, read as a reader does.
    std::vector<TraceRecord> read_all(uint64_t cursor, uint64_t* lost) {
        std::vector<TraceRecord> all;
        *lost = 0;
        for (;;) {
            abi::DomctlTrace out{};
            EXPECT_EQ(read(0, cursor, buf, 0x2000, &out), 0);
            *lost += out.lost;
            for (uint32_t k = 0; k < out.count; ++k) all.push_back(read_guest<TraceRecord>(buf + k * 32));
            cursor = out.cursor;
            // Short of a full read: caught up (while recording, each read
            // adds its own record, so "nothing left" never comes).
            if (out.count < abi::kTraceReadMax || ::testing::Test::HasFailure()) break;
        }
        return all;
    }
    void give_trace() { ASSERT_GE(core::caps::give_root(*d, cap::Capability::trace()), 0); }

    uint64_t args = 0, buf = 0;
};

TEST_F(Trace, NoCapabilityIsEperm) {
    EXPECT_EQ(op(TraceCtl::start), kEperm);
    EXPECT_FALSE(core::g_trace_on);
    abi::DomctlTrace out{};
    EXPECT_EQ(read(0, 0, buf, 64, &out), kEperm);
    EXPECT_EQ(op(TraceCtl::stop), kEperm);
    // A mark needs nothing, and says when nobody records.
    EXPECT_EQ(op(TraceCtl::mark), 1);
    // The wrong type of capability is no Trace capability.
    ASSERT_GE(core::caps::give_root(*d, cap::Capability::debug_console()), 0);
    EXPECT_EQ(op(TraceCtl::start), kEperm);
}

TEST_F(Trace, StartRecordsTheCallerThenItsHypercalls) {
    give_trace();
    abi::DomctlTrace out{};
    ASSERT_EQ(op(TraceCtl::start, &out), 0);
    EXPECT_EQ(out.cpus, 1u);
    EXPECT_EQ(call(uint64_t(abi::Hypercall::xen_version), uint64_t(abi::XenVersion::pagesize)), 4096);
    EXPECT_EQ(call(63), -38);   // no such hypercall: recorded with its result
    uint64_t lost;
    auto recs = read_all(0, &lost);
    ASSERT_GE(recs.size(), 3u);
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(recs[0].kind, uint8_t(TraceKind::sched));
    EXPECT_EQ(recs[0].domain, d->id);
    EXPECT_EQ(recs[0].arg0, abi::kTraceUnknown);
    EXPECT_EQ(recs[1].kind, uint8_t(TraceKind::hypercall));
    EXPECT_EQ(recs[1].domain, d->id);
    EXPECT_EQ(recs[1].arg0 & 0xFFFF, uint64_t(abi::Hypercall::xen_version));
    EXPECT_EQ(int32_t(recs[1].arg0 >> 32), 4096);
    EXPECT_GT(recs[1].arg1, 0u);   // the fake clock moves on every reading
    EXPECT_GE(recs[1].time_ns, recs[0].time_ns);
    EXPECT_EQ(recs[2].arg0 & 0xFFFF, 63u);
    EXPECT_EQ(int32_t(recs[2].arg0 >> 32), -38);
    for (const auto& x : recs) {
        EXPECT_EQ(x.cpu, 0);
        EXPECT_EQ(x.pad, 0);
    }
    // Stopped, nothing more is recorded; what was stays readable.
    ASSERT_EQ(op(TraceCtl::stop), 0);
    size_t before = read_all(0, &lost).size();
    EXPECT_EQ(call(uint64_t(abi::Hypercall::xen_version), uint64_t(abi::XenVersion::pagesize)), 4096);
    EXPECT_EQ(op(TraceCtl::mark), 1);
    EXPECT_EQ(read_all(0, &lost).size(), before);
}

TEST_F(Trace, WrapsAndCountsLostRecords) {
    give_trace();
    ASSERT_EQ(op(TraceCtl::start), 0);
    // 5,000 records past the start's one: the ring keeps the last 2,048.
    for (uint64_t i = 0; i < 5000; ++i) core::trace_put(TraceKind::mark, 7, 0, i, 0, 1'000'000 + i);
    core::g_trace_on = false;   // nothing else from here (the reads themselves would be)
    core::hypercall_trace(false);
    uint64_t head = 5001, oldest = head - abi::kTraceRecords;
    uint64_t lost;
    auto recs = read_all(0, &lost);
    EXPECT_EQ(lost, oldest);
    ASSERT_EQ(recs.size(), abi::kTraceRecords);
    for (size_t k = 0; k < recs.size(); ++k) {
        EXPECT_EQ(recs[k].arg0, oldest - 1 + k) << k;   // record n is mark n - 1
        if (::testing::Test::HasFailure()) break;
    }
    // A read is bounded: at most kTraceReadMax records, whatever the length.
    abi::DomctlTrace out{};
    ASSERT_EQ(read(0, oldest, buf, ~0ull, &out), 0);
    EXPECT_EQ(out.count, abi::kTraceReadMax);
    EXPECT_EQ(out.cursor, oldest + abi::kTraceReadMax);
    EXPECT_EQ(out.lost, 0u);
    // A length that is not whole records copies the whole ones only.
    ASSERT_EQ(read(0, oldest, buf, 3 * 32 + 31, &out), 0);
    EXPECT_EQ(out.count, 3u);
    // At the newest: nothing, and the same cursor back.
    ASSERT_EQ(read(0, head, buf, 64, &out), 0);
    EXPECT_EQ(out.count, 0u);
    EXPECT_EQ(out.cursor, head);
    // One record behind the oldest: one lost.
    ASSERT_EQ(read(0, oldest - 1, buf, 64, &out), 0);
    EXPECT_EQ(out.lost, 1u);
    EXPECT_EQ(out.cursor, oldest + 2);
}

TEST_F(Trace, StartClearsTheBuffers) {
    give_trace();
    ASSERT_EQ(op(TraceCtl::start), 0);
    for (uint64_t i = 0; i < 100; ++i) core::trace_put(TraceKind::mark, 7, 0, i, 0, i);
    ASSERT_EQ(op(TraceCtl::start), 0);
    core::g_trace_on = false;
    core::hypercall_trace(false);
    uint64_t lost;
    auto recs = read_all(0, &lost);
    // The new start's "the caller runs", then that start itself (it went
    // through the traced dispatch): none of the 100 marks.
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].kind, uint8_t(TraceKind::sched));
    EXPECT_EQ(recs[1].kind, uint8_t(TraceKind::hypercall));
    EXPECT_EQ(recs[1].arg0 & 0xFFFF, uint64_t(abi::Hypercall::domctl));
    EXPECT_GE(recs[1].time_ns + recs[1].arg1, recs[0].time_ns);
    EXPECT_EQ(lost, 0u);
    // Its cursors start again at 0: the old ones are in the future now.
    abi::DomctlTrace out{};
    EXPECT_EQ(read(0, 50, buf, 64, &out), kEinval);
}

TEST_F(Trace, EveryBadArgumentOfAReadIsRefused) {
    give_trace();
    ASSERT_EQ(op(TraceCtl::start), 0);
    for (uint64_t i = 0; i < 10; ++i) core::trace_put(TraceKind::mark, 7, 0, i, 0, i);
    abi::DomctlTrace out{};
    // A CPU out of range, up to the worst value.
    for (uint32_t cpu : {1u, core::kTraceCpus - 1, core::kTraceCpus, 255u, ~0u})
        EXPECT_EQ(read(cpu, 0, buf, 64, &out), kEinval) << cpu;
    // A cursor in the future.
    for (uint64_t cursor : {1000ull, 1ull << 40, ~0ull}) EXPECT_EQ(read(0, cursor, buf, 64, &out), kEinval) << cursor;
    // Less than one record.
    for (uint64_t len : {0ull, 1ull, 31ull}) EXPECT_EQ(read(0, 0, buf, len, &out), kEinval) << len;
    // Buffers the domain cannot write: the hypervisor's range, a wrap
    // around the top, its read-only page tables, unmapped memory.
    for (uint64_t to : {uint64_t(0xffff800000000000), uint64_t(0xffffffffffffffe0), uint64_t(0x0000800000000000), l.pt_va, l.v_end})
        EXPECT_EQ(read(0, 0, to, 64, &out), kEfault) << std::hex << to;
    // Half in, half out: refused as a whole.
    EXPECT_EQ(read(0, 0, l.v_end - 32, 64, &out), kEfault);
    // Unknown operations.
    for (uint32_t o : {0u, 5u, 0x80000000u, ~0u}) {
        abi::DomctlTrace t{};
        t.op = o;
        EXPECT_EQ(ctl(t), kEinval) << o;
    }
    // The arguments structure itself unreadable.
    EXPECT_EQ(call(uint64_t(abi::Hypercall::domctl), 0xffff800000000000ull), kEfault);
    EXPECT_FALSE(crashed());
    // After all that, the good read works.
    ASSERT_EQ(read(0, 0, buf, 0x2000, &out), 0);
    EXPECT_GE(out.count, 11u);
}

TEST_F(Trace, HooksRecordEventsGrantsMarksAndIdling) {
    give_trace();
    ASSERT_EQ(op(TraceCtl::start), 0);
    core::evtchn_set_pending(*d, 5);
    EXPECT_EQ(call(uint64_t(abi::Hypercall::grant_table_op), uint64_t(abi::GnttabOp::query_size), buf, 1), 0);
    abi::DomctlTrace m{};
    m.op = uint32_t(TraceCtl::mark);
    m.arg0 = abi::kMarkBlk;
    m.arg1 = 12;
    EXPECT_EQ(ctl(m), 0);
    core::trace_sched(nullptr);   // the CPU idles
    core::trace_sched(nullptr);   // still: not recorded twice
    core::trace_sched(v);
    core::g_trace_on = false;
    core::hypercall_trace(false);
    uint64_t lost;
    auto recs = read_all(0, &lost);
    auto find = [&](TraceKind k, size_t from = 0) {
        for (size_t i = from; i < recs.size(); ++i)
            if (recs[i].kind == uint8_t(k)) return int(i);
        return -1;
    };
    int e = find(TraceKind::event);
    ASSERT_GE(e, 0);
    EXPECT_EQ(recs[e].domain, d->id);
    EXPECT_EQ(recs[e].arg0, 5u);
    int g = find(TraceKind::grant);
    ASSERT_GE(g, 0);
    EXPECT_EQ(recs[g].arg0, uint64_t(abi::GnttabOp::query_size));
    EXPECT_EQ(recs[g].arg1, 1u);
    int k = find(TraceKind::mark);
    ASSERT_GE(k, 0);
    EXPECT_EQ(recs[k].domain, d->id);
    EXPECT_EQ(recs[k].arg0, abi::kMarkBlk);
    EXPECT_EQ(recs[k].arg1, 12u);
    int s1 = find(TraceKind::sched, 1);
    ASSERT_GE(s1, 0);
    EXPECT_EQ(recs[s1].domain, abi::kTraceIdle);
    EXPECT_EQ(recs[s1].arg0, d->id);
    int s2 = find(TraceKind::sched, size_t(s1) + 1);
    ASSERT_GE(s2, 0);
    EXPECT_EQ(recs[s2].domain, d->id);
    EXPECT_EQ(recs[s2].arg0, abi::kTraceIdle);
    EXPECT_EQ(find(TraceKind::sched, size_t(s2) + 1), -1);
}


TEST_F(Trace, StartKeepsOnlyTheKindsAskedFor) {
    give_trace();
    abi::DomctlTrace t{};
    t.op = uint32_t(TraceCtl::start);
    t.arg0 = 1u << 0;   // TraceKind::none: no such kind
    EXPECT_EQ(ctl(t), kEinval);
    t.arg0 = 1u << 6;   // past the last kind
    EXPECT_EQ(ctl(t), kEinval);
    t.arg0 = (1u << unsigned(TraceKind::sched)) | (1u << unsigned(TraceKind::event));
    ASSERT_EQ(ctl(t), 0);
    core::evtchn_set_pending(*d, 7);
    EXPECT_EQ(call(uint64_t(abi::Hypercall::grant_table_op), uint64_t(abi::GnttabOp::query_size), buf, 1), 0);
    abi::DomctlTrace m{};
    m.op = uint32_t(TraceCtl::mark);
    EXPECT_EQ(ctl(m), 0);
    core::trace_sched(nullptr);
    core::trace_sched(v);
    core::g_trace_on = false;
    core::hypercall_trace(false);
    uint64_t lost;
    auto recs = read_all(0, &lost);
    unsigned sched = 0, event = 0;
    for (const TraceRecord& x : recs) {
        EXPECT_TRUE(x.kind == uint8_t(TraceKind::sched) || x.kind == uint8_t(TraceKind::event)) << int(x.kind);
        sched += x.kind == uint8_t(TraceKind::sched);
        event += x.kind == uint8_t(TraceKind::event);
    }
    EXPECT_GE(sched, 2u);   // the start's "the caller runs", idle, back
    EXPECT_EQ(event, 1u);
    // A start without kinds keeps every kind again.
    ASSERT_EQ(op(TraceCtl::start), 0);
    EXPECT_EQ(call(uint64_t(abi::Hypercall::grant_table_op), uint64_t(abi::GnttabOp::query_size), buf, 1), 0);
    core::g_trace_on = false;
    core::hypercall_trace(false);
    recs = read_all(0, &lost);
    bool grant = false, hypercall = false;
    for (const TraceRecord& x : recs) {
        grant |= x.kind == uint8_t(TraceKind::grant);
        hypercall |= x.kind == uint8_t(TraceKind::hypercall);
    }
    EXPECT_TRUE(grant);
    EXPECT_TRUE(hypercall);
}

}  // namespace
