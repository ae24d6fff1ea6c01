// The builder: the first and only domain the kernel starts. It reads the
// system manifest (boot module 1) and builds every other domain it lists, in
// the order console, XenStore, driver domains, guests; gives each exactly the
// capabilities the manifest lists and its connections imply; sets up its
// console and XenStore rings; introduces it to XenStore; and unpauses it.
// Then it waits for domains to stop (VIRQ_DOM_EXC), releases them, and
// restarts them as their policy says. When every guest is down for good it
// stops the services and itself, which ends the system.

#include "create.hpp"
#include "pv.hpp"
#include "store.hpp"
#include "trace_cap.hpp"

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/moat.hpp>
#include <base/format.hpp>
#include <base/cmdline.hpp>
#include <manifest/index.hpp>
#include <manifest/manifest.hpp>
#include <rt/caps.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/gnttab.hpp>
#include <rt/hypercall.hpp>
#include <rt/pci.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/xenbus.hpp>

using namespace builder;

namespace {

constexpr uint64_t kBackendWaitNs = 10'000'000'000;   // guest time

manifest::System g_sys;
// Who holds what naming whom, and each domain's connections: built once
// from g_sys, so that sizing, building and restarting a domain walks its own
// lists only.
manifest::Index g_index;
// The module as it came: any payload the decoder takes fits.
alignas(4096) uint8_t g_manifest[manifest::kHeaderBytes + manifest::kMaxPayload];

struct State {
    bool live = false;        // built and not yet destroyed
    bool down_for_good = false;
    unsigned restarts = 0;
    uint64_t boot_tsc = 0;    // when its restart began (domain_boot_insns)
    uint32_t next_slot = 0;   // next free slot of its CSpace we fill
    PvDomain dom;
};
State g_state[manifest::kMaxDomains];
int g_builder = -1, g_console = -1, g_store = -1, g_toolstack = -1;
unsigned g_guests_left;   // guests not down for good
uint32_t g_dom_exc_port = 0;
uint16_t g_self = 0;   // our domain id

// At boot the kernel gave us a Domain capability for every domain running
// then: ourselves alone.
uint16_t find_self() {
    long slot = rt::cap_find_if(abi::CapType::domain, [](const abi::MoatCap&) { return true; });
    return slot < 0 ? 0 : uint16_t(rt::cap_inspect(uint32_t(slot)).object);
}

// Reads boot module `index` into buf; its size, or a negative errno.
long read_module(uint32_t index, uint8_t* buf, size_t cap, char* name, size_t name_len) {
    long size = module_size(index, name, name_len);
    if (size < 0) return size;
    if (uint64_t(size) > cap) return abi::neg(abi::Errno::e2big);
    long r = module_read(index, 0, buf, uint64_t(size));
    return r ? r : size;
}

uint16_t domid_of(int i) {
    if (i == g_builder) return g_self;
    return g_state[i].live ? g_state[i].dom.id : kNoDomain;
}

// Our slot holding the root Grant / Event capability for domain index p.
long grant_slot(int p) {
    if (p == g_builder) return rt::cap_find(abi::CapType::grant, g_self);
    return g_state[p].live ? long(g_state[p].dom.slot_grant) : -1;
}
long event_slot(int p) {
    if (p == g_builder) return rt::cap_find(abi::CapType::event, g_self);
    return g_state[p].live ? long(g_state[p].dom.slot_event) : -1;
}

uint32_t grant_rights(uint8_t m) {
    return ((m & manifest::kGrantMapRo) ? abi::kCapRightMapRo : 0) | ((m & manifest::kGrantMapRw) ? abi::kCapRightMapRw : 0) |
           ((m & manifest::kGrantCopy) ? abi::kCapRightCopy : 0);
}

// Where a link's holder keeps the capabilities it names its peer with (0:
// none yet; slot+1 otherwise), by the link's position in g_index: a peer
// that restarts gets the same slots back (destroying its previous self
// emptied them), so restarts never use up a CSpace.
struct LinkSlots {
    uint16_t grant, event;
};
LinkSlots g_link_slots[manifest::Index::kMaxLinks];

bool install(int h, long src, uint32_t mask, const char* what, int p, uint16_t* at = nullptr) {
    State& s = g_state[h];
    uint32_t slot = at && *at ? *at - 1u : s.next_slot;
    long r = src < 0 ? -1 : rt::cap_install(s.dom.id, uint32_t(src), slot, mask);
    if (r != 0) {
        rt::printf("%s: cannot install %s(%s) in slot %u: %ld\n", g_sys.domains[h].name, what,
                   p >= 0 ? g_sys.domains[p].name : "-", slot, r);
        return false;
    }
    // Past every slot filled: one given again at its old number (a
    // restarted peer's) must not be handed out once more.
    if (slot >= s.next_slot) s.next_slot = slot + 1;
    if (at) *at = uint16_t(slot + 1);
    return true;
}

// Gives the link's holder its capabilities naming the link's peer.
bool install_link(const manifest::Link& l) {
    LinkSlots& at = g_link_slots[g_index.position(l)];
    bool ok = true;
    if (l.grant) ok &= install(l.holder, grant_slot(l.peer), grant_rights(l.grant), "Grant", l.peer, &at.grant);
    if (l.bind) ok &= install(l.holder, event_slot(l.peer), abi::kCapRightBind, "Event", l.peer, &at.event);
    return ok;
}

// The toolstack's Domain capabilities, by position in its `controls`: slot
// + 1 (0: none yet). A controlled domain that restarts gets the same slot
// back (destroying its previous self emptied it), as links do.
uint16_t g_control_slots[manifest::kMaxControls];

// Gives the toolstack a Domain capability with the control right (pause,
// unpause, getinfo; not build, not install) for the k-th domain it
// controls, if that one exists now.
bool install_control(unsigned k) {
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    int p = t.controls[k];
    if (!g_state[p].live) return true;   // down: given when it is built again
    return install(g_toolstack, long(g_state[p].dom.slot_domain), abi::kCapRightControl, "Domain", p,
                   &g_control_slots[k]);
}

// Each domain's position in the toolstack's `controls` + 1 (0: not
// controlled), filled once from the manifest: a start or restart looks up
// its own entry, not the whole list.
uint16_t g_controlled_at[manifest::kMaxDomains];

void index_controls() {
    if (g_toolstack < 0) return;
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    for (unsigned k = 0; k < t.n_controls; ++k) g_controlled_at[t.controls[k]] = uint16_t(k + 1);
}

// Whether the toolstack controls domain i: its position in `controls`, or -1.
int control_index(int i) { return g_toolstack < 0 ? -1 : int(g_controlled_at[i]) - 1; }

// The CSpace domain i needs: every capability it will hold, and a few more.
uint32_t cspace_size(int i) {
    const manifest::Domain& m = g_sys.domains[i];
    // The toolstack's Domain capabilities: one per controlled domain and
    // per guest it may create.
    uint32_t n = m.n_ioports + m.n_irqs + m.n_mmio + 8 * m.n_pci + (m.debug_console ? 1 : 0) + m.n_controls +
                 m.create_domains + 4;
    // A back-end of created guests: a Grant and an Event capability for each.
    if (g_toolstack >= 0)
        for (unsigned k = 0; k < g_sys.domains[g_toolstack].n_create_backends; ++k)
            if (int(g_sys.domains[g_toolstack].create_backends[k]) == i) n += 2 * g_sys.domains[g_toolstack].create_domains;
    unsigned nl;
    const manifest::Link* links = g_index.links_of(unsigned(i), &nl);
    for (unsigned k = 0; k < nl; ++k) n += (links[k].grant ? 1 : 0) + (links[k].bind ? 1 : 0);
    // The kernel's most: installs beyond it fail, said plainly.
    return n < 16 ? 16 : n > abi::kMaxCspaceSlots ? abi::kMaxCspaceSlots : n;
}

// Which domain (index) each interrupt line went to: the kernel lets one
// domain bind a line, and PCI functions on different slots may share one.
int16_t g_line_owner[24] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                            -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

// Gives domain h the Irq capability for `line`, unless another domain has it.
bool give_line(int h, unsigned line, const char* why) {
    if (line >= 24) return false;
    if (g_line_owner[line] >= 0 && g_line_owner[line] != h) {
        rt::printf("%s: interrupt line %u (%s) is %s's already: not given (functions sharing a line cannot go to "
                   "two domains)\n",
                   g_sys.domains[h].name, line, why, g_sys.domains[g_line_owner[line]].name);
        return false;
    }
    long src = rt::cap_find(abi::CapType::irq, line);
    if (src < 0) rt::printf("%s: no Irq capability for line %u to give\n", g_sys.domains[h].name, line);
    if (src < 0 || !install(h, src, abi::kCapRightUse, "Irq", -1)) return false;
    g_line_owner[line] = int16_t(h);
    return true;
}

// Whether the kernel confines devices' DMA (its IOMMU is on): asked once, as
// the kernel turns DMA remapping on before any domain runs and never off.
bool dma_confined() {
    static int confined = -1;
    if (confined < 0) {
        PhysInfo p = domctl_physinfo();
        confined = p.ok && p.dma_confined;
    }
    return confined == 1;
}

// A driver domain started on a machine without an IOMMU: nothing stops its
// device from reading or writing any frame. Said loudly, once per start.
void warn_unconfined(const manifest::Domain& d) {
    if (d.n_pci == 0 || dma_confined()) return;
    char more[48] = "";
    if (d.n_pci > 1) base::snformat(more, sizeof more, " and %u more PCI functions", d.n_pci - 1);
    rt::printf("WARNING: %s drives %02x:%02x.%u%s without an IOMMU: its device%s can DMA anywhere in memory\n", d.name,
               d.pci[0].bus, d.pci[0].device, d.pci[0].function, more, d.n_pci > 1 ? "s" : "");
}

bool install_devices(int h) {
    const manifest::Domain& hd = g_sys.domains[h];
    bool ok = true;
    for (unsigned k = 0; k < hd.n_ioports; ++k) {
        const manifest::Range& want = hd.ioports[k];
        long src = rt::cap_find_if(abi::CapType::io_ports, [&](const abi::MoatCap& c) {
            return c.object == want.first && c.object2 == want.count;
        });
        if (src < 0) rt::printf("%s: no IoPorts capability for ports %#lx+%lu to give\n", hd.name,
                                hd.ioports[k].first, hd.ioports[k].count);
        ok &= src >= 0 && install(h, src, abi::kCapRightUse, "IoPorts", -1);
    }
    if (hd.debug_console) ok &= install(h, rt::cap_find(abi::CapType::debug_console, 0), abi::kCapRightUse, "DebugConsole", -1);
    for (unsigned k = 0; k < hd.n_irqs; ++k) ok &= give_line(h, hd.irqs[k], "in its irqs");
    // A PCI function comes with its BARs: the I/O ranges and device memory
    // the kernel found it decoding.
    for (unsigned k = 0; k < hd.n_pci; ++k) {
        uint32_t bdf = uint32_t(hd.pci[k].bus) << 8 | uint32_t(hd.pci[k].device) << 3 | hd.pci[k].function;
        long src = rt::cap_find(abi::CapType::pci_device, bdf);
        abi::MoatPciInfo info{};
        if (src < 0 || rt::pci_info(bdf, &info) != 0) {
            rt::printf("%s: no PCI function %02x:%02x.%u to give\n", hd.name, hd.pci[k].bus, hd.pci[k].device,
                       hd.pci[k].function);
            ok = false;
            continue;
        }
        ok &= install(h, src, abi::kCapRightUse, "PciDevice", -1);
        // Its interrupt line, unless the manifest lists it (given above).
        bool listed = false;
        for (unsigned q = 0; q < hd.n_irqs; ++q) listed |= hd.irqs[q] == info.irq_line;
        if (info.irq_line != 0xFF && !listed) (void)give_line(h, info.irq_line, "its PCI function's");
        for (const auto& bar : info.bars) {
            if (!bar.size) continue;
            long b = rt::cap_find(bar.is_io ? abi::CapType::io_ports : abi::CapType::mmio, bar.base);
            ok &= b >= 0 && install(h, b, abi::kCapRightUse, bar.is_io ? "IoPorts" : "Mmio", -1);
        }
    }
    for (unsigned k = 0; k < hd.n_mmio; ++k) {
        long src = rt::cap_find(abi::CapType::mmio, hd.mmio[k].first);
        if (src < 0) rt::printf("%s: no Mmio capability for %#lx to give\n", hd.name, hd.mmio[k].first);
        ok &= src >= 0 && install(h, src, abi::kCapRightUse, "Mmio", -1);
    }
    warn_unconfined(hd);
    return ok;
}

uint16_t backend_of(int i, manifest::ConnKind kind) {
    unsigned n;
    const uint16_t* cs = g_index.connections_of(unsigned(i), &n);
    for (unsigned k = 0; k < n; ++k) {
        const manifest::Connection& c = g_sys.connections[cs[k]];
        if (c.frontend == i && c.kind == kind) return domid_of(c.backend);
    }
    return kNoDomain;
}

// A command line and what we put before it (the store's master, the
// toolstack's create quota with up to kMaxPerDomain back-ends' names).
char g_cmdline[manifest::kCmdlineLen + 64 + manifest::kMaxPerDomain * (manifest::kNameLen + 1)];

PvSpec spec_of(int i) {
    const manifest::Domain& m = g_sys.domains[i];
    PvSpec s{};
    s.name = m.name;
    s.nr_pages = m.memory_kib / 4;
    s.weight = m.weight;
    s.cpu_cap = m.cpu_cap;
    s.cspace_slots = cspace_size(i);
    s.cmdline = m.cmdline;
    s.console_backend = kNoDomain;
    s.store_backend = kNoDomain;
    return s;
}

const char* role_name(manifest::Role r) {
    switch (r) {
    case manifest::Role::builder: return "builder";
    case manifest::Role::xenstore: return "xenstore";
    case manifest::Role::console: return "console";
    case manifest::Role::netback: return "netback";
    case manifest::Role::blkback: return "blkback";
    case manifest::Role::guest: return "guest";
    case manifest::Role::toolstack: return "toolstack";
    default: return "?";
    }
}

// Creates domain i (paused, empty). Its id is known from here on.
bool create(int i) {
    char err[160];
    PvSpec s = spec_of(i);
    if (!pv_create(s, g_state[i].dom, err, sizeof err)) {
        rt::printf("%s: %s\n", g_sys.domains[i].name, err);
        return false;
    }
    g_state[i].live = true;
    g_state[i].next_slot = 0;
    return true;
}

void destroy(int i) {
    if (!g_state[i].live) return;
    domctl_simple(uint32_t(abi::DomctlCmd::destroy), g_state[i].dom.id);
    g_state[i].live = false;
}

// Fills domain i (created) and gives it its capabilities; leaves it paused.
bool build(int i, long store_port_for_master) {
    const manifest::Domain& m = g_sys.domains[i];
    char name[32], err[160];
    long size = module_size(m.module, name, sizeof name);
    if (size < 0) {
        rt::printf("%s: cannot read its image (boot module %u): %ld\n", m.name, m.module, size);
        return false;
    }
    PvSpec s = spec_of(i);
    s.image_module = m.module;
    s.ramdisk_module = m.ramdisk_module;
    s.console_backend = backend_of(i, manifest::ConnKind::console);
    s.store_backend = backend_of(i, manifest::ConnKind::xenstore);
    if (m.role == manifest::Role::xenstore) {
        base::snformat(g_cmdline, sizeof g_cmdline, "master=%u master-port=%ld%s%s", g_self,
                       store_port_for_master, m.cmdline[0] ? " " : "", m.cmdline);
        s.cmdline = g_cmdline;
    }
    // The toolstack learns its create quota from us, for clean early
    // refusals (we check every create against it again ourselves):
    // create-quota=DOMAINS,KIB[,BACKEND...].
    if (m.role == manifest::Role::toolstack && m.create_domains) {
        size_t at = base::snformat(g_cmdline, sizeof g_cmdline, "create-quota=%u,%lu", m.create_domains,
                                   m.create_memory_kib);
        for (unsigned k = 0; k < m.n_create_backends && at < sizeof g_cmdline; ++k)
            at += base::snformat(g_cmdline + at, sizeof g_cmdline - at, ",%s", g_sys.domains[m.create_backends[k]].name);
        if (at < sizeof g_cmdline) base::snformat(g_cmdline + at, sizeof g_cmdline - at, "%s%s", m.cmdline[0] ? " " : "", m.cmdline);
        s.cmdline = g_cmdline;
    }
    if (!pv_build(s, g_state[i].dom, err, sizeof err)) {
        rt::printf("%s: %s\n", m.name, err);
        return false;
    }
    bool ok = install_devices(i);
    unsigned nl;
    const manifest::Link* links = g_index.links_of(unsigned(i), &nl);
    for (unsigned k = 0; k < nl; ++k)
        if (links[k].peer == g_builder || g_state[links[k].peer].live) ok &= install_link(links[k]);
    for (unsigned k = 0; k < m.n_controls; ++k) ok &= install_control(k);
    if (m.role == manifest::Role::toolstack) ok &= builder::give_trace_capability(g_state[i].dom.id, s.cspace_slots, m.name);
    if (!ok) return false;
    rt::printf("built %s (%s) as domain %u: %lu KiB, image %s (%ld bytes)\n", m.name, role_name(m.role),
               g_state[i].dom.id, m.memory_kib, name, size);
    return true;
}

// Sleeps about `ns` of guest time, or less if a domain stops meanwhile.
void nap(uint64_t ns) {
    uint32_t port = g_dom_exc_port;
    abi::SchedPoll p{rt::ptr(&port), port ? 1u : 0u, rt::now_ns() + ns};
    rt::hypercall(abi::Hypercall::sched_op, uint64_t(abi::SchedOp::poll), rt::ptr(&p));
}

// Waits (bounded) until the back-ends map domain i's console and store
// rings, so that nothing it writes before they look is lost.
void wait_for_backends(int i) {
    const State& st = g_state[i];
    unsigned want = 0;
    if (st.dom.console_port && g_console >= 0 && g_state[g_console].live) ++want;
    if (st.dom.store_port && g_store >= 0 && g_state[g_store].live && store_ready()) ++want;
    uint64_t deadline = rt::now_ns() + kBackendWaitNs;
    while (domctl_info(st.dom.id).mapped_grants < want) {
        if (rt::now_ns() > deadline) {
            rt::printf("%s: its back-ends did not map its rings within %lu ms; starting it anyway\n",
                       g_sys.domains[i].name, kBackendWaitNs / 1000000);
            return;
        }
        nap(1000000);
    }
}

// Hands domain i to XenStore (when there is one) and starts it.
bool start(int i) {
    const manifest::Domain& m = g_sys.domains[i];
    State& st = g_state[i];
    if (store_ready() && i != g_store) {
        StoreDomain sd{st.dom.id, m.name, st.dom.console_mfn, st.dom.console_port,
                       g_console >= 0 ? domid_of(g_console) : kNoDomain, st.dom.store_mfn, st.dom.store_port,
                       st.boot_tsc};
        if (!store_introduce(sd)) return false;
        // Before it runs: the toolstack may ask it to stop from its first
        // instruction on.
        if (control_index(i) >= 0 && g_state[g_toolstack].live)
            (void)store_control_node(st.dom.id, domid_of(g_toolstack));
        wait_for_backends(i);
        (void)store_stamp_start(st.dom.id);
    }
    long r = domctl_simple(uint32_t(abi::DomctlCmd::unpause), st.dom.id);
    if (r != 0) {
        rt::printf("%s: unpause failed: %ld\n", m.name, r);
        return false;
    }
    return true;
}

// The n-th (from 0) connection of its kind that connection k's front-end has.
unsigned index_of_kind(unsigned k) {
    const manifest::Connection& c = g_sys.connections[k];
    unsigned n = 0, nc;
    const uint16_t* cs = g_index.connections_of(c.frontend, &nc);   // in manifest order
    for (unsigned j = 0; j < nc && cs[j] < k; ++j)
        n += g_sys.connections[cs[j]].frontend == c.frontend && g_sys.connections[cs[j]].kind == c.kind;
    return n;
}

// A vif's nodes: its handle and mac (the manifest's, or 00:16:3e:00:HH:LL
// from the front-end's position in the manifest and the vif's number).
bool write_vif(const manifest::Connection& c, unsigned n) {
    char handle[8], mac[20];
    base::snformat(handle, sizeof handle, "%u", n);
    uint8_t m[6] = {0x00, 0x16, 0x3e, 0x00, uint8_t(c.frontend), uint8_t(n)};
    if (c.has_mac) __builtin_memcpy(m, c.mac, 6);
    base::snformat(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    StoreNode fe[] = {{"handle", handle}, {"mac", mac}};
    StoreNode be[] = {{"handle", handle}, {"mac", mac}, {"online", "1"}};
    return store_device(domid_of(c.frontend), domid_of(c.backend), "vif", n, fe, 2, be, 3);
}

// A vbd's nodes: Xen's virtual-device number (xvda, xvdb, ...: 202 << 8 |
// 16 * n) and, for the back-end only, which of its sectors the disk is and
// whether the front-end may write.
bool write_vbd(const manifest::Connection& c, unsigned n) {
    unsigned devid = (202u << 8) + 16 * n;
    char dev[12], first[24], count[24];
    base::snformat(dev, sizeof dev, "%u", devid);
    base::snformat(first, sizeof first, "%lu", c.first_sector);
    base::snformat(count, sizeof count, "%lu", c.sectors);
    StoreNode fe[] = {{"virtual-device", dev}, {"device-type", "disk"}};
    StoreNode be[] = {{"virtual-device", dev}, {"device-type", "disk"}, {"mode", c.read_only ? "r" : "w"},
                      {"online", "1"}, {"moat-first-sector", first}, {"moat-sectors", count}};
    return store_device(domid_of(c.frontend), domid_of(c.backend), "vbd", devid, fe, 2, be, 6);
}

// The xenbus nodes of every RING, VIF and VBD connection (those of domain
// `only`, or all).
void write_rings(int only) {
    if (!store_ready()) return;
    unsigned n = g_sys.n_connections;
    const uint16_t* cs = only >= 0 ? g_index.connections_of(unsigned(only), &n) : nullptr;
    for (unsigned x = 0; x < n; ++x) {
        unsigned k = cs ? cs[x] : x;
        const manifest::Connection& c = g_sys.connections[k];
        if (domid_of(c.frontend) == kNoDomain || domid_of(c.backend) == kNoDomain) continue;
        switch (c.kind) {
        case manifest::ConnKind::ring: store_ring(domid_of(c.frontend), domid_of(c.backend), k); break;
        case manifest::ConnKind::vif: write_vif(c, index_of_kind(k)); break;
        case manifest::ConnKind::vbd: write_vbd(c, index_of_kind(k)); break;
        default: break;
        }
    }
}

// Who may watch the special nodes: the console, and every back-end of a
// RING, VIF or VBD connection (@releaseDomain). Again after a restart: the
// domain ids change.
// A NETBACK or BLKBACK domain the toolstack's create quota names serves
// created guests' devices: it watches @releaseDomain too, even with no
// manifest device.
// Whether the toolstack's create quota names domain i as a back-end.
bool in_create_quota(int i) {
    if (g_toolstack < 0 || i < 0) return false;
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    for (unsigned k = 0; k < t.n_create_backends; ++k)
        if (int(t.create_backends[k]) == i) return true;
    return false;
}

bool serves_created_devices(int i) {
    const manifest::Role r = g_sys.domains[i].role;
    return (r == manifest::Role::netback || r == manifest::Role::blkback) && in_create_quota(i);
}

void allow_special_watches() {
    static uint16_t backends[manifest::kMaxDomains];
    size_t n = 0;
    for (int i = 0; i < int(g_sys.n_domains); ++i)
        if ((g_index.is_device_backend(unsigned(i)) || serves_created_devices(i)) && domid_of(i) != kNoDomain)
            backends[n++] = domid_of(i);
    store_allow_special_watches(g_console >= 0 ? domid_of(g_console) : kNoDomain, backends, n);
}

void console_input_dir();
void forget_toolstack_slots();
void give_created_to_toolstack();

// Builds and starts i again after it stopped; peers get their capabilities
// naming it back (destroying it revoked them).
bool restart(int i) {
    g_state[i].boot_tsc = rt::rdtsc();
    // A new toolstack has an empty CSpace: the slots its previous self held
    // its Domain capabilities in mean nothing there.
    if (i == g_toolstack) forget_toolstack_slots();
    if (!create(i)) return false;
    if (!build(i, -1)) {
        destroy(i);
        return false;
    }
    // Its peers (back-ends above all) get their capabilities naming it back:
    // destroying its previous self revoked them. A peer that is stopped
    // itself takes none (the kernel refuses); it gets them when it is built
    // again.
    unsigned nn;
    const uint32_t* naming = g_index.naming(unsigned(i), &nn);
    for (unsigned k = 0; k < nn; ++k) {
        const manifest::Link& l = g_index.at(naming[k]);
        if (l.holder != g_builder && g_state[l.holder].live &&
            domctl_info(g_state[l.holder].dom.id).state == abi::kDomainStateRunning)
            install_link(l);
    }
    // A controlled domain restarted: the toolstack gets its Domain capability
    // back (unless the toolstack itself is stopped: it takes it when rebuilt).
    if (int k = control_index(i); k >= 0 && g_state[g_toolstack].live &&
                                  domctl_info(g_state[g_toolstack].dom.id).state == abi::kDomainStateRunning)
        (void)install_control(unsigned(k));
    // The toolstack restarted under a new id: the control/shutdown nodes of
    // the domains it controls name it instead of its previous self.
    if (i == g_toolstack && store_ready()) {
        const manifest::Domain& t = g_sys.domains[i];
        for (unsigned k = 0; k < t.n_controls; ++k)
            if (g_state[t.controls[k]].live && t.controls[k] != g_store)
                (void)store_control_node(g_state[t.controls[k]].dom.id, g_state[i].dom.id);
        // And `moat destroy`'s directory is the new one's to write in.
        if (t.n_controls || t.create_domains) (void)store_destroy_dir(g_state[i].dom.id);
        if (t.create_domains) (void)store_create_dir(g_state[i].dom.id);
    }
    // The guests its previous self created live on: it gets their Domain
    // capabilities (and their control/shutdown nodes) back, so that it can
    // list, pause and destroy them as before.
    if (i == g_toolstack) give_created_to_toolstack();
    // `moat console`'s input directory and Ctrl-] q's node name the toolstack
    // and the console service by id: made again for a new one of either.
    if ((i == g_toolstack || i == g_console) && store_ready()) console_input_dir();
    write_rings(i);
    if (store_ready() && (i == g_console || g_sys.domains[i].role == manifest::Role::netback ||
                          g_sys.domains[i].role == manifest::Role::blkback))
        allow_special_watches();
    if (!start(i)) {
        destroy(i);
        return false;
    }
    // A console domain restarted finds the domains it serves named in its
    // directory again (its home, and the directory with it, went at its
    // release). Once per restart of the console, for every domain.
    if (i == g_console && store_ready())
        for (int h = 0; h < int(g_sys.n_domains); ++h)
            if (h != i && g_state[h].live && g_state[h].dom.console_port)
                (void)store_console_node(g_state[i].dom.id, g_state[h].dom.id);
    return true;
}

bool is_guest(int i) { return g_sys.domains[i].role == manifest::Role::guest; }

void down_for_good(int i) {
    if (g_state[i].down_for_good) return;
    g_state[i].down_for_good = true;
    if (is_guest(i)) --g_guests_left;
}

const char* reason_name(uint32_t r) {
    switch (r) {
    case 0: return "powered off";
    case 1: return "rebooted";
    case 2: return "suspended";
    case 3: return "crashed";
    case 4: return "watchdog";
    default: return "stopped";
    }
}

// Takes domain i apart: released from XenStore, its back-ends let go of its
// pages, destroyed (every frame back to the kernel).
void take_down(int i) {
    State& st = g_state[i];
    if (store_ready() && i != g_store)
        store_release(st.dom.id, st.dom.console_port && g_console >= 0 ? domid_of(g_console) : kNoDomain);
    // The back-ends drain and unmap its rings on @releaseDomain: give them a
    // bounded while (yields, not time: no test depends on speed).
    for (unsigned k = 0; k < 20000 && domctl_info(st.dom.id).mapped_grants; ++k) rt::sched_op(abi::SchedOp::yield);
    destroy(i);
}

// A stopped domain: release it from XenStore, let back-ends unmap its pages,
// destroy it, restart it if its policy says so.
void reap(int i) {
    const manifest::Domain& m = g_sys.domains[i];
    State& st = g_state[i];
    DomInfo info = domctl_info(st.dom.id);
    rt::printf("%s (domain %u) %s\n", m.name, st.dom.id, reason_name(info.shutdown_reason));
    take_down(i);
    bool crashed = info.shutdown_reason == 3 || info.shutdown_reason == 4;
    bool want = m.restart == manifest::RestartPolicy::always ||
                (m.restart == manifest::RestartPolicy::on_crash && crashed);
    if (want && (m.max_restarts == 0 || st.restarts < m.max_restarts)) {
        ++st.restarts;
        rt::printf("restarting %s (restart %u%s%u)\n", m.name, st.restarts,
                   m.max_restarts ? " of " : "", m.max_restarts);
        if (restart(i)) return;
    } else if (want) {
        rt::printf("%s reached its restart limit (%u): left down\n", m.name, m.max_restarts);
    }
    down_for_good(i);
}

// ---- `moat create` (docs/control.md): guests the toolstack adds live ----
//
// A created guest is not in the manifest: it has its own table here, at
// most the toolstack's quota of them at once (manifest::kMaxCreated), each
// with a console, a XenStore, a VIF and a VBD connection at most, to
// back-ends the quota names (its disk within the quota's sectors). It is a
// guest like the manifest's (counted in g_guests_left, so the system lives
// while it runs), never restarted: when it stops or is destroyed it is
// taken apart and its entry is free again (its name too).
struct Created {
    bool live = false;
    char name[manifest::kNameLen + 1] = {};
    uint64_t memory_kib = 0;
    int console = -1;            // its back-ends (indices), -1: none
    int net = -1;                // its vif's back-end (a NETBACK), -1: none
    int blk = -1;                // its vbd's back-end (a BLKBACK), -1: none
    uint64_t disk_first = 0, disk_end = 0;   // its disk's sectors there, [first, end)
    bool disk_read_only = false;
    uint16_t control_slot = 0;   // the toolstack's slot for it + 1 (0: none yet)
    // Its back-ends' slots for their Grant and Event capabilities naming it
    // (+ 1; 0: none yet), console, store, net then blk: an entry used again
    // reuses them (destroying its previous guest emptied them), so a
    // back-end uses at most 2 slots per entry of the quota (cspace_size).
    uint16_t be_grant[4] = {}, be_event[4] = {};
    char cmdline[kCreateCmdlineLen + 1] = {};
    PvDomain dom;
};
Created g_created[manifest::kMaxCreated];
bool g_create_timed = false;   // domain_create_live_insns: the first create's only
// The staging area's frame list, copied out of the toolstack's frames.
uint64_t g_create_list[kCreateStagePages];
// The image is copied into g_manifest: the module is decoded into g_sys
// once at boot and never read again (the domains' strings live in g_sys's
// pools), so its 4 MiB serve each create's one copy of the image.
static_assert(sizeof g_manifest >= kCreateStageBytes);

int created_named(const char* name) {
    for (unsigned k = 0; k < manifest::kMaxCreated; ++k)
        if (g_created[k].live && __builtin_strcmp(g_created[k].name, name) == 0) return int(k);
    return -1;
}

// Takes a created guest apart as a stopped manifest domain is (released
// from XenStore, its back-ends let go of its rings, destroyed: every frame
// back); its entry and name are free again.
void take_down_created(int k) {
    Created& c = g_created[k];
    if (!c.live) return;
    if (store_ready())
        store_release(c.dom.id, c.dom.console_port && c.console >= 0 ? domid_of(c.console) : kNoDomain);
    for (unsigned n = 0; n < 20000 && domctl_info(c.dom.id).mapped_grants; ++n) rt::sched_op(abi::SchedOp::yield);
    // Its vif's and vbd's back-end directories go too: netback and blkback
    // let go of them at @releaseDomain, and its id, used again by a later
    // domain, must not find a device waiting there that the builder never
    // wrote for it.
    const struct {
        int backend;
        const char* kind;
    } devices[] = {{c.net, "vif"}, {c.blk, "vbd"}};
    for (const auto& dev : devices) {
        if (dev.backend < 0 || !store_ready() || domid_of(dev.backend) == kNoDomain) continue;
        char dir[64];
        base::snformat(dir, sizeof dir, "/local/domain/%u/backend/%s/%u", domid_of(dev.backend), dev.kind, c.dom.id);
        (void)rt::xs_rm(dir);
    }
    domctl_simple(uint32_t(abi::DomctlCmd::destroy), c.dom.id);
    c.live = false;
    --g_guests_left;
}

// The toolstack is being built again: its Domain capabilities' slots
// (controlled and created domains') are chosen afresh.
void forget_toolstack_slots() {
    for (auto& slot : g_control_slots) slot = 0;
    for (Created& c : g_created) c.control_slot = 0;
}

// ... and each live created guest's capability is given back.
void give_created_to_toolstack() {
    const uint16_t ts = g_state[g_toolstack].dom.id;
    for (Created& c : g_created) {
        if (!c.live) continue;
        if (!install(g_toolstack, long(c.dom.slot_domain), abi::kCapRightControl, "Domain", -1, &c.control_slot))
            rt::printf("%s: the restarted toolstack cannot get its Domain capability back\n", c.name);
        if (store_ready()) (void)store_control_node(c.dom.id, ts);
    }
}

// The back-end `name` of a create request ("" none) for connections of
// `role`: its index, or -1 with the refusal in outcome.
bool create_backend(const char* name, manifest::Role role, int* out, char* outcome, size_t cap) {
    *out = -1;
    if (!*name) return true;
    int i = g_sys.find(name);
    if (!in_create_quota(i)) {
        base::snformat(outcome, cap, "refused: back-end \"%s\" is not in the toolstack's create quota", name);
        return false;
    }
    if (g_sys.domains[i].role != role) {
        base::snformat(outcome, cap, "refused: back-end \"%s\" is no %s domain", name,
                       role == manifest::Role::console   ? "CONSOLE"
                       : role == manifest::Role::netback ? "NETBACK"
                       : role == manifest::Role::blkback ? "BLKBACK"
                                                         : "XENSTORE");
        return false;
    }
    if (!g_state[i].live) {
        base::snformat(outcome, cap, "failed: back-end \"%s\" is not running", name);
        return false;
    }
    *out = i;
    return true;
}

// Whether a created guest may have the disk `q` asks for on BLKBACK
// domain `blk`: within the sectors the quota sets aside there, and apart
// from every live created guest's disk on it unless both are read-only
// (the manifest's rule for its own VBDs; the quota's sectors overlap none
// of those: manifest::decode). Else false with the refusal in outcome.
bool create_disk_allowed(const CreateRequest& q, int blk, char* outcome, size_t cap) {
    const uint64_t first = q.disk_first, end = q.disk_first + q.disk_sectors;   // parse_create: no overflow
    const uint64_t a_first = g_sys.create_disk_first, a_end = g_sys.create_disk_first + g_sys.create_disk_sectors;
    if (!g_sys.has_create_disks || int(g_sys.create_disk_backend) != blk) {
        base::snformat(outcome, cap, "refused: the create quota sets no sectors aside for disks on \"%s\"",
                       g_sys.domains[blk].name);
        return false;
    }
    if (first < a_first || end > a_end) {
        base::snformat(outcome, cap, "refused: sectors %lu+%lu of \"%s\" are not within the create quota's %lu+%lu",
                       first, q.disk_sectors, g_sys.domains[blk].name, a_first, a_end - a_first);
        return false;
    }
    for (const Created& o : g_created) {
        if (!o.live || o.blk != blk || (o.disk_read_only && q.disk_read_only)) continue;
        if (first < o.disk_end && o.disk_first < end) {
            base::snformat(outcome, cap, "refused: sectors %lu+%lu of \"%s\" overlap the disk of \"%s\" (%lu+%lu), and one of them is writable",
                           first, q.disk_sectors, g_sys.domains[blk].name, o.name, o.disk_first,
                           o.disk_end - o.disk_first);
            return false;
        }
    }
    return true;
}

// Serves one create request of the toolstack's (its node's value, read
// once): every field checked against the manifest's quota here, whatever
// the toolstack checked; the image copied out of its frames once and
// checked on the copy; the guest built, given to XenStore and its
// back-ends, its Domain capability (control right) given to the toolstack,
// started. The outcome: "done <domid>", "refused: why", "failed: why".
void create_for_toolstack(const char* name, const char* value, char* outcome, size_t cap) {
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    if (!t.create_domains) {
        base::snformat(outcome, cap, "refused: the manifest gives the toolstack no create quota");
        return;
    }
    static CreateRequest q;
    char why[120];
    if (!parse_create(name, value, q, why, sizeof why)) {
        base::snformat(outcome, cap, "refused: %s", why);
        return;
    }
    if (g_sys.find(q.name) >= 0 || created_named(q.name) >= 0 || __builtin_strcmp(q.name, "builder") == 0) {
        base::snformat(outcome, cap, "refused: a domain called \"%s\" exists already", q.name);
        return;
    }
    unsigned n = 0;
    uint64_t kib = 0;
    int slot = -1;
    for (unsigned k = 0; k < manifest::kMaxCreated; ++k) {
        if (g_created[k].live) ++n, kib += g_created[k].memory_kib;
        else if (slot < 0) slot = int(k);
    }
    if (n >= t.create_domains || slot < 0) {
        base::snformat(outcome, cap, "refused: %u created domains exist, the quota's most", n);
        return;
    }
    if (q.memory_kib > t.create_memory_kib - kib) {
        base::snformat(outcome, cap, "refused: %lu KiB asked, %lu KiB left of the create quota's %lu KiB", q.memory_kib,
                       t.create_memory_kib - kib, t.create_memory_kib);
        return;
    }
    int console = -1, store = -1, net = -1, blk = -1;
    if (!create_backend(q.console, manifest::Role::console, &console, outcome, cap) ||
        !create_backend(q.xenstore, manifest::Role::xenstore, &store, outcome, cap) ||
        !create_backend(q.net, manifest::Role::netback, &net, outcome, cap) ||
        !create_backend(q.blk, manifest::Role::blkback, &blk, outcome, cap))
        return;
    // A vif or a vbd lives in XenStore: without a store (none running, or
    // the guest not connected to it) its back-end would never hear of it.
    if ((net >= 0 || blk >= 0) && (store < 0 || !store_ready())) {
        base::snformat(outcome, cap, "refused: a %s needs a XENSTORE connection (its back-end finds it in the store)",
                       net >= 0 ? "VIF" : "VBD");
        return;
    }
    if (blk >= 0 && !create_disk_allowed(q, blk, outcome, cap)) return;
    // The image: the frame list, then the frames it names, each checked by
    // the kernel to be the toolstack's; copied once, checked on the copy (the
    // toolstack may change its frames meanwhile: we never read them again).
    const uint16_t ts = g_state[g_toolstack].dom.id;
    const uint64_t pages = (uint64_t(q.image_size) + 4095) / 4096;
    if (!copy_foreign(ts, q.list, kCreateListPages, reinterpret_cast<uint8_t*>(g_create_list)) ||
        !copy_foreign(ts, g_create_list, pages, g_manifest)) {
        base::snformat(outcome, cap, "refused: the staging area's frames are not all the toolstack's");
        return;
    }
    if (uint32_t crc = manifest::crc32(g_manifest, q.image_size); crc != q.image_crc32) {
        base::snformat(outcome, cap, "refused: the image's CRC-32 is %08x, the request says %08x", crc, q.image_crc32);
        return;
    }
    Created& c = g_created[slot];
    Created old = c;
    c = Created{};
    for (int e = 0; e < 4; ++e) c.be_grant[e] = old.be_grant[e], c.be_event[e] = old.be_event[e];
    base::snformat(c.name, sizeof c.name, "%s", q.name);
    base::snformat(c.cmdline, sizeof c.cmdline, "%s", q.cmdline);
    c.memory_kib = q.memory_kib;
    c.console = console;
    c.net = net;
    c.blk = blk;
    c.disk_first = q.disk_first;
    c.disk_end = q.disk_first + q.disk_sectors;
    c.disk_read_only = q.disk_read_only;
    PvSpec s{};
    s.name = c.name;
    s.image = g_manifest;
    s.image_bytes = q.image_size;
    s.cmdline = c.cmdline;
    s.nr_pages = q.memory_kib / 4;
    s.weight = 256;
    s.cspace_slots = 16;
    s.console_backend = console >= 0 ? domid_of(console) : kNoDomain;
    s.store_backend = store >= 0 ? domid_of(store) : kNoDomain;
    char err[160];
    if (!pv_create(s, c.dom, err, sizeof err)) {
        base::snformat(outcome, cap, "failed: %s", err);
        return;
    }
    c.live = true;
    ++g_guests_left;
    auto fail = [&](const char* what) {
        base::snformat(outcome, cap, "failed: %s", what);
        rt::printf("moat create %s: %s\n", c.name, what);
        take_down_created(slot);
    };
    if (!pv_build(s, c.dom, err, sizeof err)) return fail(err);
    c.control_slot = old.control_slot;
    if (!install(g_toolstack, long(c.dom.slot_domain), abi::kCapRightControl, "Domain", -1, &c.control_slot))
        return fail("cannot give the toolstack its Domain capability");
    // What its connections imply, as for a manifest connection: each
    // back-end maps its ring page and binds its channel (Grant MAP_RW, and
    // COPY for netback and blkback; Event); it binds to the back-end (Event,
    // its slots 0 to 3 of its 16: pv_build installs nothing).
    const int ends[4] = {console, store, net, blk};
    uint32_t own_slot = 0;
    for (int e = 0; e < 4; ++e) {
        if (ends[e] < 0) continue;
        // netback and blkback copy data to and from granted pages too (as
        // manifest::Index gives a VIF's or VBD's back-end): MAP_RW and COPY.
        const uint32_t rights = abi::kCapRightMapRw | (e >= 2 ? abi::kCapRightCopy : 0u);
        bool ok = install(ends[e], long(c.dom.slot_grant), rights, "Grant", -1, &c.be_grant[e]) &&
                  install(ends[e], long(c.dom.slot_event), abi::kCapRightBind, "Event", -1, &c.be_event[e]) &&
                  rt::cap_install(c.dom.id, uint32_t(event_slot(ends[e])), own_slot++, abi::kCapRightBind) == 0;
        if (!ok) return fail("cannot give it and its back-ends the capabilities its connections need");
    }
    if (store_ready()) {
        StoreDomain sd{c.dom.id, c.name, c.dom.console_mfn, c.dom.console_port, s.console_backend, c.dom.store_mfn,
                       c.dom.store_port};
        if (!store_introduce(sd)) return fail("XenStore refused its introduction");
        (void)store_control_node(c.dom.id, ts);
        // Its vif, as write_vif writes a manifest guest's: handle 0 and a
        // MAC of its own, 00:16:3e:01:<entry>:00. Manifest guests' are
        // 00:16:3e:00:<index>:<n> (or the manifest's mac), so the two never
        // meet; two live created guests have different entries. netback
        // watches backend/vif and takes it as it comes.
        if (net >= 0) {
            char mac[20];
            base::snformat(mac, sizeof mac, "00:16:3e:01:%02x:00", unsigned(slot));
            StoreNode fe[] = {{"handle", "0"}, {"mac", mac}};
            StoreNode be[] = {{"handle", "0"}, {"mac", mac}, {"online", "1"}};
            if (!store_device(c.dom.id, domid_of(net), "vif", 0, fe, 2, be, 3))
                return fail("cannot write its vif's nodes in XenStore");
        }
        // Its vbd, as write_vbd writes a manifest guest's first (xvda): the
        // sectors checked against the quota above. blkback watches
        // backend/vbd and takes it as it comes.
        if (blk >= 0) {
            char first[24], count[24];
            base::snformat(first, sizeof first, "%lu", q.disk_first);
            base::snformat(count, sizeof count, "%lu", q.disk_sectors);
            StoreNode fe[] = {{"virtual-device", "51712"}, {"device-type", "disk"}};
            StoreNode be[] = {{"virtual-device", "51712"}, {"device-type", "disk"},
                              {"mode", q.disk_read_only ? "r" : "w"}, {"online", "1"},
                              {"moat-first-sector", first}, {"moat-sectors", count}};
            if (!store_device(c.dom.id, domid_of(blk), "vbd", 202u << 8, fe, 2, be, 6))
                return fail("cannot write its vbd's nodes in XenStore");
        }
        // As for a manifest guest: its back-ends map its rings first.
        unsigned want = (c.dom.console_port ? 1u : 0u) + (c.dom.store_port ? 1u : 0u);
        uint64_t deadline = rt::now_ns() + kBackendWaitNs;
        while (domctl_info(c.dom.id).mapped_grants < want && rt::now_ns() < deadline) nap(1000000);
        (void)store_stamp_start(c.dom.id);
    }
    rt::printf("built %s (guest, created for the toolstack) as domain %u: %lu KiB, image of %u bytes\n", c.name,
               c.dom.id, c.memory_kib, q.image_size);
    if (long r = domctl_simple(uint32_t(abi::DomctlCmd::unpause), c.dom.id); r != 0) return fail("unpause failed");
    // From the toolstack's receiving the request to the guest's first
    // instruction (it runs from here): guest time, which counts
    // instructions under -icount shift=0.
    uint64_t now = rt::now_ns();
    if (!g_create_timed && now > q.asked_ns) {
        g_create_timed = true;
        rt::printf("BENCH domain_create_live_insns %lu\n", now - q.asked_ns);
    }
    base::snformat(outcome, cap, "done %u", c.dom.id);
}

// `moat destroy NAME` (docs/control.md): the toolstack asks by writing
// "destroy" in kDestroyDir/NAME; we destroy the domain as we take a stopped one
// apart, but for good (never restarted: the user asked it gone), and write
// the outcome into the node. The request is the toolstack's word only: the
// name must be one of its manifest's `controls`, checked here again.
char g_destroy_buf[abi::kXenstorePayloadMax + 1];
bool g_destroy_watched = false;

// Drains the store's watch events (ours are on kDestroyDir only): whether
// any came, i.e. whether the directory may hold a new request.
bool destroy_events() {
    if (!g_destroy_watched) return false;
    bool any = false;
    static rt::XsWatchEvent ev;   // a payload's worth: not on our stack
    while (rt::xs_next_watch_event(ev)) any = true;
    return any;
}

// The outcome of destroying domain `name` for the toolstack: "done", or why not.
void destroy_for_toolstack(const char* name, char* outcome, size_t cap) {
    if (int k = created_named(name); k >= 0) {
        Created& c = g_created[k];
        long r = domctl_simple(uint32_t(abi::DomctlCmd::pause), c.dom.id);
        rt::printf("%s (domain %u) destroyed for the toolstack (moat destroy)\n", name, c.dom.id);
        if (r != 0) rt::printf("%s: pause before destroy failed: %ld (destroyed anyway)\n", name, r);
        take_down_created(k);
        base::snformat(outcome, cap, "done");
        return;
    }
    int i = -1;
    for (int k = 0; k < int(g_sys.n_domains); ++k)
        if (__builtin_strcmp(g_sys.domains[k].name, name) == 0) i = k;
    if (i < 0 || control_index(i) < 0) {
        base::snformat(outcome, cap, "refused: \"%s\" is not in the toolstack's controls", name);
        return;
    }
    // Every domain's XenStore goes with it, and our way to answer: not this one.
    if (i == g_store) {
        base::snformat(outcome, cap, "refused: \"%s\" is the XenStore domain: the builder does not destroy it", name);
        return;
    }
    State& st = g_state[i];
    if (!st.live) {
        base::snformat(outcome, cap, "failed: \"%s\" is not running (down for good)", name);
        return;
    }
    // Paused first: it runs no more while its back-ends let go of it.
    long r = domctl_simple(uint32_t(abi::DomctlCmd::pause), st.dom.id);
    rt::printf("%s (domain %u) destroyed for the toolstack (moat destroy): not restarted\n", name, st.dom.id);
    if (r != 0) rt::printf("%s: pause before destroy failed: %ld (destroyed anyway)\n", name, r);
    take_down(i);
    down_for_good(i);
    base::snformat(outcome, cap, "done");
}

// Serves every request in kDestroyDir that has no outcome yet (its value
// still "destroy").
void serve_destroys() {
    static char names[abi::kXenstorePayloadMax + 1];
    auto d = rt::xs_directory(kDestroyDir, names, sizeof names);
    if (!d) return;   // gone (the toolstack removed it): nothing to serve
    // Any name the toolstack wrote fits (a long one is refused, not cut to
    // another's).
    static char path[sizeof names + 16];
    char outcome[160];
    for (const char* c = rt::xs_next_name(names, *d, nullptr); c; c = rt::xs_next_name(names, *d, c)) {
        base::snformat(path, sizeof path, "%s/%s", kDestroyDir, c);
        auto v = rt::xs_read(path, g_destroy_buf, sizeof g_destroy_buf);
        // Anything but "destroy" is answered already (or gone meanwhile).
        if (!v || __builtin_strcmp(g_destroy_buf, "destroy") != 0) continue;
        destroy_for_toolstack(c, outcome, sizeof outcome);
        if (__builtin_strcmp(outcome, "done") != 0) rt::printf("moat destroy %s: %s\n", c, outcome);
        // Unless the toolstack gave up and removed it meanwhile.
        if (store_exists(path)) (void)store_write(path, outcome);
    }
}

// Serves every request in kCreateDir that has no outcome yet (its value
// still "create ...").
void serve_creates() {
    static char names[abi::kXenstorePayloadMax + 1];
    auto d = rt::xs_directory(kCreateDir, names, sizeof names);
    if (!d) return;
    static char path[sizeof names + 16];
    char outcome[200];
    for (const char* c = rt::xs_next_name(names, *d, nullptr); c; c = rt::xs_next_name(names, *d, c)) {
        base::snformat(path, sizeof path, "%s/%s", kCreateDir, c);
        auto v = rt::xs_read(path, g_destroy_buf, sizeof g_destroy_buf);
        if (!v || __builtin_strncmp(g_destroy_buf, "create ", 7) != 0) continue;
        if (!g_state[g_toolstack].live) continue;
        create_for_toolstack(c, g_destroy_buf, outcome, sizeof outcome);
        if (__builtin_strncmp(outcome, "done", 4) != 0) rt::printf("moat create %s: %s\n", c, outcome);
        if (store_exists(path)) (void)store_write(path, outcome);
    }
}

// kConsoleInputDir, when the system has a toolstack with domains to control
// (or create) and a console service, both running; kConsoleRequestNode
// (Ctrl-] q) whenever it has both.
void console_input_dir() {
    if (g_toolstack < 0 || g_console < 0 || !g_state[g_toolstack].live || !g_state[g_console].live) return;
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    if (t.n_controls || t.create_domains) (void)store_console_input_dir(domid_of(g_toolstack), domid_of(g_console));
    (void)store_console_request(domid_of(g_toolstack), domid_of(g_console));
}

// Makes kDestroyDir (a toolstack with domains to control) and kCreateDir (one
// with a create quota) and watches them, once XenStore answers.
void destroy_init() {
    if (!store_ready() || g_toolstack < 0 || !g_state[g_toolstack].live) return;
    console_input_dir();
    const manifest::Domain& t = g_sys.domains[g_toolstack];
    // A created guest is destroyed through kDestroyDir too.
    if (t.n_controls || t.create_domains) {
        if (!store_destroy_dir(g_state[g_toolstack].dom.id)) return;
        auto w = rt::xs_watch(kDestroyDir, "destroy");
        if (!w) {
            rt::printf("xenstore watch %s: %s: moat destroy is not served\n", kDestroyDir, rt::xs_error_name(w.error()));
            return;
        }
        g_destroy_watched = true;
    }
    // Without a quota there is no directory: the toolstack's request cannot
    // be written, and it refuses every create itself.
    if (t.create_domains) {
        if (!store_create_dir(g_state[g_toolstack].dom.id)) return;
        if (auto w = rt::xs_watch(kCreateDir, "create"); !w)
            rt::printf("xenstore watch %s: %s: moat create is not served\n", kCreateDir, rt::xs_error_name(w.error()));
    }
}

bool guests_remain() { return g_guests_left != 0; }

bool has_option(const char* cmdline, const char* opt) { return base::has_word(cmdline, opt); }

// What the census measures the boot by (guest time: under -icount shift=0
// one ns is one guest instruction).
struct CensusMarks {
    uint64_t first_create_ns = 0;   // now_ns() as the first domain is created
    uint64_t builder_cpu_ns = 0;    // our CPU time as we began
    PhysInfo hv_before{}, hv_after{};   // physinfo before the guests are created and once they are up
    unsigned guests_created = 0;
};
CensusMarks g_marks;

uint64_t cpu_ns_of(int i) {
    uint16_t id = domid_of(i);
    if (id == kNoDomain) return 0;
    DomInfo info = domctl_info(id);
    return info.ok ? info.cpu_time_ns : 0;
}

// Once every guest is up: the CPU time the builder (since it began), the
// services and the guests took to get there, and the guest time from the
// first create to the last guest up, so that the boot's cost splits by
// domain.
void census_figures(uint64_t all_up_ns) {
    uint64_t guests = 0;
    for (int i = 0; i < int(g_sys.n_domains); ++i)
        if (is_guest(i) && g_state[i].live) guests += cpu_ns_of(i);
    uint64_t builder = cpu_ns_of(g_builder) - g_marks.builder_cpu_ns;
    rt::printf("census: cpu_ns builder=%lu console=%lu xenstore=%lu guests=%lu n=%u\n", builder,
               g_console >= 0 ? cpu_ns_of(g_console) : 0, g_store >= 0 ? cpu_ns_of(g_store) : 0, guests,
               g_marks.guests_created);
    rt::printf("census: boot_ns_total %lu\n", all_up_ns - g_marks.first_create_ns);
    if (g_marks.guests_created)
        rt::printf("BENCH boot_insns_per_domain_n%u %lu\n", g_marks.guests_created,
                   (all_up_ns - g_marks.first_create_ns) / g_marks.guests_created);
    // What the kernel holds for the guests once they run, their back-ends'
    // share (maptrack, event channels) included.
    g_marks.hv_after = domctl_physinfo();
    // Of the largest run only (`census max`), where what the back-ends
    // allocate in chunks for many guests is spread over them all.
    if (g_marks.hv_before.ok && g_marks.hv_after.ok && g_marks.guests_created &&
        has_option(g_sys.domains[g_builder].cmdline, "max"))
        rt::printf("BENCH hv_bytes_per_domain %lu\n",
                   (g_marks.hv_after.hv_domain_bytes - g_marks.hv_before.hv_domain_bytes) / g_marks.guests_created);
}

// The builder's `census` option (domains_booted_max): once every guest is
// started, counts those that report themselves up in XenStore (data/up)
// while all run at once, then asks each to power off the way Xen's toolstack
// does (control/shutdown = poweroff) and counts those that obey.
void census() {
    char path[64];
    unsigned started = 0, up = 0;
    uint64_t deadline = rt::now_ns() + 120'000'000'000ull;   // guest time
    for (int i = 0; i < int(g_sys.n_domains); ++i) {
        if (!is_guest(i) || !g_state[i].live) continue;
        ++started;
        base::snformat(path, sizeof path, "/local/domain/%u/data/up", g_state[i].dom.id);
        while (!store_exists(path) && rt::now_ns() < deadline) nap(1'000'000);
        up += store_exists(path);
    }
    census_figures(rt::now_ns());
    unsigned running = 0;
    for (int i = 0; i < int(g_sys.n_domains); ++i)
        if (is_guest(i) && g_state[i].live) running += domctl_info(g_state[i].dom.id).state == abi::kDomainStateRunning;
    rt::printf("census: %u guests started, %u up in XenStore, %u running at once\n", started, up, running);
    unsigned asked = 0;
    for (int i = 0; i < int(g_sys.n_domains); ++i) {
        if (!is_guest(i) || !g_state[i].live) continue;
        base::snformat(path, sizeof path, "/local/domain/%u/control/shutdown", g_state[i].dom.id);
        asked += store_write(path, "poweroff");
    }
    // Every guest that powers off by itself within the bound answered.
    unsigned answered = 0;
    deadline = rt::now_ns() + 120'000'000'000ull;
    for (bool waiting = true; waiting && rt::now_ns() < deadline;) {
        waiting = false;
        for (int i = 0; i < int(g_sys.n_domains); ++i) {
            if (!is_guest(i) || !g_state[i].live) continue;
            DomInfo info = domctl_info(g_state[i].dom.id);
            if (info.state == abi::kDomainStateStopped) {
                answered += info.shutdown_reason == 0;
                reap(i);
            } else {
                waiting = true;
            }
        }
        if (waiting) nap(1'000'000);
    }
    rt::printf("census: %u asked to power off, %u did\n", asked, answered);
    unsigned booted = running < answered ? running : answered;
    // The figure of the largest census run only (`census max`): smaller
    // runs would overwrite it in the results.
    if (has_option(g_sys.domains[g_builder].cmdline, "max"))
        rt::printf("BENCH domains_booted_max %u\n", up < booted ? up : booted);
}

int build_order_rank(manifest::Role r) {
    switch (r) {
    case manifest::Role::console: return 0;
    case manifest::Role::xenstore: return 1;
    case manifest::Role::netback: return 2;
    case manifest::Role::blkback: return 3;
    default: return 4;
    }
}

}  // namespace

void rt::main() {
    rt::events_init();
    g_self = find_self();
    g_marks.builder_cpu_ns = domctl_info(g_self).cpu_time_ns;
    char name[32];
    long n = read_module(1, g_manifest, sizeof g_manifest, name, sizeof name);
    if (n < 0) {
        rt::printf("no manifest: boot module 1 cannot be read (%ld); nothing to build\n", n);
        return;
    }
    char err[200];
    if (!manifest::decode(g_manifest, size_t(n), g_sys, err, sizeof err)) {
        rt::printf("manifest refused (boot module 1, %s, %ld bytes): %s\n", name, n, err);
        return;
    }
    for (int i = 0; i < int(g_sys.n_domains); ++i) {
        if (g_sys.domains[i].role == manifest::Role::builder) g_builder = i;
        if (g_sys.domains[i].role == manifest::Role::console) g_console = i;
        if (g_sys.domains[i].role == manifest::Role::xenstore) g_store = i;
        if (g_sys.domains[i].role == manifest::Role::toolstack) g_toolstack = i;
        g_guests_left += is_guest(i);
    }
    g_index.build(g_sys);
    index_controls();
    rt::printf("manifest: %u domains, %u connections, %u MiB\n", g_sys.n_domains, g_sys.n_connections,
               g_sys.memory_mib);

    abi::EvtchnBindVirq bv{uint32_t(abi::Virq::dom_exc), 0, 0};
    if (rt::evtchn_op(abi::EvtchnOp::bind_virq, &bv) == 0) g_dom_exc_port = bv.port;

    // Every frame the domains take must come back when they are gone: the
    // count now is the one to find again at the end. Our own grant table
    // (set up on first use) is ours for good: set it up first.
    (void)rt::grant_table();
    const PhysInfo before = domctl_physinfo();

    // Every domain exists (paused) before any is built: rings, ports and
    // capabilities name each other.
    static int order[manifest::kMaxDomains];
    unsigned count = 0;
    for (int rank = 0; rank <= 4; ++rank)
        for (int i = 0; i < int(g_sys.n_domains); ++i)
            if (i != g_builder && build_order_rank(g_sys.domains[i].role) == rank) order[count++] = i;
    g_marks.first_create_ns = rt::now_ns();
    for (unsigned k = 0; k < count; ++k) {
        int i = order[k];
        // Guests come last in `order`: what the kernel holds for them is
        // what it held after the services' creation and before theirs.
        if (is_guest(i) && g_marks.guests_created == 0) g_marks.hv_before = domctl_physinfo();
        if (!create(i)) down_for_good(i);
        else g_marks.guests_created += is_guest(i);
    }
    long master_port = g_store >= 0 && g_state[g_store].live ? store_prepare(g_self, g_state[g_store].dom.id) : -1;
    for (unsigned k = 0; k < count; ++k) {
        int i = order[k];
        if (!g_state[i].live) continue;
        if (!build(i, master_port)) {
            destroy(i);
            down_for_good(i);
        }
    }
    // The services first; the store must answer before anyone is introduced.
    for (unsigned k = 0; k < count; ++k) {
        int i = order[k];
        if (g_state[i].live && (i == g_store || i == g_console)) start(i);
    }
    if (g_store >= 0 && g_state[g_store].live) {
        if (store_connect()) {
            allow_special_watches();
            destroy_init();
            State& x = g_state[g_store];
            StoreDomain xd{x.dom.id, g_sys.domains[g_store].name, x.dom.console_mfn, x.dom.console_port,
                           g_console >= 0 ? domid_of(g_console) : kNoDomain, 0, 0};
            store_introduce(xd, false);
            if (g_console >= 0 && g_state[g_console].live) {
                State& c = g_state[g_console];
                StoreDomain sd{c.dom.id, g_sys.domains[g_console].name, c.dom.console_mfn, c.dom.console_port,
                               domid_of(g_console), c.dom.store_mfn, c.dom.store_port};
                store_introduce(sd);
                if (control_index(g_console) >= 0 && g_toolstack >= 0 && g_state[g_toolstack].live)
                    (void)store_control_node(c.dom.id, domid_of(g_toolstack));
            }
        } else {
            rt::printf("XenStore (domain %u) does not answer: domains start without it\n",
                       g_state[g_store].dom.id);
        }
    }
    write_rings(-1);
    for (unsigned k = 0; k < count; ++k) {
        int i = order[k];
        if (g_state[i].live && i != g_store && i != g_console && !start(i)) {
            destroy(i);
            down_for_good(i);
        }
    }
    rt::printf("system up\n");
    if (has_option(g_sys.domains[g_builder].cmdline, "census")) census();

    // Woken by a domain that stops (VIRQ_DOM_EXC) or by the store (a watch
    // event: a `moat destroy` request).
    uint32_t ports[2] = {g_dom_exc_port, g_destroy_watched ? rt::xs_port() : 0};
    unsigned nports = ports[1] ? 2 : 1;
    while (guests_remain()) {
        // Events that came during our own requests are queued already: no
        // port fires for them again.
        bool asked = destroy_events();
        if (!asked) {
            if (g_dom_exc_port) rt::wait_ports(ports, nports, 0);
            else rt::sched_op(abi::SchedOp::yield);
            asked = destroy_events();
        }
        if (asked) {
            serve_destroys();
            serve_creates();
        }
        for (int i = 0; i < int(g_sys.n_domains); ++i) {
            if (!g_state[i].live) continue;
            DomInfo info = domctl_info(g_state[i].dom.id);
            if (info.ok && info.state == abi::kDomainStateStopped) reap(i);
        }
        // A created guest that stopped is taken apart, never restarted.
        for (unsigned k = 0; k < manifest::kMaxCreated; ++k) {
            if (!g_created[k].live) continue;
            DomInfo info = domctl_info(g_created[k].dom.id);
            if (!info.ok || info.state != abi::kDomainStateStopped) continue;
            rt::printf("%s (domain %u) %s: a created guest, not restarted\n", g_created[k].name, g_created[k].dom.id,
                       reason_name(info.shutdown_reason));
            take_down_created(int(k));
        }
    }
    rt::printf("every guest is down: stopping the services\n");
    for (unsigned k = count; k-- > 0;) {
        int i = order[k];
        if (g_state[i].live && i != g_console) destroy(i);
    }
    if (g_console >= 0) destroy(g_console);
    // Every domain is gone: the machine must be as it was before the first
    // was built (a frame short is a frame some teardown failed to free).
    const PhysInfo after = domctl_physinfo();
    if (before.ok && after.ok && after.free_frames == before.free_frames && after.held_frames == 0)
        rt::printf("all frames back: %lu free, as before the first domain was built\n", after.free_frames);
    else if (before.ok && after.ok)
        rt::printf("FRAMES NOT BACK: %lu free, %lu before the first domain was built; %lu held back\n",
                   after.free_frames, before.free_frames, after.held_frames);
    // And every domain id: only ours is in use again.
    if (before.ok && after.ok && after.domains == before.domains)
        rt::printf("all domain ids back: %u in use, as before the first domain was built\n", after.domains);
    else if (before.ok && after.ok)
        rt::printf("DOMAIN IDS NOT BACK: %u in use, %u before the first domain was built\n", after.domains,
                   before.domains);
    rt::printf("done\n");
}
