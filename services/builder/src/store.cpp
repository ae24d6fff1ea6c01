#include "store.hpp"

#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/mm.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

namespace builder {

namespace {

alignas(4096) uint8_t g_ring[4096];
uint32_t g_port;
uint16_t g_self;
bool g_ready;

constexpr uint32_t kStoreRef = 1;   // Xen's GNTTAB_RESERVED_XENSTORE
constexpr uint16_t kNone = 0xFFFF;
// The console back-end whose backend/console directory exists (made on its
// first use; gone with the back-end's home when it is released).
uint16_t g_console_dir = kNone;

bool report(const char* what, const char* path, rt::XsError e) {
    rt::printf("xenstore %s %s: %s\n", what, path, rt::xs_error_name(e));
    return false;
}

// Writes a node and gives it exactly these permissions.
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

namespace {
bool console_node(const StoreDomain& d) {
    return d.console_port ? store_console_node(d.console_backend, d.id) : true;
}
}  // namespace

bool store_introduce(const StoreDomain& d, bool introduce) {
    char home[32], path[96], value[32];
    base::snformat(home, sizeof home, "/local/domain/%u", d.id);
    // What the builder says about it is readable by it and by the console,
    // and only the builder's to change. New nodes take their parent's
    // permissions, so the home carries these while they are written, then
    // becomes the domain's own (its own nodes go below it).
    rt::XsPerm ro[3] = {{g_self, 'n'}, {d.id, 'r'}, {d.console_backend, 'r'}};
    size_t nro = d.console_backend != 0xFFFF && d.console_backend != d.id ? 3 : 2;
    if (auto m = rt::xs_mkdir(home); !m) return report("mkdir", home, m.error());
    if (auto p = rt::xs_set_perms(home, ro, nro); !p) return report("set-perms", home, p.error());
    auto put = [&](const char* leaf, const char* v) {
        base::snformat(path, sizeof path, "%s/%s", home, leaf);
        auto w = rt::xs_write(path, v);
        return w ? true : report("write", path, w.error());
    };
    base::snformat(value, sizeof value, "%u", d.id);
    if (!put("name", d.name) || !put("domid", value)) return false;
    if (d.console_port) {
        base::snformat(value, sizeof value, "%lu", d.console_mfn);
        if (!put("console/type", "xenconsoled") || !put("console/ring-ref", value)) return false;
        base::snformat(value, sizeof value, "%u", d.console_port);
        if (!put("console/port", value)) return false;
    }
    if (d.boot_tsc) {
        base::snformat(value, sizeof value, "%lu", d.boot_tsc);
        if (!put("moat/boot-tsc", value)) return false;
    }
    // The store domain itself is not introduced (it serves no ring for
    // itself): its home stays the builder's, readable by the console.
    rt::XsPerm own[] = {{introduce ? d.id : g_self, 'n'}, {d.console_backend, 'r'}};
    if (auto p = rt::xs_set_perms(home, own, introduce ? 1 : 2); !p) return report("set-perms", home, p.error());
    if (!introduce) return console_node(d);
    auto r = rt::xs_introduce(d.id, d.store_mfn, d.store_port);
    if (!r) return report("introduce", home, r.error());
    return console_node(d);
}

bool store_console_node(uint16_t console_backend, uint16_t id) {
    if (console_backend == kNone || console_backend == id) return true;
    char dir[64], path[80], value[32];
    base::snformat(dir, sizeof dir, "/local/domain/%u/backend/console", console_backend);
    if (g_console_dir != console_backend) {
        // Ours (nobody's quota), readable by the back-end; what we write
        // below inherits that.
        rt::XsPerm perms[] = {{g_self, 'n'}, {console_backend, 'r'}};
        if (auto m = rt::xs_mkdir(dir); !m) return report("mkdir", dir, m.error());
        if (auto p = rt::xs_set_perms(dir, perms, 2); !p) return report("set-perms", dir, p.error());
        g_console_dir = console_backend;
    }
    base::snformat(path, sizeof path, "%s/%u", dir, id);
    base::snformat(value, sizeof value, "/local/domain/%u", id);
    auto w = rt::xs_write(path, value);
    return w ? true : report("write", path, w.error());
}

bool store_stamp_start(uint16_t id) {
    char path[48], value[24];
    base::snformat(path, sizeof path, "/local/domain/%u/moat/start-tsc", id);
    base::snformat(value, sizeof value, "%lu", rt::rdtsc());
    auto w = rt::xs_write(path, value);
    return w ? true : report("write", path, w.error());
}

bool store_device(uint16_t fe, uint16_t be, const char* type, unsigned devid, const StoreNode* fe_extra, size_t n_fe,
                  const StoreNode* be_extra, size_t n_be) {
    char fpath[96], bpath[96], path[160], value[96], tdir[48], bdir[48], bfe[64];
    base::snformat(fpath, sizeof fpath, "/local/domain/%u/device/%s/%u", fe, type, devid);
    base::snformat(bpath, sizeof bpath, "/local/domain/%u/backend/%s/%u/%u", be, type, fe, devid);
    base::snformat(tdir, sizeof tdir, "device/%s", type);
    base::snformat(bdir, sizeof bdir, "backend/%s", type);
    base::snformat(bfe, sizeof bfe, "backend/%s/%u", type, fe);
    rt::XsPerm fperm[] = {{fe, 'n'}, {be, 'r'}};
    rt::XsPerm bperm[] = {{be, 'n'}, {fe, 'r'}};
    // Each directory, created by us, belongs to the domain whose home it is
    // in; the two connection directories are readable by the other side
    // too. The nodes below inherit their directory's permissions.
    struct {
        const char* path;
        const rt::XsPerm* perms;
        size_t n;
    } dirs[] = {
        {"device", fperm, 1}, {tdir, fperm, 1}, {fpath, fperm, 2},
        {"backend", bperm, 1}, {bdir, bperm, 1}, {bfe, bperm, 1}, {bpath, bperm, 2},
    };
    for (auto& d : dirs) {
        if (d.path[0] == '/') base::snformat(path, sizeof path, "%s", d.path);
        else base::snformat(path, sizeof path, "/local/domain/%u/%s", d.perms == fperm ? fe : be, d.path);
        if (auto m = rt::xs_mkdir(path); !m) return report("mkdir", path, m.error());
        if (auto p = rt::xs_set_perms(path, d.perms, d.n); !p) return report("set-perms", path, p.error());
    }
    auto put = [&](const char* dir, const char* leaf, const char* v) {
        base::snformat(path, sizeof path, "%s/%s", dir, leaf);
        auto w = rt::xs_write(path, v);
        return w ? true : report("write", path, w.error());
    };
    // The back-end's side first, the front-end's state last: a back-end
    // (already running when a front-end is restarted) acts on the
    // front-end's Initialising, and by then nothing of ours is left to
    // overwrite what it answers (its InitWait).
    base::snformat(value, sizeof value, "%u", fe);
    if (!put(bpath, "frontend", fpath) || !put(bpath, "frontend-id", value)) return false;
    for (size_t k = 0; k < n_be; ++k)
        if (!put(bpath, be_extra[k].leaf, be_extra[k].value)) return false;
    if (!put(bpath, "state", "1")) return false;
    base::snformat(value, sizeof value, "%u", be);
    if (!put(fpath, "backend", bpath) || !put(fpath, "backend-id", value)) return false;
    for (size_t k = 0; k < n_fe; ++k)
        if (!put(fpath, fe_extra[k].leaf, fe_extra[k].value)) return false;
    return put(fpath, "state", "1");
}

bool store_ring(uint16_t fe, uint16_t be, unsigned devid) { return store_device(fe, be, "ring", devid, nullptr, 0, nullptr, 0); }

bool store_release(uint16_t dom, uint16_t console_backend) {
    char home[64];
    // Its console back-end hears first (the watch on its directory names
    // the domain), then its home goes, so whoever looks on @releaseDomain
    // finds it gone.
    if (console_backend != kNone && console_backend != dom && g_console_dir == console_backend) {
        base::snformat(home, sizeof home, "/local/domain/%u/backend/console/%u", console_backend, dom);
        auto rm = rt::xs_rm(home);
        if (!rm && rm.error() != rt::XsError::noent) report("rm", home, rm.error());
    }
    if (dom == g_console_dir) g_console_dir = kNone;   // its directory goes with its home
    base::snformat(home, sizeof home, "/local/domain/%u", dom);
    auto rm = rt::xs_rm(home);
    if (!rm && rm.error() != rt::XsError::noent) report("rm", home, rm.error());
    auto r = rt::xs_release(dom);
    if (!r) return report("release", home, r.error());
    return true;
}

bool store_control_node(uint16_t dom, uint16_t toolstack) {
    char dir[48], path[64];
    base::snformat(dir, sizeof dir, "/local/domain/%u/control", dom);
    base::snformat(path, sizeof path, "%s/shutdown", dir);
    // The directory is the domain's, like its home; the node too, with
    // write (not read) for the toolstack: it asks, it does not watch.
    rt::XsPerm own[] = {{dom, 'n'}};
    rt::XsPerm node[] = {{dom, 'n'}, {toolstack, 'w'}};
    if (auto m = rt::xs_mkdir(dir); !m) return report("mkdir", dir, m.error());
    if (auto p = rt::xs_set_perms(dir, own, 1); !p) return report("set-perms", dir, p.error());
    // An existing request (a restarted toolstack re-permits the node) is
    // left as it is.
    if (!store_exists(path))
        if (auto w = rt::xs_write(path, ""); !w) return report("write", path, w.error());
    if (auto p = rt::xs_set_perms(path, node, toolstack == dom ? 1 : 2); !p) return report("set-perms", path, p.error());
    return true;
}

namespace {
bool request_dir(const char* dir, uint16_t toolstack) {
    // Requests of a previous toolstack go: they were its, not this one's.
    auto rm = rt::xs_rm(dir);
    if (!rm && rm.error() != rt::XsError::noent) return report("rm", dir, rm.error());
    rt::XsPerm perms[] = {{g_self, 'n'}, {toolstack, 'w'}};
    if (auto m = rt::xs_mkdir(dir); !m) return report("mkdir", dir, m.error());
    if (auto p = rt::xs_set_perms(dir, perms, 2); !p) return report("set-perms", dir, p.error());
    return true;
}
}  // namespace

bool store_destroy_dir(uint16_t toolstack) { return request_dir(kDestroyDir, toolstack); }

bool store_console_input_dir(uint16_t toolstack, uint16_t console) {
    // Input of a previous toolstack (or for a previous console) goes with it.
    auto rm = rt::xs_rm(kConsoleInputDir);
    if (!rm && rm.error() != rt::XsError::noent) return report("rm", kConsoleInputDir, rm.error());
    // 'b' for the console: it reads each node and removes it (rm needs write
    // on the node, which inherits these entries with the toolstack as owner).
    rt::XsPerm perms[] = {{g_self, 'n'}, {toolstack, 'w'}, {console, 'b'}};
    if (auto m = rt::xs_mkdir(kConsoleInputDir); !m) return report("mkdir", kConsoleInputDir, m.error());
    if (auto p = rt::xs_set_perms(kConsoleInputDir, perms, 3); !p)
        return report("set-perms", kConsoleInputDir, p.error());
    return true;
}
bool store_create_dir(uint16_t toolstack) { return request_dir(kCreateDir, toolstack); }

bool store_console_request(uint16_t toolstack, uint16_t console) {
    // Written first (made with /moat's permissions, ours alone), then given
    // its own: the toolstack's watch fires on the permissions' change.
    if (auto w = rt::xs_write(kConsoleRequestNode, ""); !w) return report("write", kConsoleRequestNode, w.error());
    rt::XsPerm perms[] = {{g_self, 'n'}, {console, 'w'}, {toolstack, 'b'}};
    if (auto p = rt::xs_set_perms(kConsoleRequestNode, perms, 3); !p)
        return report("set-perms", kConsoleRequestNode, p.error());
    return true;
}

bool store_exists(const char* path) {
    char buf[8];
    auto r = rt::xs_read(path, buf, sizeof buf);
    return r || r.error() == rt::XsError::range;
}

bool store_write(const char* path, const char* value) {
    auto w = rt::xs_write(path, value);
    return w ? true : report("write", path, w.error());
}

bool store_allow_special_watches(uint16_t console_dom, const uint16_t* backends, size_t n_backends) {
    rt::XsPerm p[2 + 128];
    size_t n = 0;
    p[n++] = {g_self, 'n'};
    if (console_dom != 0xFFFF) p[n++] = {console_dom, 'r'};
    auto a = rt::xs_set_perms("@introduceDomain", p, n);
    if (!a) return report("set-perms", "@introduceDomain", a.error());
    // And list the domains (it reads only what each domain's nodes allow).
    if (auto m = rt::xs_mkdir("/local/domain"); !m) return report("mkdir", "/local/domain", m.error());
    auto c = rt::xs_set_perms("/local/domain", p, n);
    if (!c) return report("set-perms", "/local/domain", c.error());
    // Back-ends learn on @releaseDomain that a front-end is gone.
    for (size_t k = 0; k < n_backends && n < sizeof p / sizeof p[0]; ++k)
        if (backends[k] != console_dom) p[n++] = {backends[k], 'r'};
    auto b = rt::xs_set_perms("@releaseDomain", p, n);
    if (!b) return report("set-perms", "@releaseDomain", b.error());
    return true;
}

}  // namespace builder
