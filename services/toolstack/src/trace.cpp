#include "trace.hpp"

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/moat.hpp>
#include <abi/trace.hpp>
#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>

namespace toolstack {

namespace {

static_assert(control::kTraceRecordBytes == sizeof(abi::TraceRecord));
static_assert(control::kRecordsLen % sizeof(abi::TraceRecord) == 0);

long trace_ctl(abi::DomctlTrace& t) {
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::trace);
    static_assert(sizeof t <= sizeof op.u.raw);
    __builtin_memcpy(op.u.raw, &t, sizeof t);
    long rc = rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
    __builtin_memcpy(&t, op.u.raw, sizeof t);
    return rc;
}

}  // namespace

void trace(const control::Request& q, control::Response& r) {
    r.records_len = 0;
    r.next = r.lost = 0;
    r.cpus = 0;
    const char* what = control::trace_op_name(q.trace_op);
    abi::DomctlTrace t{};
    switch (q.trace_op) {
    case control::TraceOp::start:
        t.op = uint32_t(abi::TraceCtl::start);
        t.arg0 = q.trace_kinds;   // 0: every kind
        break;
    case control::TraceOp::stop: t.op = uint32_t(abi::TraceCtl::stop); break;
    case control::TraceOp::read:
        t.op = uint32_t(abi::TraceCtl::read);
        t.cpu = q.cpu;
        t.cursor = q.cursor;
        // Straight into the answer: whole records, one frame's worth.
        t.buf = rt::ptr(r.records);
        t.len = control::kRecordsLen;
        break;
    default:
        r.status = control::Status::bad_request;
        base::snformat(r.error, sizeof r.error, "trace: no such operation");
        return;
    }
    long rc = trace_ctl(t);
    if (rc == abi::neg(abi::Errno::eperm)) {
        r.status = control::Status::refused;
        base::snformat(r.error, sizeof r.error,
                       "trace %s: the toolstack holds no Trace capability (the builder gives it one when it builds it)",
                       what);
        return;
    }
    if (rc == abi::neg(abi::Errno::einval) && q.trace_op == control::TraceOp::read) {
        r.status = control::Status::failed;
        base::snformat(r.error, sizeof r.error,
                       "trace read of cpu %u from %lu: EINVAL (no such cpu, or a cursor past the newest record)", q.cpu,
                       q.cursor);
        return;
    }
    if (rc != 0) {
        r.status = control::Status::failed;
        base::snformat(r.error, sizeof r.error, "trace %s: refused by the hypervisor (errno %ld)", what, -rc);
        return;
    }
    // What the kernel says is bounded again before it goes out.
    if (t.count > control::kRecordsLen / control::kTraceRecordBytes) {
        r.status = control::Status::failed;
        base::snformat(r.error, sizeof r.error, "trace read: the hypervisor copied %u records", t.count);
        return;
    }
    r.status = control::Status::ok;
    // The buffers' count in the answers to a start and a read, not a stop's.
    if (q.trace_op != control::TraceOp::stop) r.cpus = t.cpus;
    if (q.trace_op == control::TraceOp::read) {
        r.records_len = uint16_t(t.count * control::kTraceRecordBytes);
        r.next = t.cursor;
        r.lost = t.lost;
    }
    if (q.trace_op == control::TraceOp::start) rt::printf("trace started (%u cpu buffers)\n", t.cpus);
    if (q.trace_op == control::TraceOp::stop) rt::printf("trace stopped\n");
}

}  // namespace toolstack
