// kmain: from the multiboot entry to the first guest.

#include <arch/acpi.hpp>
#include <arch/apic.hpp>
#include <arch/boot_info.hpp>
#include <arch/cpu.hpp>
#include <arch/layout.h>
#include <arch/memory_init.hpp>
#include <arch/panic.hpp>
#include <arch/percpu.hpp>
#include <arch/serial.hpp>
#include <arch/vtd.hpp>

#include <base/format.hpp>
#include <base/cmdline.hpp>
#include <core/caps.hpp>
#include <core/irq.hpp>
#include <core/pci.hpp>
#include <core/log.hpp>
#include <core/memory.hpp>
#include <core/platform.hpp>
#include <core/pv_build.hpp>
#include <core/trace.hpp>

extern "C" const uint64_t boot_pml4_pa;
extern "C" [[noreturn]] void enter_first_guest(core::Regs* frame);

namespace arch {

namespace {

BootInfo g_boot;
constexpr uint64_t kDefaultDomainMemory = 16ull << 20;

// "mem=16M" style sizes: a number with an optional K, M or G suffix.
bool parse_size(const char* s, uint64_t* out) {
    uint64_t v = 0;
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') {
        if (v > (1ull << 50)) return false;
        v = v * 10 + uint64_t(*s++ - '0');
    }
    switch (*s) {
    case 'K': case 'k': v <<= 10; ++s; break;
    case 'M': case 'm': v <<= 20; ++s; break;
    case 'G': case 'g': v <<= 30; ++s; break;
    default: break;
    }
    if (*s && *s != ' ') return false;
    *out = v;
    return true;
}

// A module's string is "path args...": the domain's name is the path's last
// component, its command line the rest. `mem=SIZE` among the arguments sets
// the domain's memory.
void build_from_module(unsigned i, const Module& m) {
    const char* path = m.cmdline;
    const char* args = path;
    while (*args && *args != ' ') ++args;
    const char* name = path;
    for (const char* p = path; p < args; ++p)
        if (*p == '/') name = p + 1;
    char dname[core::kDomainNameLen];
    base::snformat(dname, sizeof dname, "%.*s", int(args - name), name);
    while (*args == ' ') ++args;

    uint64_t mem = kDefaultDomainMemory, weight = 256;
    for (const char* p = args; *p; ++p) {
        if (p != args && p[-1] != ' ') continue;
        if (__builtin_memcmp(p, "mem=", 4) == 0 && !parse_size(p + 4, &mem)) {
            core::log("refusing module %u (%s): bad mem= value", i, dname);
            return;
        }
        if (__builtin_memcmp(p, "weight=", 7) == 0 && (!parse_size(p + 7, &weight) || weight == 0 || weight > 65535)) {
            core::log("refusing module %u (%s): bad weight= value (1..65535)", i, dname);
            return;
        }
    }

    core::BuildSpec spec{dname, reinterpret_cast<const uint8_t*>(DIRECTMAP_VIRT + m.start), size_t(m.end - m.start),
                         args, mem >> 12, uint32_t(weight)};
    // The first domain hands out the system: it holds three capabilities for
    // every domain it creates.
    if (i == 0) spec.cspace_slots = core::caps::kMaxSlots;
    auto r = core::build_pv_domain(spec);
    if (!r) {
        char why[160];
        core::describe(r.error(), why, sizeof why);
        core::log("refusing module %u (%s): %s", i, dname, why);
    }
}

bool has_option(const char* cmdline, const char* opt) { return base::has_word(cmdline, opt); }

// `moat.test_panic` on the kernel command line: fault on purpose, so the
// system tests can check the panic report (registers, symbolized backtrace,
// exit code). Not inlined, so it shows up in that backtrace by name.
[[gnu::noinline]] void test_panic_fault() {
    core::log("moat.test_panic: faulting on purpose");
    *reinterpret_cast<volatile uint64_t*>(0x8) = 1;
}

static_assert(core::kTraceCpus == kMaxCpus, "a trace buffer for each CPU the kernel can run");

// The kernel keeps no policy: the first domain gets every capability over
// what the kernel did not keep for itself, and hands them out.
void give_first_domain_everything() {
    // The first domain built has the lowest id (ids are handed out in
    // increasing order); a walk of the ids, once at boot.
    core::Domain* first = nullptr;
    for (unsigned i = 0; i < core::kMaxDomains && !first; ++i)
        if (core::Domain* d = core::domain_at(i); d && d->state == core::DomainState::running) first = d;
    using cap::Capability;
    using cap::Type;
    namespace r = cap::right;
    unsigned given = 0;
    auto give = [&](const Capability& c) { given += core::caps::give_root(*first, c) >= 0; };
    give(Capability{Type::untyped, r::use, 0, core::frame_table().nframes(), 0});
    give(Capability{Type::debug_console, r::use, 0, 0, 0});
    give(Capability{Type::trace, r::use, 0, 0, 0});   // the kernel's trace buffers (core/trace.hpp)
    // The serial ports (COM1, COM2), for the console domain to drive. The
    // other legacy ports the kernel uses (PIC, PIT, debug exit) stay its own.
    give(Capability{Type::io_ports, r::use, 0x3F8, 8, 0});
    give(Capability{Type::io_ports, r::use, 0x2F8, 8, 0});
    for (unsigned m = 0; m < g_boot.nmodules; ++m) give(Capability{Type::module, r::use, m, 0, 0});
    // Interrupt lines, delivered as events: the IOAPIC's, but for 0 and 2
    // (the PIT and the PIC cascade, which the kernel keeps masked).
    for (unsigned line = 1; line < core::kNrIrqLines; ++line)
        if (line != 2) give(Capability{Type::irq, r::use, line, 0, 0});
    // Every PCI function, and its BARs: I/O ranges and device memory.
    for (unsigned i = 0; i < core::pci_count(); ++i) {
        const abi::MoatPciInfo& f = core::pci_at(i)->info;
        give(Capability{Type::pci_device, r::use, f.bdf, 0, 0});
        for (const auto& bar : f.bars) {
            if (!bar.size) continue;
            if (bar.is_io) give(Capability{Type::io_ports, r::use, bar.base, bar.size, 0});
            else give(Capability{Type::mmio, r::use, bar.base, bar.size, 0});
        }
    }
    for (unsigned i = 0; i < core::kMaxDomains; ++i) {   // in id order, as built
        core::Domain* d = core::domain_at(i);
        if (!d || d->state != core::DomainState::running) continue;
        give(Capability{Type::domain, r::control | r::build | r::install_caps, d->id, 0, 0});
        give(Capability{Type::grant, r::map_ro | r::map_rw | r::copy, d->id, 0, 0});
        give(Capability{Type::event, r::bind, d->id, 0, 0});
    }
    core::log("domain %u (%s) holds %u capabilities: the rest of the system is its to hand out", first->id, first->name,
              given);
}

}  // namespace

}  // namespace arch

bool platform::boot_module(unsigned index, BootModule* out) {
    if (index >= arch::g_boot.nmodules) return false;
    const arch::Module& m = arch::g_boot.modules[index];
    *out = BootModule{reinterpret_cast<const uint8_t*>(DIRECTMAP_VIRT + m.start), size_t(m.end - m.start), m.cmdline};
    return true;
}

using namespace arch;

extern "C" [[noreturn]] void kmain(uint32_t magic, uint32_t mbi) {
    (void)magic;
    serial::init();
    core::log("Moat hypervisor, x86-64 PV (Xen ABI)");
    cpu_init(0);
    parse_multiboot(mbi, g_boot);
    if (g_boot.cmdline[0]) core::log("command line: %s", g_boot.cmdline);
    memory_init(g_boot);

    // Low memory was identity mapped only to get here.
    reinterpret_cast<uint64_t*>(DIRECTMAP_VIRT + boot_pml4_pa)[0] = 0;
    write_cr3(read_cr3());

    apic_init();
    // The DMA-remapping unit goes on before any PCI function is touched and
    // any domain runs: every function's DMA blocked until the core attaches
    // it to its driver domain's I/O table (core/iommu.hpp), the IOAPIC's
    // lines remapped.
    acpi::init();
    if (acpi::tables().has_mcfg) {
        pci_use_ecam(acpi::tables().ecam_base);
        core::log("pci: configuration space through ECAM at %#lx", acpi::tables().ecam_base);
    }
    if (vtd::init()) ioapic_use_remapping();
    core::pci_enumerate();
    if (has_option(g_boot.cmdline, "moat.test_panic")) test_panic_fault();

    // The kernel starts one domain, the builder (module 0), which reads the
    // manifest and the other modules through its Module capabilities. With
    // `boot=all` (the core's own system tests) every module becomes a domain.
    bool all = has_option(g_boot.cmdline, "boot=all");
    core::log("%u boot module(s); starting %s", g_boot.nmodules, all ? "each as a domain" : "the first");
    for (unsigned i = 0; i < g_boot.nmodules && (all || i == 0); ++i) build_from_module(i, g_boot.modules[i]);
    if (core::domains_alive() == 0) {
        core::log("no domain could be built: the system ends");
        qemu_exit(kExitClean);
    }
    give_first_domain_everything();

    // The first guest enters through the same exit path as every later one:
    // an empty frame at the top of this CPU's stack that the scheduler fills.
    auto* frame = reinterpret_cast<core::Regs*>(this_cpu().stack_top - sizeof(core::Regs));
    *frame = core::Regs{};
    enter_first_guest(frame);
}
