// The console domain: drives COM1 and writes to it, in whole lines, the
// kernel's log (CONSOLEIO_read, as it is) and every domain's PV console ring
// ("<name>: <line>"); typed input goes to the domain in focus (Ctrl-] moves
// it; Ctrl-] q asks the toolstack to end the system), and `moat console
// NAME`'s keys to NAME (the toolstack hands them over in XenStore:
// store.hpp). See docs/system.md, "Console domain".
//
// Command line: `exit-after-ms=N` stops the domain after N ms (system tests
// of the kernel taking the UART back); `focus=NAME` gives the keyboard to
// the domain called NAME once it is served (else the first one served has it).

#include "backends.hpp"

#include <rt/gnttab.hpp>
#include "safe_copy.hpp"
#include "store.hpp"

#include <abi/event_channel.hpp>
#include <abi/moat.hpp>
#include <rt/caps.hpp>
#include <rt/uart.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>

namespace {

constexpr uint64_t kTickNs = 10'000'000;          // input and the kernel log are looked at this often
constexpr uint64_t kReapEveryNs = 1'000'000'000;  // destroyed domains are looked for this often
constexpr uint64_t kStoreRetryNs = 500'000'000;   // XenStore not answering yet: asked again after this
// COM1: ours when the kernel handed it over (we hold IoPorts for all of
// 0x3F8..0x3FF, the kernel's test too). Polled both ways, or its IRQ bound.
constexpr rt::Uart kCom1{rt::Uart::kCom1};

bool g_uart;   // we drive COM1: the kernel handed it over

// Whole lines out: to COM1, or (not ours) to the kernel's log, which
// prefixes them with our name.
void sink(const char* s, size_t n) {
    if (g_uart) {
        for (size_t i = 0; i < n; ++i) {   // a terminal's line ends
            if (s[i] == '\n') kCom1.put('\r');
            kCom1.put(uint8_t(s[i]));
        }
    }
    else rt::console_write(s, n);
}


// The kernel's log: read into g_log after what is there, written out up to
// the last line end (the rest waits for its line's end, so that no domain
// line lands in the middle of a kernel line).
char g_log[4096];
size_t g_log_len;

long read_kernel_log() {
    long n = rt::hypercall(abi::Hypercall::console_io, uint64_t(abi::ConsoleIo::read), sizeof g_log - g_log_len,
                           rt::ptr(g_log + g_log_len));
    if (n > 0) g_log_len += size_t(n);
    return n;
}

// True if the log may have more right now.
bool pump_kernel_log() {
    size_t room = sizeof g_log - g_log_len;
    long n = read_kernel_log();
    size_t end = g_log_len;
    while (end && g_log[end - 1] != '\n') --end;
    if (end == 0 && g_log_len == sizeof g_log) end = g_log_len;   // no line end in 4 KiB: as it is
    if (end) {
        sink(g_log, end);
        __builtin_memmove(g_log, g_log + end, g_log_len - end);
        g_log_len -= end;
    }
    return n > 0 && size_t(n) == room;
}

void connect_one(void* self, uint16_t dom) {
    if (long(dom) == *static_cast<long*>(self) || console::backends::serving(dom)) return;
    uint32_t port;
    char name[64];
    if (console::store::console_of(dom, &port, name, sizeof name)) (void)console::backends::connect(dom, port, name);
}

// A domain whose node in our directory came or went: let it go if it left
// (or was restarted: its old self left), then serve it if it is there now.
void look_at(void* self, uint16_t dom) {
    if (long(dom) == *static_cast<long*>(self)) return;
    console::backends::reap_one(dom, console::store::still_offers);
    connect_one(self, dom);
}

bool deliver_input(void*, uint16_t dom, const char* bytes, size_t n) {
    return console::backends::input_to(dom, bytes, n);
}

uint64_t exit_after_ns() {
    const char* cmd = reinterpret_cast<const char*>(rt::start_info().cmd_line);
    constexpr char kOpt[] = "exit-after-ms=";
    for (const char* p = cmd; *p; ++p) {
        if ((p != cmd && p[-1] != ' ') || __builtin_memcmp(p, kOpt, sizeof kOpt - 1) != 0) continue;
        uint64_t ms = 0;
        for (p += sizeof kOpt - 1; *p >= '0' && *p <= '9'; ++p) ms = ms * 10 + uint64_t(*p - '0');
        return ms * 1'000'000;
    }
    return 0;
}

}  // namespace

// Every served domain's console page is mapped at once.
alignas(4096) uint8_t g_window[console::backends::kMax][4096];
rt::ForeignSlot g_window_slots[console::backends::kMax];

constexpr uint32_t kCom1Irq = 4;
uint32_t g_irq_port;   // COM1's interrupt, bound as an event (0: polling)
bool g_irq_seen;

void rt::main() {
    rt::set_foreign_window(g_window, g_window_slots, console::backends::kMax);
    rt::console_use_hypervisor();   // our own lines go to the kernel's log, and come back from it
    rt::events_init();
    console::safe_copy_init();
    abi::EvtchnBindVirq timer{uint32_t(abi::Virq::timer), 0, 0};
    rt::evtchn_op(abi::EvtchnOp::bind_virq, &timer);

    // The first read hands the UART over if we may drive COM1. Only then do
    // we touch it, and only then is the kernel's log ours to write out
    // (otherwise it is on the UART already, or would come back round).
    bool com1 = kCom1.held();
    long first = read_kernel_log();
    g_uart = com1 && first >= 0;
    if (g_uart) {
        kCom1.init(false);   // what is still being sent stays
        pump_kernel_log();
        // Input by interrupt when we hold COM1's line (IRQ 4, as an event);
        // otherwise the loop polls the UART on its tick.
        abi::EvtchnBindPirq bp{kCom1Irq, 0, 0};
        if (rt::cap_find(abi::CapType::irq, kCom1Irq) >= 0 && rt::evtchn_op(abi::EvtchnOp::bind_pirq, &bp) == 0) {
            g_irq_port = bp.port;
            kCom1.enable_rx_interrupt();
            rt::printf("input by interrupt: COM1's line %u is our port %u\n", kCom1Irq, g_irq_port);
        } else {
            rt::printf("no Irq capability for COM1's line %u: polling for input\n", kCom1Irq);
        }
    } else {
        g_log_len = 0;
        rt::printf("not driving COM1 (%s): domain consoles go to the kernel log\n",
                   !com1 ? "no IoPorts capability for all of 0x3f8-0x3ff"
                   : first == -1 ? "no DebugConsole capability" : "another domain drives it");
    }
    const char* focus = nullptr;
    size_t focus_len = 0;
    (void)rt::cmdline_value("focus", &focus, &focus_len);
    console::backends::init(sink, focus, focus_len);
    bool store = console::store::init(), store_up = false;
    if (!store) rt::printf("no XenStore: serving the kernel log only\n");
    long self = -1;

    uint64_t start = rt::now_ns(), stop = exit_after_ns(), next_reap = start + kReapEveryNs, next_store = start;
    for (;;) {
        // Events stay pending, not delivered, until the block below: one
        // that comes while we work makes the block return at once.
        rt::vcpu_info().evtchn_upcall_mask = 1;
        uint64_t now = rt::now_ns();
        if (stop && now - start >= stop) break;
        bool busy = g_uart && pump_kernel_log();
        bool scan = false;
        if (store && !store_up && now >= next_store) {
            store_up = scan = console::store::up();   // and the domains there already
            self = console::store::self();
            next_store = now + kStoreRetryNs;
        }
        if (store_up) {
            // Each event names its domain: no pass over every domain, except
            // when the watch was just set or events were dropped.
            if (console::store::take_events(look_at, &self) || scan) {
                console::backends::reap(console::store::still_offers);
                console::store::for_each_domain(connect_one, &self);
            }
        }
        // `moat console`'s typed keys, a bounded number of nodes a tick;
        // more waiting keeps us from blocking.
        if (store_up) {
            console::store::take_input(deliver_input, nullptr);
            busy |= console::store::input_pending();
        }
        if (now >= next_reap) {
            // Domains destroyed without their node going (their channel is unbound).
            console::backends::reap(nullptr);
            next_reap = now + kReapEveryNs;
        }
        busy |= console::backends::serve(now);
        if (g_uart) {
            for (int c; (c = kCom1.read_byte()) >= 0;)
                if (console::backends::input(char(c))) console::store::ask_shutdown();
            // Acknowledge the interrupt: the line may fire again.
            if (g_irq_port && rt::take_port(g_irq_port)) {
                if (!g_irq_seen) rt::printf("first input interrupt\n");
                g_irq_seen = true;
                abi::EvtchnUnmask u{g_irq_port};
                rt::evtchn_op(abi::EvtchnOp::unmask, &u);
            }
        }
        if (!busy) {
            rt::set_timer(now + kTickNs);
            rt::sched_op(abi::SchedOp::block);   // unmasks events
        }
    }
    rt::printf("stopping (exit-after-ms)\n");
}
