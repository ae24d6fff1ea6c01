#pragma once
// Marks in the kernel's trace (abi/trace.hpp, domctl trace mark): a batch of
// requests this back-end served, recorded in its own name while somebody
// traces. Tracing is rare: when the kernel answers that nobody records (1),
// the next kSkip batches are not marked, so an untraced back-end pays a
// sixty-fourth of a hypercall per batch. Used by netback and blkback.

#include <abi/moat.hpp>
#include <abi/trace.hpp>
#include <rt/hypercall.hpp>

#include <cstdint>

namespace rt {

class TraceMarker {
public:
    void mark(uint64_t what, uint64_t count) {
        if (skip_) {
            --skip_;
            return;
        }
        abi::MoatDomctl op{};
        op.version = abi::kMoatDomctlVersion;
        op.cmd = uint32_t(abi::DomctlCmd::trace);
        abi::DomctlTrace t{};
        t.op = uint32_t(abi::TraceCtl::mark);
        t.arg0 = what;
        t.arg1 = count;
        static_assert(sizeof t <= sizeof op.u.raw);
        __builtin_memcpy(op.u.raw, &t, sizeof t);
        if (rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op)) != 0) skip_ = kSkip;
    }

private:
    static constexpr uint32_t kSkip = 64;
    uint32_t skip_ = 0;
};

}  // namespace rt
