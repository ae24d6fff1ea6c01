#include "store.hpp"

#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/xenbus.hpp>

namespace builder {

namespace {

alignas(4096) uint8_t g_ring[4096];
uint32_t g_port;
uint16_t g_self;
bool g_ready;

constexpr uint32_t kStoreRef = 1;   // Xen's GNTTAB_RESERVED_XENSTORE

bool report(const char* what, const char* path, rt::XsError e) {
    rt::printf("xenstore %s %s: %s\n", what, path, rt::xs_error_name(e));
    return false;
}

// Writes a node and gives it exactly these permissions.
bool node(const char* path, const char* value, const rt::XsPerm* perms, size_t n) {
    auto w = rt::xs_write(path, value);
    if (!w) return report("write", path, w.error());
    auto p = rt::xs_set_perms(path, perms, n);
    if (!p) return report("set-perms", path, p.error());
    return true;
}

}  // namespace

long store_prepare(uint16_t self, uint16_t store_dom) {
    g_self = self;
    grant::Table& t = rt::grant_table();
    uint64_t mfn = rt::mfn_of_pfn((rt::ptr(g_ring) - rt::kVirtBase) >> 12);
    if (t.size() == 0 || !t.grant_access(kStoreRef, store_dom, uint32_t(mfn), false)) return -1;
    long port = rt::alloc_unbound(store_dom);
    if (port > 0) g_port = uint32_t(port);
    return port;
}

bool store_connect() {
    if (!g_port) return false;
    auto r = rt::xs_init(g_ring, g_port);
    if (!r) return report("connect", "", r.error());
    rt::notify(g_port);
    // The first request waits for the store domain to map our ring.
    auto is = rt::xs_is_domain_introduced(g_self);
    if (!is) return report("is-introduced", "", is.error());
    g_ready = true;
    return true;
}

bool store_ready() { return g_ready; }

bool store_introduce(const StoreDomain& d, bool introduce) {
    char home[32], path[96], value[32];
    base::snformat(home, sizeof home, "/local/domain/%u", d.id);
    // Its home is its own (also when the builder wrote below it before).
    rt::XsPerm own[] = {{introduce ? d.id : g_self, 'n'}, {d.console_backend, 'r'}};
    if (auto m = rt::xs_mkdir(home); !m) return report("mkdir", home, m.error());
    if (auto p = rt::xs_set_perms(home, own, introduce ? 1 : 2); !p) return report("set-perms", home, p.error());
    // What the builder says about it: readable by it and by the console.
    rt::XsPerm ro[3] = {{g_self, 'n'}, {d.id, 'r'}, {d.console_backend, 'r'}};
    size_t nro = d.console_backend != 0xFFFF && d.console_backend != d.id ? 3 : 2;
    base::snformat(path, sizeof path, "%s/name", home);
    if (!node(path, d.name, ro, nro)) return false;
    base::snformat(path, sizeof path, "%s/domid", home);
    base::snformat(value, sizeof value, "%u", d.id);
    if (!node(path, value, ro, nro)) return false;
    if (d.console_port) {
        base::snformat(path, sizeof path, "%s/console", home);
        if (auto m = rt::xs_mkdir(path); !m) return report("mkdir", path, m.error());
        if (auto p = rt::xs_set_perms(path, ro, nro); !p) return report("set-perms", path, p.error());
        base::snformat(path, sizeof path, "%s/console/type", home);
        if (!node(path, "xenconsoled", ro, nro)) return false;
        base::snformat(path, sizeof path, "%s/console/ring-ref", home);
        base::snformat(value, sizeof value, "%lu", d.console_mfn);
        if (!node(path, value, ro, nro)) return false;
        base::snformat(path, sizeof path, "%s/console/port", home);
        base::snformat(value, sizeof value, "%u", d.console_port);
        if (!node(path, value, ro, nro)) return false;
    }
    if (d.boot_tsc) {
        base::snformat(path, sizeof path, "%s/moat/boot-tsc", home);
        base::snformat(value, sizeof value, "%lu", d.boot_tsc);
        if (!node(path, value, ro, nro)) return false;
    }
    if (!introduce) return true;
    auto r = rt::xs_introduce(d.id, d.store_mfn, d.store_port);
    if (!r) return report("introduce", home, r.error());
    return true;
}

bool store_ring(uint16_t fe, uint16_t be, unsigned devid) {
    char fpath[96], bpath[96], path[128], value[96];
    base::snformat(fpath, sizeof fpath, "/local/domain/%u/device/ring/%u", fe, devid);
    base::snformat(bpath, sizeof bpath, "/local/domain/%u/backend/ring/%u/%u", be, fe, devid);
    rt::XsPerm fperm[] = {{fe, 'n'}, {be, 'r'}};
    rt::XsPerm bperm[] = {{be, 'n'}, {fe, 'r'}};
    struct {
        const char* dir;
        const char* leaf;
        const char* val;
        const rt::XsPerm* perms;
    } nodes[] = {
        {fpath, "backend", bpath, fperm}, {fpath, "backend-id", nullptr, fperm}, {fpath, "state", "1", fperm},
        {bpath, "frontend", fpath, bperm}, {bpath, "frontend-id", nullptr, bperm}, {bpath, "state", "1", bperm},
    };
    // The directories above, created by us, belong to the domain whose home
    // they are in (it may list and add to them).
    struct {
        const char* fmt;
        uint16_t a, b;
        uint16_t owner;
    } dirs[] = {
        {"/local/domain/%u/device", fe, 0, fe},
        {"/local/domain/%u/device/ring", fe, 0, fe},
        {"/local/domain/%u/backend", be, 0, be},
        {"/local/domain/%u/backend/ring", be, 0, be},
        {"/local/domain/%u/backend/ring/%u", be, fe, be},
    };
    for (auto& d : dirs) {
        base::snformat(path, sizeof path, d.fmt, d.a, d.b);
        rt::XsPerm own[] = {{d.owner, 'n'}};
        if (auto m = rt::xs_mkdir(path); !m) return report("mkdir", path, m.error());
        if (auto p = rt::xs_set_perms(path, own, 1); !p) return report("set-perms", path, p.error());
    }
    for (auto& n : nodes) {
        base::snformat(path, sizeof path, "%s/%s", n.dir, n.leaf);
        const char* v = n.val;
        if (!v) {
            base::snformat(value, sizeof value, "%u", n.dir == fpath ? be : fe);
            v = value;
        }
        if (!node(path, v, n.perms, 2)) return false;
    }
    if (auto p = rt::xs_set_perms(fpath, fperm, 2); !p) return report("set-perms", fpath, p.error());
    if (auto p = rt::xs_set_perms(bpath, bperm, 2); !p) return report("set-perms", bpath, p.error());
    return true;
}

bool store_release(uint16_t dom) {
    char home[32];
    base::snformat(home, sizeof home, "/local/domain/%u", dom);
    // Its home goes first, so whoever looks on @releaseDomain finds it gone.
    auto rm = rt::xs_rm(home);
    if (!rm && rm.error() != rt::XsError::noent) report("rm", home, rm.error());
    auto r = rt::xs_release(dom);
    if (!r) return report("release", home, r.error());
    return true;
}

bool store_allow_special_watches(uint16_t console_dom) {
    rt::XsPerm p[] = {{g_self, 'n'}, {console_dom, 'r'}};
    auto a = rt::xs_set_perms("@introduceDomain", p, 2);
    if (!a) return report("set-perms", "@introduceDomain", a.error());
    auto b = rt::xs_set_perms("@releaseDomain", p, 2);
    if (!b) return report("set-perms", "@releaseDomain", b.error());
    return true;
}

}  // namespace builder
