#include <rt/console.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>

#include <abi/memory.hpp>
#include <base/cmdline.hpp>
#include <base/number.hpp>

namespace rt {

namespace {
const abi::StartInfo* g_start_info;
// The shared info frame is mapped over this page of the image.
alignas(4096) uint8_t g_shared_info_page[4096];
}  // namespace

const abi::StartInfo& start_info() { return *g_start_info; }
abi::SharedInfo& shared_info() { return *reinterpret_cast<abi::SharedInfo*>(g_shared_info_page); }
abi::VcpuInfo& vcpu_info() { return shared_info().vcpu_info[0]; }

bool has_arg(const char* word) {
    return base::has_word(reinterpret_cast<const char*>(start_info().cmd_line), word);
}

bool cmdline_value(const char* key, const char** value, size_t* len) {
    const char* s = reinterpret_cast<const char*>(start_info().cmd_line);
    size_t k = __builtin_strlen(key);
    for (const char* p = s; *p; ++p) {
        if ((p == s || p[-1] == ' ') && __builtin_memcmp(p, key, k) == 0 && p[k] == '=') {
            const char* b = p + k + 1;
            const char* e = b;
            while (*e && *e != ' ') ++e;
            *value = b;
            *len = size_t(e - b);
            return true;
        }
    }
    return false;
}

uint64_t cmdline_number(const char* key, uint64_t def) {
    const char* v;
    size_t n;
    uint64_t x;
    return cmdline_value(key, &v, &n) && base::parse_u64(v, n, x) ? x : def;
}

void shutdown(abi::ShutdownReason reason) {
    abi::SchedShutdown s{static_cast<uint32_t>(reason)};
    for (;;) sched_op(abi::SchedOp::shutdown, &s);
}

}  // namespace rt

extern "C" [[noreturn]] void rt_start(const abi::StartInfo* si) {
    rt::g_start_info = si;
    // present | writable | accessed | dirty
    uint64_t pte = si->shared_info | 0x63;
    long r = rt::hypercall(abi::Hypercall::update_va_mapping, rt::ptr(rt::g_shared_info_page), pte, abi::kUvmfInvlpg);
    if (r != 0) {
        rt::printf("rt: cannot map shared info (error %ld)\n", r);
        rt::shutdown(abi::ShutdownReason::crash);
    }
    rt::main();
    rt::shutdown(abi::ShutdownReason::poweroff);
}
