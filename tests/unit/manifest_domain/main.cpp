// libs/manifest as the builder uses it: the domain flavour (freestanding,
// nanopb compiled for domains) linked into a ring-3 image, decoding a manifest
// `moat compile` wrote, on the domain's own 64 KiB stack. Prints a PASS line
// per check and how much stack decode used.

#include <manifest/manifest.hpp>

#include <rt/console.hpp>
#include <rt/rt.hpp>

#include <cstdint>

extern "C" const uint8_t manifest_blob[], manifest_blob_end[];

namespace {

manifest::System g_system;   // ~1.8 MiB: never on the stack
uint8_t g_copy[4096];
unsigned g_failed;

void check(bool ok, const char* name) {
    if (ok) {
        rt::printf("PASS %s\n", name);
    } else {
        rt::printf("FAIL %s\n", name);
        ++g_failed;
    }
}

bool same(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

constexpr size_t kPaint = 40 * 1024;   // below the current frame, within the 64 KiB stack
constexpr uint8_t kPattern = 0xa5;

// Bytes of stack below `top` that `f` wrote (painted first, then scanned).
template <typename F>
__attribute__((noinline)) size_t stack_used(F f) {
    auto* top = static_cast<uint8_t*>(__builtin_frame_address(0)) - 512;
    volatile uint8_t* low = top - kPaint;
    for (size_t i = 0; i < kPaint; ++i) low[i] = kPattern;
    f();
    size_t i = 0;
    while (i < kPaint && low[i] == kPattern) ++i;
    return kPaint - i;
}

}  // namespace

void rt::main() {
    const size_t len = size_t(manifest_blob_end - manifest_blob);
    char err[160] = {};
    bool ok = false;
    size_t used = stack_used([&] { ok = manifest::decode(manifest_blob, len, g_system, err, sizeof err); });
    if (!ok) rt::printf("decode: %s\n", err);
    check(ok, "decode");
    rt::printf("decode used %zu bytes of stack\n", used);
    check(used < 8192, "decode_stack");
    if (ok) {
        const manifest::System& s = g_system;
        check(s.n_domains == 6 && s.n_connections == 5 && s.memory_mib == 128, "counts");
        check(s.find("builder") == 0 && s.find("guest.2") == 5 && s.find("nobody") == -1, "find");
        check(s.domains[0].role == manifest::Role::builder && s.domains[0].module == 0 && s.domains[5].module == 2,
              "roles_modules");
        check(s.domains[4].ramdisk_module == 3 && s.domains[5].ramdisk_module == 0 && s.domains[0].ramdisk_module == 0,
              "ramdisk");
        const manifest::Domain& g1 = s.domains[4];
        check(same(g1.cmdline, "console=hvc0") && g1.n_grants == 1 && g1.grants[0].peer == 5 &&
                  g1.grants[0].rights == (manifest::kGrantMapRo | manifest::kGrantCopy),
              "grants");
        check(s.domains[3].n_pci == 1 && s.domains[3].pci[0].device == 3 && s.domains[3].mmio[0].first == 0xfebf0000,
              "devices");
        check(s.domains[1].weight == 512 && s.domains[2].weight == 256 && s.domains[2].vcpus == 1, "defaults");
    }
    // A corrupted copy is refused with its reason.
    if (len <= sizeof g_copy) {
        __builtin_memcpy(g_copy, manifest_blob, len);
        g_copy[len - 1] ^= 0x40;
        ok = manifest::decode(g_copy, len, g_system, err, sizeof err);
        check(!ok && err[0] != '\0', "refuse_corrupt");
        rt::printf("corrupted: %s\n", err);
    } else {
        check(false, "refuse_corrupt");
    }
    rt::printf("done, %u failed\n", g_failed);
}
