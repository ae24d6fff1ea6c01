#include "domains.hpp"

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/moat.hpp>
#include <base/format.hpp>
#include <rt/caps.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/xenbus.hpp>

namespace toolstack {

namespace {

char g_self_name[control::kNameLen + 1] = "toolstack";
uint32_t g_self_id = 0xFFFF;

// Names of the domains seen through our capabilities: at most kMaxSeen (a
// manifest's toolstack controls at most kMaxDomains; beyond this table a
// domain that is down is called REFUSED, not NO_SUCH_DOMAIN).
constexpr size_t kMaxSeen = 1024;
char g_seen[kMaxSeen][control::kNameLen + 1];
size_t g_n_seen;

bool streq(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

void remember(const char* name) {
    if (seen(name) || g_n_seen == kMaxSeen) return;
    base::snformat(g_seen[g_n_seen++], control::kNameLen + 1, "%s", name);
}

long domctl(abi::MoatDomctl& op) {
    op.version = abi::kMoatDomctlVersion;
    return rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op));
}

control::State state_of(const abi::DomctlInfo& i) {
    if (i.state == abi::kDomainStateStopped) {
        auto r = abi::ShutdownReason(i.shutdown_reason);
        return r == abi::ShutdownReason::crash || r == abi::ShutdownReason::watchdog ? control::State::crashed
                                                                                     : control::State::shutdown;
    }
    return i.paused ? control::State::paused : control::State::running;
}

// getinfo on a domain we hold: false if it went (or the name it reports is
// not one the protocol can carry, which the builder never creates).
bool info_of(uint16_t id, control::DomainInfo& out) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::getinfo);
    op.domain = id;
    if (domctl(op) != 0) return false;
    const abi::DomctlInfo& i = op.u.info;
    static_assert(sizeof i.name == control::kNameLen);
    char name[control::kNameLen + 1];
    __builtin_memcpy(name, i.name, control::kNameLen);
    name[control::kNameLen] = '\0';
    if (!control::valid_name(name)) return false;
    out = control::DomainInfo{};
    base::snformat(out.name, sizeof out.name, "%s", name);
    out.id = id;
    out.memory_kib = i.tot_pages * 4;
    out.max_memory_kib = i.max_pages * 4;
    out.vcpus = 1;   // the core runs one vCPU per domain
    out.state = state_of(i);
    out.cpu_time_ns = i.cpu_time_ns;
    out.events_sent = i.events_sent;
    out.grant_ops = i.grant_ops;
    out.grant_copy_bytes = i.grant_copy_bytes;
    remember(out.name);
    return true;
}

}  // namespace

void self_init() {
    char buf[control::kNameLen + 1];
    if (auto r = rt::xs_read("name", buf, sizeof buf); r && control::valid_name(buf))
        base::snformat(g_self_name, sizeof g_self_name, "%s", buf);
    if (auto id = rt::xs_read_number("domid"); id && *id < 0xFFFF) g_self_id = uint32_t(*id);
}

const char* self_name() { return g_self_name; }

control::DomainInfo self_info() {
    control::DomainInfo d{};
    base::snformat(d.name, sizeof d.name, "%s", g_self_name);
    d.id = g_self_id;
    d.memory_kib = d.max_memory_kib = rt::start_info().nr_pages * 4;
    d.vcpus = 1;
    d.state = control::State::running;
    abi::VcpuRunstateInfo rs{};
    if (rt::hypercall(abi::Hypercall::vcpu_op, uint64_t(abi::VcpuOp::get_runstate_info), 0, rt::ptr(&rs)) == 0)
        d.cpu_time_ns = rs.time[int(abi::RunstateState::running)];
    // events_sent, grant_ops, grant_copy_bytes stay 0: getinfo needs a Domain
    // capability, and we hold none for ourselves (see domains.hpp).
    return d;
}

size_t held(Held* out, size_t cap, size_t skip) {
    abi::CapOpArgs a{};
    a.domain = abi::kDomidSelf;
    long n = rt::cap_op(abi::CapOp::size, a);
    size_t count = 0;
    static uint16_t ids[abi::kMaxCspaceSlots];
    for (long s = 0; s < n; ++s) {
        abi::MoatCap c = rt::cap_inspect(uint32_t(s));
        if (c.type != uint32_t(abi::CapType::domain) || !(c.rights & abi::kCapRightControl)) continue;
        uint16_t id = uint16_t(c.object);
        bool dup = false;
        for (size_t k = 0; k < count && !dup; ++k) dup = ids[k] == id;
        if (dup) continue;
        Held h{id, {}};
        if (!info_of(id, h.info)) continue;
        if (count >= skip && count - skip < cap) out[count - skip] = h;
        ids[count++] = id;
    }
    return count;
}

bool find(const char* name, Held* out) {
    abi::CapOpArgs a{};
    a.domain = abi::kDomidSelf;
    long n = rt::cap_op(abi::CapOp::size, a);
    for (long s = 0; s < n; ++s) {
        abi::MoatCap c = rt::cap_inspect(uint32_t(s));
        if (c.type != uint32_t(abi::CapType::domain) || !(c.rights & abi::kCapRightControl)) continue;
        Held h{uint16_t(c.object), {}};
        if (info_of(h.id, h.info) && streq(h.info.name, name)) {
            *out = h;
            return true;
        }
    }
    return false;
}

bool seen(const char* name) {
    for (size_t k = 0; k < g_n_seen; ++k)
        if (streq(g_seen[k], name)) return true;
    return false;
}

long pause(uint16_t id) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::pause);
    op.domain = id;
    return domctl(op);
}

long unpause(uint16_t id) {
    abi::MoatDomctl op{};
    op.cmd = uint32_t(abi::DomctlCmd::unpause);
    op.domain = id;
    return domctl(op);
}

bool ask_poweroff(uint16_t id, const char** why) {
    char path[64];
    base::snformat(path, sizeof path, "/local/domain/%u/control/shutdown", id);
    auto w = rt::xs_write(path, "poweroff");
    if (!w) *why = rt::xs_error_name(w.error());
    return bool(w);
}

}  // namespace toolstack
