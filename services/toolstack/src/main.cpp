// The toolstack domain (docs/control.md): the host's `moat list`, `moat
// pause/unpause NAME`, `moat shutdown [NAME]`, `moat destroy NAME` and `moat xenstore
// ls|read|write|rm PATH` arrive on COM2 as frames (libs/control); each
// complete Request gets one Response. Ctrl-] q on the system's console
// arrives in XenStore and is taken as `moat shutdown` (console_request). It
// acts only through what the manifest gave it: a Domain capability with the
// control right for each domain in its `controls` (pause, unpause, getinfo),
// write permission on those domains' control/shutdown XenStore node, and for
// `moat xenstore` its own XenStore connection, with its own permissions (its
// home, what others let it see).
//
// Polled: COM2 every 10 ms while the host is quiet, every 100 us (in effect
// the kernel's 1 ms tick) for 20 ms after its last byte, so that the next
// request of an exchange (a list's pages, a trace's reads) is read at once
// rather than at the next quiet tick. While a frame is half read, and for
// kStreamNs after an upload's answer (the next piece of the image follows at
// once), we only yield between looks: QEMU holds back what does not fit in
// the UART's 16-byte FIFO, so a sleep between two FIFOs' worth would cap the
// channel at 16 bytes a tick (a 1 MiB image took a minute). Only then: a
// toolstack that spun after every answer would fill a trace with its own
// yields. A request
// never waits on a controlled domain: pause, unpause and getinfo are
// hypercalls that return, and a XenStore request waits at most kStoreTimeoutNs.
// A destroy is the builder's to do (it built the domain, holds its back-ends'
// connections and would otherwise restart it): we ask it in XenStore and
// wait at most kDestroyTimeoutNs for its outcome.

#include "console_input.hpp"
#include "create.hpp"
#include "domains.hpp"
#include "watch.hpp"
#include "trace.hpp"

#include <control/frame.hpp>
#include <control/messages.hpp>

#include <cstdarg>

#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/xs_wire.hpp>
#include <base/format.hpp>
#include <rt/console.hpp>
#include <rt/events.hpp>
#include <rt/hypercall.hpp>
#include <rt/rt.hpp>
#include <rt/time.hpp>
#include <rt/uart.hpp>
#include <rt/xenbus.hpp>

namespace {

// COM2, the control channel (QEMU's unix socket next to the run): polled both
// ways, bytes as they are (frames are binary). QEMU holds back what the host
// sends while the receive FIFO is full, so polling loses nothing.
constexpr rt::Uart kCom2{rt::Uart::kCom2};

constexpr uint64_t kQuietTickNs = 10'000'000, kBusyTickNs = 100'000, kBusyWindowNs = 20'000'000;
constexpr uint64_t kStreamNs = 2'000'000;
constexpr uint64_t kStoreTimeoutNs = 2'000'000'000;
// How long the builder may take to destroy a domain (its back-ends let go
// first): guest time, polled every kBusyTickNs.
constexpr uint64_t kDestroyTimeoutNs = 8'000'000'000;
// Where the builder takes destroy requests (services/builder/src/store.hpp).
constexpr const char* kDestroyDir = "/moat/destroy";
// Half a frame that stops coming is forgotten after this long, so that the
// next request is not read as its tail.
constexpr uint64_t kStaleFrameNs = 2'000'000'000;

control::FrameReader g_reader;
bool g_uploading;          // the last request answered was an upload
bool g_created;            // ... was a create
// A test's hook (`crash-after-create` on our command line): we crash just
// after answering our first create, so that the builder restarts us (by
// the manifest's restart policy) while the guest we created runs on
// (tests/system/control_create.cmake, system_control_toolstack_restart).
bool g_crash_after_create;
control::Response g_rsp;   // ~10 KiB: not on the stack
uint8_t g_payload[control::kMaxPayload];
uint8_t g_frame[control::kMaxFrame];
toolstack::Held g_held[control::kMaxListed];
bool g_store;   // XenStore answered at start: shutdown and xenstore are possible
// A XenStore reply: at most a payload (kXenstorePayloadMax) and our NUL.
char g_store_buf[abi::kXenstorePayloadMax + 1];
unsigned g_ls_total;   // the children an ls found (g_rsp holds those that fit)

void sleep_until(uint64_t deadline) {
    abi::SchedPoll p{0, 0, deadline};
    rt::hypercall(abi::Hypercall::sched_op, uint64_t(abi::SchedOp::poll), rt::ptr(&p));
}

const char* op_name(control::Op op) {
    switch (op) {
    case control::Op::list: return "list";
    case control::Op::pause: return "pause";
    case control::Op::unpause: return "unpause";
    case control::Op::shutdown: return "shutdown";
    case control::Op::xenstore: return "xenstore";
    case control::Op::destroy: return "destroy";
    case control::Op::console_input: return "console input";
    case control::Op::upload: return "upload";
    case control::Op::create: return "create";
    default: return "request";
    }
}

void status(control::Status s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void status(control::Status s, const char* fmt, ...) {
    g_rsp.status = s;
    va_list ap;
    va_start(ap, fmt);
    base::vsnformat(g_rsp.error, sizeof g_rsp.error, fmt, ap);
    va_end(ap);
}

// The domain a pause/unpause/shutdown names, or false with the answer set.
bool target(const control::Request& q, toolstack::Held* h) {
    if (__builtin_strcmp(q.name, toolstack::self_name()) == 0) {
        status(control::Status::refused, "%s \"%s\": the toolstack does not %s itself", op_name(q.op), q.name,
               op_name(q.op));
        return false;
    }
    if (toolstack::find(q.name, h)) return true;
    if (toolstack::seen(q.name))
        status(control::Status::no_such_domain, "%s \"%s\": it is not running now (stopped, or being restarted)",
               op_name(q.op), q.name);
    else
        status(control::Status::refused,
               "%s \"%s\": the toolstack holds no Domain capability for it (not in its controls, or no such domain)",
               op_name(q.op), q.name);
    return false;
}

// domctl's errno as a reason.
void failed(const control::Request& q, const char* what, long rc) {
    status(control::Status::failed, "%s \"%s\": %s refused by the hypervisor (errno %ld)", op_name(q.op), q.name,
           what, -rc);
}

// A page of the list: domain `start` on, in our order (ourselves at 0, then
// those we hold, in CSpace order), as many as fit (respond() trims the
// page to one frame); total counts them all. Domains that come or go
// between the host's pages shift the order: the host merges pages by id.
void list(uint32_t start) {
    bool self = start == 0;
    size_t skip = self ? 0 : start - 1;
    size_t room = control::kMaxListed - (self ? 1 : 0);
    size_t n = toolstack::held(g_held, room, skip);
    size_t filled = n > skip ? (n - skip < room ? n - skip : room) : 0;
    if (self) g_rsp.domains[g_rsp.n_domains++] = toolstack::self_info();
    for (size_t k = 0; k < filled; ++k) g_rsp.domains[g_rsp.n_domains++] = g_held[k].info;
    g_rsp.total = uint32_t(1 + n < control::kMaxDomains ? 1 + n : control::kMaxDomains);
    g_rsp.free_memory_kib = toolstack::free_memory_kib();
    g_rsp.status = control::Status::ok;
}

void shutdown_one(const control::Request& q, const toolstack::Held& h) {
    if (h.info.state == control::State::shutdown || h.info.state == control::State::crashed) {
        status(control::Status::failed, "shutdown \"%s\": it is stopped already", q.name);
        return;
    }
    const char* why = "";
    if (!toolstack::ask_poweroff(uint16_t(h.id), &why))
        status(control::Status::failed, "shutdown \"%s\": XenStore refused the write of control/shutdown: %s",
               q.name, why);
    else
        g_rsp.status = control::Status::ok;
}

void shutdown_all() {
    size_t n = toolstack::held(g_held, control::kMaxListed);
    unsigned asked = 0, refused = 0;
    const char* first_why = nullptr;
    char first[control::kNameLen + 1] = "";
    // Those beyond kMaxListed are asked in a later request (the host's
    // `moat shutdown` may repeat it); none is skipped silently.
    for (size_t k = 0; k < n && k < control::kMaxListed; ++k) {
        const toolstack::Held& h = g_held[k];
        if (h.info.state == control::State::shutdown || h.info.state == control::State::crashed) continue;
        const char* why = "";
        if (toolstack::ask_poweroff(uint16_t(h.id), &why)) {
            ++asked;
        } else if (refused++ == 0) {
            first_why = why;
            base::snformat(first, sizeof first, "%s", h.info.name);
        }
    }
    if (refused)
        status(control::Status::failed, "shutdown: %u domains asked, %u refused (first \"%s\": %s)", asked, refused,
               first, first_why);
    else if (n > control::kMaxListed)
        status(control::Status::ok, "%u domains asked; %zu more not yet: ask again", asked, n - control::kMaxListed);
    else
        g_rsp.status = control::Status::ok;
}

// Ctrl-] q on the system's console (docs/control.md, "The live demo"): the
// console service writes "shutdown" into kConsoleRequestNode (the builder's
// node, the console's to write, ours to read and empty); we take it and do
// what the host's `moat shutdown` with no name does, nothing more: the
// console gains no authority through us. Anything else there is ignored
// (said on our log, the first few times).
constexpr const char* kConsoleRequestNode = "/moat/console-request";
int g_console_request_watch = -1;   // our own watch on it (watch.hpp), or -1
bool g_console_request_again;       // the store did not answer: look again next tick
unsigned g_console_request_ignored;
uint64_t g_console_requests;

void console_request() {
    g_console_request_again = false;
    // More than "shutdown" is not a request we take: read no more than that
    // (a longer value is ERANGE: taken and ignored below).
    char value[16];
    auto r = rt::xs_read(kConsoleRequestNode, value, sizeof value);
    if (!r && r.error() != rt::XsError::range) {
        // Not there (the system has no console service) or unreadable:
        // nothing to take. A store that did not answer fires nothing more.
        g_console_request_again = r.error() == rt::XsError::timedout;
        return;
    }
    if (r && *r == 0) return;   // empty: no request (our own emptying fires too)
    // Taken: emptied before we act, so that a request is acted on once.
    if (auto w = rt::xs_write(kConsoleRequestNode, ""); !w) {
        rt::printf("cannot empty %s (%s): its request is not taken\n", kConsoleRequestNode,
                   rt::xs_error_name(w.error()));
        return;
    }
    if (!r || *r != __builtin_strlen("shutdown") || __builtin_memcmp(value, "shutdown", *r) != 0) {
        if (++g_console_request_ignored <= 4)
            rt::printf("%s held something other than \"shutdown\": ignored\n", kConsoleRequestNode);
        return;
    }
    // A console that asks again and again gets the same answer, said the
    // first few times, then at each power of two (a log that grows as log2).
    ++g_console_requests;
    if (g_console_requests <= 4)
        rt::printf("shutting the system down at the console's request (Ctrl-] q)\n");
    else if ((g_console_requests & (g_console_requests - 1)) == 0)
        rt::printf("the console asked %lu times to shut the system down\n", (unsigned long)g_console_requests);
    // The same as the host's `moat shutdown`; g_rsp is free between requests.
    __builtin_memset(&g_rsp, 0, sizeof g_rsp);
    shutdown_all();
    if (g_rsp.status != control::Status::ok || g_rsp.error[0])
        rt::printf("shutdown: %s\n", g_rsp.error[0] ? g_rsp.error : "failed");
    __builtin_memset(&g_rsp, 0, sizeof g_rsp);
}

// moat destroy NAME: asks the builder ("destroy" in kDestroyDir/NAME), which
// checks our `controls` again, destroys the domain for good and writes the
// outcome there ("done", "refused: why", "failed: why"); the node is removed
// whatever the outcome, so the next request for NAME starts afresh.
void destroy(const control::Request& q) {
    char path[64];
    base::snformat(path, sizeof path, "%s/%s", kDestroyDir, q.name);
    (void)rt::xs_rm(path);   // a stale outcome of a request we gave up on
    if (auto w = rt::xs_write(path, "destroy"); !w)
        return status(control::Status::failed, "destroy \"%s\": cannot ask the builder (%s: xenstore write %s)", q.name,
                      rt::xs_error_name(w.error()), path);
    uint64_t deadline = rt::now_ns() + kDestroyTimeoutNs;
    for (;;) {
        auto r = rt::xs_read(path, g_store_buf, sizeof g_store_buf);
        if (r && __builtin_strcmp(g_store_buf, "destroy") != 0) break;   // the builder's outcome
        if (!r && r.error() != rt::XsError::timedout) {
            status(control::Status::failed, "destroy \"%s\": the builder's answer cannot be read (%s: %s)", q.name,
                   rt::xs_error_name(r.error()), path);
            (void)rt::xs_rm(path);
            return;
        }
        if (rt::now_ns() > deadline) {
            status(control::Status::failed, "destroy \"%s\": the builder did not answer in %lu s", q.name,
                   kDestroyTimeoutNs / 1'000'000'000);
            (void)rt::xs_rm(path);
            return;
        }
        sleep_until(rt::now_ns() + kBusyTickNs);
    }
    (void)rt::xs_rm(path);
    // The builder's words, shown to a person: one printable line.
    for (char* c = g_store_buf; *c; ++c)
        if (uint8_t(*c) < 0x20 || uint8_t(*c) == 0x7f) *c = '?';
    const char* out = g_store_buf;
    if (__builtin_strcmp(out, "done") == 0) {
        g_rsp.status = control::Status::ok;
    } else if (__builtin_strncmp(out, "refused: ", 9) == 0) {
        status(control::Status::refused, "destroy \"%s\": the builder refused: %s", q.name, out + 9);
    } else {
        // "failed: why", or anything else the builder may say: a person reads it.
        const char* why = __builtin_strncmp(out, "failed: ", 8) == 0 ? out + 8 : out;
        if (!*why) why = "the builder's answer is empty";
        status(control::Status::failed, "destroy \"%s\": %s", q.name, why);
    }
}

// A note in an OK answer that left children out (too many for a frame, or
// names too long for the channel): how many it shows of how many.
void children_note(unsigned shown, unsigned total) {
    base::snformat(g_rsp.error, sizeof g_rsp.error, "%u of %u children listed (the rest do not fit in one answer)",
                   shown, total);
}

// moat xenstore: one XenStore request with our own connection and
// permissions (each waits at most kStoreTimeoutNs); the store's error comes
// back by name. The error's name goes first: a long path may be cut from
// the reason, the name never.
// Whether `path` (as the host wrote it: XenStore takes repeated slashes as
// one) is kConsoleInputDir or under it: our own channel to the console
// service, which delivers what is there to the domain it names. Only
// console_input writes there, after checking our Domain capability for that
// domain; the host's `moat xenstore` may not, or it could type into any
// console the console service serves.
bool in_console_channel(const char* path) {
    const char* want = toolstack::kConsoleInputDir;
    const char* p = path;
    for (;;) {
        if (*want == '/') {
            if (*p != '/') return false;
            while (*p == '/') ++p;
            ++want;
            continue;
        }
        if (!*want) return *p == '\0' || *p == '/';
        if (*p++ != *want++) return false;
    }
}

void xenstore(const control::Request& q) {
    if (q.xs_op == control::XsOp::watch || q.xs_op == control::XsOp::watch_read || q.xs_op == control::XsOp::unwatch)
        return toolstack::watch_request(q, g_rsp, g_store);
    const char* op = control::xs_op_name(q.xs_op);
    if ((q.xs_op == control::XsOp::write || q.xs_op == control::XsOp::rm) && in_console_channel(q.path))
        return status(control::Status::refused,
                      "xenstore %s %s: the toolstack's own channel to the console (moat console NAME types there, "
                      "for the domains it controls)",
                      op, q.path);
    if (!g_store)
        return status(control::Status::failed, "ENOTCONN: xenstore %s %s: the toolstack has no XenStore connection",
                      op, q.path);
    auto store_failed = [&](rt::XsError e) {
        status(control::Status::failed, "%s: xenstore %s %s", rt::xs_error_name(e), op, q.path);
    };
    switch (q.xs_op) {
    case control::XsOp::read: {
        auto r = rt::xs_read(q.path, g_store_buf, sizeof g_store_buf);
        if (!r) return store_failed(r.error());
        if (*r > control::kValueLen)
            return status(control::Status::failed,
                          "E2BIG: xenstore read %s: its value is %zu bytes, over the %zu of one answer", q.path, *r,
                          control::kValueLen);
        __builtin_memcpy(g_rsp.value, g_store_buf, *r);
        g_rsp.value_len = uint16_t(*r);
        g_rsp.status = control::Status::ok;
        return;
    }
    case control::XsOp::write: {
        auto w = rt::xs_write_bytes(q.path, q.value, q.value_len);
        if (!w) return store_failed(w.error());
        g_rsp.status = control::Status::ok;
        return;
    }
    case control::XsOp::rm: {
        auto w = rt::xs_rm(q.path);
        if (!w) return store_failed(w.error());
        g_rsp.status = control::Status::ok;
        return;
    }
    case control::XsOp::ls: {
        auto d = rt::xs_directory(q.path, g_store_buf, sizeof g_store_buf);
        if (!d) return store_failed(d.error());
        unsigned total = 0;
        for (const char* c = rt::xs_next_name(g_store_buf, *d, nullptr); c; c = rt::xs_next_name(g_store_buf, *d, c)) {
            ++total;
            // A name the channel cannot carry (over kChildLen) is left out, counted.
            if (g_rsp.n_children == control::kMaxChildren || !control::valid_child(c)) continue;
            base::snformat(g_rsp.children[g_rsp.n_children++], control::kChildLen + 1, "%s", c);
        }
        g_rsp.status = control::Status::ok;
        if (g_rsp.n_children < total) children_note(g_rsp.n_children, total);
        g_ls_total = total;
        return;
    }
    default: return status(control::Status::bad_request, "xenstore: no operation");
    }
}

// Fills g_rsp for one request payload.
void answer(const uint8_t* p, size_t n) {
    control::Request q;
    char err[control::kErrorLen + 1];
    control::Status s = control::decode_request(p, n, q, err, sizeof err);
    // Every field from zero: nothing of the last answer (its records, its
    // events, a list's domains) can leak into this one.
    __builtin_memset(&g_rsp, 0, sizeof g_rsp);
    g_rsp.version = control::kVersion;
    g_rsp.seq = q.seq;
    g_ls_total = 0;
    g_uploading = s == control::Status::ok && q.op == control::Op::upload;
    g_created = s == control::Status::ok && q.op == control::Op::create;
    if (s != control::Status::ok) {
        status(s, "%s", err);
        return;
    }
    toolstack::Held h;
    switch (q.op) {
    case control::Op::list: list(q.start); return;
    case control::Op::pause:
        if (!target(q, &h)) return;
        if (h.info.state == control::State::shutdown || h.info.state == control::State::crashed)
            return status(control::Status::failed, "pause \"%s\": it is stopped (%s)", q.name, control::state_name(h.info.state));
        if (long rc = toolstack::pause(h.id); rc != 0) return failed(q, "pause", rc);
        g_rsp.status = control::Status::ok;
        return;
    case control::Op::unpause:
        if (!target(q, &h)) return;
        if (h.info.state != control::State::paused)
            return status(control::Status::failed, "unpause \"%s\": it is not paused", q.name);
        if (long rc = toolstack::unpause(h.id); rc != 0) return failed(q, "unpause", rc);
        g_rsp.status = control::Status::ok;
        return;
    case control::Op::shutdown:
        if (!g_store)
            return status(control::Status::failed, "shutdown: the toolstack has no XenStore connection");
        if (!q.name[0]) return shutdown_all();
        if (!target(q, &h)) return;
        return shutdown_one(q, h);
    case control::Op::xenstore: return xenstore(q);
    case control::Op::destroy:
        // What we hold no capability for, we do not ask the builder for
        // either (which checks our `controls` itself).
        if (!target(q, &h)) return;
        if (!g_store)
            return status(control::Status::failed, "destroy \"%s\": the toolstack has no XenStore connection", q.name);
        return destroy(q);
    case control::Op::upload: return toolstack::upload(q, g_rsp);
    case control::Op::create: return toolstack::create(q, g_rsp, g_store);
    case control::Op::trace: return toolstack::trace(q, g_rsp);
    case control::Op::console_input: return toolstack::console_input(q, g_rsp, g_store);
    default: return status(control::Status::bad_request, "no operation");
    }
}

void respond() {
    size_t n = control::encode_response(g_rsp, g_payload, sizeof g_payload);
    // A list page too long for one frame: fewer domains (the host asks for
    // the rest from where the page ends: total says how many there are).
    while (n == 0 && g_rsp.n_domains > 1) {
        g_rsp.n_domains = uint16_t(g_rsp.n_domains - 1u);
        n = control::encode_response(g_rsp, g_payload, sizeof g_payload);
    }
    // An ls too long for one frame: fewer children, said so.
    while (n == 0 && g_rsp.n_children > 0) {
        g_rsp.n_children = uint16_t(g_rsp.n_children - 1);
        children_note(g_rsp.n_children, g_ls_total);
        n = control::encode_response(g_rsp, g_payload, sizeof g_payload);
    }
    if (n == 0) {   // cannot happen: a bare status with a short reason fits
        rt::printf("cannot encode the answer to request %u\n", g_rsp.seq);
        return;
    }
    size_t f = control::encode_frame(g_payload, n, g_frame, sizeof g_frame);
    kCom2.write(g_frame, f);
}

}  // namespace

void rt::main() {
    rt::events_init();
    if (!kCom2.held()) {
        rt::printf("no IoPorts capability for all of COM2 (0x2f8-0x2ff): no control channel; stopping\n");
        return;
    }
    g_store = bool(rt::xs_init());
    if (g_store) {
        rt::xs_set_timeout(kStoreTimeoutNs);
        toolstack::self_init();
        // Set before anything could be asked there; it fires once at once.
        g_console_request_watch = toolstack::own_watch(kConsoleRequestNode);
    } else {
        rt::printf("no XenStore: shutdown and xenstore requests will fail\n");
    }
    toolstack::create_init();
    g_crash_after_create = rt::has_arg("crash-after-create");
    kCom2.init(true);
    size_t n = toolstack::held(nullptr, 0);
    rt::printf("control channel on COM2, controlling %zu domains\n", n);

    uint64_t last_byte = 0, stream_until = 0;
    for (;;) {
        bool got = false;
        for (int c; (c = kCom2.read_byte()) >= 0;) {
            got = true;
            g_reader.put(uint8_t(c));
            while (g_reader.next()) {
                answer(g_reader.payload(), g_reader.payload_len());
                if (g_uploading) stream_until = rt::now_ns() + kStreamNs;
                if (g_rsp.status == control::Status::refused)
                    rt::printf("refused: %s\n", g_rsp.error);
                respond();
                if (g_created && g_crash_after_create) {
                    rt::printf("crash-after-create: crashing, as the command line asks\n");
                    rt::shutdown(abi::ShutdownReason::crash);
                }
            }
        }
        uint64_t now = rt::now_ns();
        if (g_store) toolstack::watch_tick(now);
        if (g_console_request_again || toolstack::own_watch_fired(g_console_request_watch)) console_request();
        if (got) last_byte = now;
        else if (g_reader.pending() && now - last_byte > kStaleFrameNs) g_reader.reset();
        // Others still run while we yield; a frame the host stops sending
        // half-way gets the ticks, not the spin.
        if ((g_reader.pending() && now - last_byte < kStreamNs) || now < stream_until) rt::sched_op(abi::SchedOp::yield);
        else sleep_until(now + (now - last_byte < kBusyWindowNs ? kBusyTickNs : kQuietTickNs));
    }
}
