#include "create.hpp"

#include "domains.hpp"

#include <cstdarg>

#include <abi/hypercall.hpp>
#include <abi/moat.hpp>
#include <abi/xs_wire.hpp>
#include <base/crc32.hpp>
#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/mm.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

namespace toolstack {

namespace {

// Where the builder takes create requests (services/builder/src/create.hpp):
// its directory, writable (not readable) by us alone.
constexpr const char* kCreateDir = "/moat/create";
// How long the builder may take to build and start a guest (it waits for
// the back-ends to map its rings, up to 10 s): guest time, polled.
constexpr uint64_t kCreateTimeoutNs = 30'000'000'000;
constexpr uint64_t kPollNs = 1'000'000;

// The staging area: pieces of the image land here at their offsets. Page
// aligned, so that its frames are exactly kStagePages whole pages, which the
// builder maps (read-only) through its Domain capability for us.
constexpr size_t kStagePages = control::kStageBytes / 4096;
alignas(4096) uint8_t g_stage[control::kStageBytes];
// The staging area's machine frames, in order: the builder reads this list
// (its kListPages frames, named in the request) rather than a node of a
// thousand numbers. Filled once (our P2M does not change).
constexpr size_t kListPages = kStagePages * 8 / 4096;
alignas(4096) uint64_t g_stage_mfns[kStagePages];
static_assert(kStagePages * 8 % 4096 == 0);

// The quota, as the builder told us (it checks every create again itself).
struct Quota {
    bool given = false;
    unsigned domains = 0;
    uint64_t memory_kib = 0;
    unsigned n_backends = 0;
    char backends[16][control::kNameLen + 1];
};
Quota g_quota;

// The guests we created that may still exist (a name and its memory):
// those no longer held (destroyed, powered off and reaped) free their entry
// at the next create.
struct Created {
    char name[control::kNameLen + 1];
    uint64_t memory_kib;
};
constexpr unsigned kMaxCreated = 64;
Created g_created[kMaxCreated];
unsigned g_n_created;

char g_node[abi::kXenstorePayloadMax + 1];
char g_outcome[abi::kXenstorePayloadMax + 1];

bool streq(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

void say(control::Response& r, control::Status s, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void say(control::Response& r, control::Status s, const char* fmt, ...) {
    r.status = s;
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(r.error, sizeof r.error, fmt, ap);
    va_end(ap);
}

void sleep_until(uint64_t deadline) {
    abi::SchedPoll p{0, 0, deadline};
    rt::hypercall(abi::Hypercall::sched_op, uint64_t(abi::SchedOp::poll), rt::ptr(&p));
}

// "DOMAINS,KIB[,BACKEND...]" into g_quota; false if malformed.
bool parse_quota(const char* v, size_t len) {
    Quota q;
    q.given = true;
    unsigned field = 0;
    for (size_t at = 0; at <= len;) {
        size_t end = at;
        while (end < len && v[end] != ',') ++end;
        size_t n = end - at;
        if (field < 2) {
            uint64_t x = 0;
            if (n == 0 || n > 15) return false;
            for (size_t k = at; k < end; ++k) {
                if (v[k] < '0' || v[k] > '9') return false;
                x = x * 10 + uint64_t(v[k] - '0');
            }
            if (field == 0) q.domains = unsigned(x);
            else q.memory_kib = x;
        } else {
            if (n == 0 || n > control::kNameLen || q.n_backends == 16) return false;
            __builtin_memcpy(q.backends[q.n_backends], v + at, n);
            q.backends[q.n_backends++][n] = '\0';
        }
        ++field;
        at = end + 1;
    }
    if (field < 2 || q.domains == 0) return false;
    g_quota = q;
    return true;
}

bool backend_allowed(const char* name) {
    for (unsigned k = 0; k < g_quota.n_backends; ++k)
        if (streq(g_quota.backends[k], name)) return true;
    return false;
}

// Forgets the created guests that are gone; counts those left and their memory.
void live_created(unsigned* n, uint64_t* kib) {
    *n = 0;
    *kib = 0;
    Held h;
    for (unsigned k = 0; k < g_n_created;) {
        if (!find(g_created[k].name, &h)) {
            g_created[k] = g_created[--g_n_created];
            continue;
        }
        ++*n;
        *kib += g_created[k].memory_kib;
        ++k;
    }
}

// The builder's words, shown to a person: one printable line.
void printable(char* s) {
    for (char* c = s; *c; ++c)
        if (uint8_t(*c) < 0x20 || uint8_t(*c) >= 0x7f) *c = '?';
}

}  // namespace

void create_init() {
    for (size_t k = 0; k < kStagePages; ++k)
        g_stage_mfns[k] = rt::mfn_of_pfn((rt::ptr(&g_stage[k * 4096]) - rt::kVirtBase) >> 12);
    const char* v;
    size_t len;
    if (!rt::cmdline_value("create-quota", &v, &len)) return;
    if (!parse_quota(v, len)) {
        rt::printf("malformed create-quota on the command line: every create refused\n");
        return;
    }
    rt::printf("create quota: %u domains, %lu KiB, %u back-ends\n", g_quota.domains, g_quota.memory_kib,
               g_quota.n_backends);
}

void upload(const control::Request& q, control::Response& r) {
    if (q.data_len == 0 || q.data_len > control::kUploadLen || q.offset > control::kStageBytes ||
        q.data_len > control::kStageBytes - q.offset)
        return say(r, control::Status::bad_request, "upload: %u bytes at %u do not fit the %zu-byte staging area",
                   q.data_len, q.offset, control::kStageBytes);
    __builtin_memcpy(g_stage + q.offset, q.data, q.data_len);
    r.status = control::Status::ok;
}

uint64_t free_memory_kib() {
    Held h[1];
    if (held(h, 1) == 0) return 0;
    abi::MoatDomctl op{};
    op.version = abi::kMoatDomctlVersion;
    op.cmd = uint32_t(abi::DomctlCmd::getinfo);
    op.domain = h[0].id;
    if (rt::hypercall(abi::Hypercall::domctl, rt::ptr(&op)) != 0) return 0;
    return op.u.info.free_frames * 4;
}

void create(const control::Request& q, control::Response& r, bool store) {
    const uint64_t asked_ns = rt::now_ns();   // domain_create_live_insns starts here
    if (!g_quota.given)
        return say(r, control::Status::refused, "create \"%s\": the manifest gives the toolstack no create quota",
                   q.name);
    if (!store) return say(r, control::Status::failed, "create \"%s\": the toolstack has no XenStore connection", q.name);
    // The early, clean errors; the builder checks each again (and more: the
    // names of domains we cannot see).
    if (q.vcpus != 1)
        return say(r, control::Status::refused, "create \"%s\": %u vCPUs: the core runs one vCPU per domain", q.name,
                   q.vcpus);
    if (streq(q.name, self_name()))
        return say(r, control::Status::refused, "create \"%s\": the toolstack's own name", q.name);
    Held h;
    if (find(q.name, &h))
        return say(r, control::Status::refused, "create \"%s\": a domain of that name exists (domain %u)", q.name,
                   h.id);
    for (const char* be : {q.console, q.xenstore, q.net, q.blk})
        if (*be && !backend_allowed(be))
            return say(r, control::Status::refused, "create \"%s\": back-end \"%s\" is not in the toolstack's create quota",
                       q.name, be);
    unsigned n;
    uint64_t kib;
    live_created(&n, &kib);
    if (n >= g_quota.domains)
        return say(r, control::Status::refused, "create \"%s\": %u created domains exist, the quota's most", q.name, n);
    uint64_t left = kib < g_quota.memory_kib ? g_quota.memory_kib - kib : 0;
    if (q.memory_kib > left)
        return say(r, control::Status::refused,
                   "create \"%s\": %lu KiB asked, %lu KiB left of the create quota's %lu KiB", q.name, q.memory_kib,
                   left, g_quota.memory_kib);
    if (q.image_size == 0 || q.image_size > control::kStageBytes)
        return say(r, control::Status::bad_request, "create \"%s\": image of %u bytes", q.name, q.image_size);
    if (uint32_t crc = base::crc32(g_stage, q.image_size); crc != q.image_crc32)
        return say(r, control::Status::bad_request,
                   "create \"%s\": the staged image's CRC-32 is %08x, the request says %08x (a piece missing?)",
                   q.name, crc, q.image_crc32);

    // The request: every number the builder needs, the command line last
    // (it may hold spaces; it holds no newline: valid_cmdline).
    char path[64];
    base::snformat(path, sizeof path, "%s/%s", kCreateDir, q.name);
    uint64_t list0 = rt::mfn_of_pfn((rt::ptr(&g_stage_mfns[0]) - rt::kVirtBase) >> 12);
    uint64_t list1 = rt::mfn_of_pfn((rt::ptr(&g_stage_mfns[512]) - rt::kVirtBase) >> 12);
    static_assert(kListPages == 2);
    // Its disk, if any: the builder checks the sectors against the quota's
    // (we do not know which parts live guests hold).
    char disk[64] = "";
    if (q.blk[0])
        base::snformat(disk, sizeof disk, " disk=%lu,%lu,%s", q.disk_first, q.disk_sectors,
                       q.disk_read_only ? "r" : "w");
    base::snformat(g_node, sizeof g_node,
                   "create memory=%lu console=%s xenstore=%s net=%s blk=%s%s size=%u crc=%u list=%lu,%lu asked=%lu cmdline=%s",
                   q.memory_kib, q.console[0] ? q.console : "-", q.xenstore[0] ? q.xenstore : "-",
                   q.net[0] ? q.net : "-", q.blk[0] ? q.blk : "-", disk, q.image_size, q.image_crc32, list0, list1,
                   asked_ns, q.cmdline);
    (void)rt::xs_rm(path);   // a stale outcome of a request we gave up on
    if (auto w = rt::xs_write(path, g_node); !w)
        return say(r, control::Status::failed, "create \"%s\": cannot ask the builder (%s: xenstore write %s)", q.name,
                   rt::xs_error_name(w.error()), path);
    uint64_t deadline = rt::now_ns() + kCreateTimeoutNs;
    for (;;) {
        auto v = rt::xs_read(path, g_outcome, sizeof g_outcome);
        if (v && __builtin_strncmp(g_outcome, "create ", 7) != 0) break;   // the builder's outcome
        if (!v && v.error() != rt::XsError::timedout) {
            say(r, control::Status::failed, "create \"%s\": the builder's answer cannot be read (%s: %s)", q.name,
                rt::xs_error_name(v.error()), path);
            (void)rt::xs_rm(path);
            return;
        }
        if (rt::now_ns() > deadline) {
            say(r, control::Status::failed, "create \"%s\": the builder did not answer in %lu s", q.name,
                kCreateTimeoutNs / 1'000'000'000);
            (void)rt::xs_rm(path);
            return;
        }
        sleep_until(rt::now_ns() + kPollNs);
    }
    (void)rt::xs_rm(path);
    printable(g_outcome);
    if (__builtin_strncmp(g_outcome, "done ", 5) == 0) {
        // The builder gave us its Domain capability (control right) before
        // it answered: the new domain is one we hold.
        if (!find(q.name, &h))
            return say(r, control::Status::failed, "create \"%s\": built, but the toolstack holds no capability for it",
                       q.name);
        if (g_n_created < kMaxCreated) {
            base::snformat(g_created[g_n_created].name, sizeof g_created[0].name, "%s", q.name);
            g_created[g_n_created++].memory_kib = q.memory_kib;
        }
        r.domains[0] = h.info;
        r.n_domains = 1;
        r.status = control::Status::ok;
        rt::printf("created %s as domain %u\n", q.name, h.id);
        return;
    }
    if (__builtin_strncmp(g_outcome, "refused: ", 9) == 0)
        return say(r, control::Status::refused, "create \"%s\": the builder refused: %s", q.name, g_outcome + 9);
    const char* why = __builtin_strncmp(g_outcome, "failed: ", 8) == 0 ? g_outcome + 8 : g_outcome;
    say(r, control::Status::failed, "create \"%s\": %s", q.name, *why ? why : "the builder's answer is empty");
}

}  // namespace toolstack
