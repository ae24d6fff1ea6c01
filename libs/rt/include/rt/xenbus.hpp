#pragma once
// A synchronous XenStore client (Xen's xenbus) over a domain's store ring:
// struct xenstore_domain_interface on one page shared with the XenStore
// domain, and an event channel to it (docs/system.md).
//
// Every call sends one request and waits for its reply; watch events that
// arrive meanwhile are queued (bounded: 16 KiB, the oldest kept, a counter
// for the rest) and handed out by xs_next_watch_event / xs_wait_watch_event.
// Waits sleep on the store port (sched_op poll, with event delivery masked
// while the port is looked at), never spin.
//
// Errors carry Xen's error names (XsError, xs_error_name): the store's
// (EACCES, ENOENT, EAGAIN, EQUOTA, ...) and a few of the client's own
// (ERANGE: the caller's buffer is too small; ETIMEDOUT; EPROTO: a reply that
// makes no sense, or a broken ring, after which the connection is unusable;
// ENOTCONN: not initialised).
//
// Usage: xs_init() once (the store page from start_info), or, for a client
// that set up its own ring and port (the builder), xs_init(ring_va, port).
// Then xs_read/xs_write/... Not reentrant: one caller at a time (domains are
// single-threaded; do not call from an event handler).
//
// XsClient is the same client as a class, for code that wants more than one
// connection or its own way to wait (the hosted tests drive it against the
// ring server in plain memory).

#include <cstddef>
#include <cstdint>

#include <abi/xs_wire.hpp>
#include <base/result.hpp>

namespace rt {

enum class XsError : uint8_t {
    // The store's, by name (XS_ERROR replies).
    inval, acces, exist, isdir, noent, nomem, nospc, io, notempty, nosys, rofs, busy, again, isconn, too_big, perm,
    quota,  // "EQUOTA"
    // The client's.
    range,     // "ERANGE": the reply does not fit the caller's buffer (it was consumed)
    timedout,  // "ETIMEDOUT": no reply before the deadline (xs_set_timeout)
    proto,     // "EPROTO": broken ring or malformed reply; the connection is given up
    notconn,   // "ENOTCONN": xs_init not called, or it failed
};

// "EACCES", "ENOENT", ...; never null.
const char* xs_error_name(XsError e);
// The XsError for a name the store sent (n bytes, no NUL); EINVAL for names
// it does not know (as Linux does).
XsError xs_error_from_name(const char* s, size_t n);

template <typename T>
using XsResult = base::Result<T, XsError>;
using XsStatus = base::Status<XsError>;

// One permission entry: a domain and 'n' (none), 'r', 'w' or 'b' (both).
// Entry 0 names the owner, and its access is what unlisted domains get.
struct XsPerm {
    uint16_t dom;
    char access;
};

// A watch event: the path that changed (relative if the watch was
// registered relative) and the watch's token, NUL-terminated, in buf.
struct XsWatchEvent {
    const char* path;
    const char* token;
    char buf[abi::kXenstorePayloadMax + 2];
};

inline constexpr size_t kXsEventQueueBytes = 16384;

class XsClient {
public:
    // How the client sleeps and kicks the store. wait returns false once
    // `deadline` (ns, now()'s clock; 0: none) has passed, true when the
    // store may have moved something (spurious returns are fine).
    struct Io {
        void* ctx;
        void (*notify)(void* ctx);
        bool (*wait)(void* ctx, uint64_t deadline);
        uint64_t (*now)(void* ctx);  // may be null: no timeouts
    };

    // Starts using `ring` (the page must stay mapped). The client's indices
    // start from the page's (zero on a fresh page).
    void init(abi::XenstoreDomainInterface* ring, Io io);
    bool connected() const { return ring_ != nullptr && !broken_; }
    // Relative time allowed for each reply (0: wait forever, the default).
    void set_timeout(uint64_t ns) { timeout_ns_ = ns; }

    XsResult<size_t> read(const char* path, char* buf, size_t cap, uint32_t tx = 0);
    XsStatus write(const char* path, const char* value, uint32_t tx = 0);
    XsStatus write_bytes(const char* path, const void* value, size_t len, uint32_t tx = 0);
    XsStatus mkdir(const char* path, uint32_t tx = 0);
    XsStatus rm(const char* path, uint32_t tx = 0);
    XsResult<size_t> directory(const char* path, char* buf, size_t cap, uint32_t tx = 0);
    XsResult<size_t> get_perms(const char* path, XsPerm* out, size_t cap, uint32_t tx = 0);
    XsStatus set_perms(const char* path, const XsPerm* perms, size_t n, uint32_t tx = 0);
    XsStatus watch(const char* path, const char* token);
    XsStatus unwatch(const char* path, const char* token);
    XsResult<uint32_t> transaction_start();
    XsStatus transaction_end(uint32_t tx, bool commit);
    XsResult<size_t> get_domain_path(uint16_t dom, char* buf, size_t cap);
    XsStatus introduce(uint16_t dom, uint64_t mfn, uint32_t port);
    XsStatus release(uint16_t dom);
    XsResult<bool> is_domain_introduced(uint16_t dom);
    XsStatus reset_watches();

    // A queued (or already arrived) watch event, without waiting.
    bool next_watch_event(XsWatchEvent& ev);
    // Waits for one; ETIMEDOUT once `deadline` (absolute ns; 0: none) passes.
    XsStatus wait_watch_event(XsWatchEvent& ev, uint64_t deadline = 0);
    // Events dropped because the queue was full.
    uint64_t dropped_watch_events() const { return dropped_; }

    // One request: `type`, payload the concatenation of `parts`; the reply's
    // payload goes to buf (ERANGE and nothing usable if it has more than cap
    // bytes). Returns the reply's payload length.
    struct Part {
        const void* p;
        size_t n;
    };
    XsResult<size_t> request(abi::XsType type, uint32_t tx, const Part* parts, size_t nparts, char* buf, size_t cap);

private:
    // Takes response bytes off the ring; true when msg_hdr_/msg_ hold a whole message.
    bool pump(bool& moved);
    base::Err<XsError> fail();
    // The store marked the ring broken (the error field, if it offers one).
    bool store_gave_up() const;
    uint64_t deadline_from_timeout() const;
    bool wait(uint64_t deadline);
    void queue_event();

    abi::XenstoreDomainInterface* ring_ = nullptr;
    Io io_{};
    bool broken_ = false;
    uint64_t timeout_ns_ = 0;
    uint32_t next_req_id_ = 0;
    abi::XenstoreRingIdx req_prod_ = 0;  // private: what we produced
    abi::XenstoreRingIdx rsp_cons_ = 0;  // private: what we consumed
    // The message being received.
    uint32_t msg_have_ = 0;
    abi::XsdSockmsg msg_hdr_{};
    char msg_[abi::kXenstorePayloadMax] = {};
    // Queued watch events: [u32 length][payload] records in a byte ring.
    uint32_t ev_head_ = 0, ev_tail_ = 0;
    uint64_t dropped_ = 0;
    uint8_t events_[kXsEventQueueBytes] = {};
};

// The domain's own client (what the xs_* functions use).
XsClient& xs_client();

// Connects to the store ring start_info names (store_mfn, store_evtchn):
// maps the page over a page of the runtime. ENOTCONN if there is none or
// the mapping fails.
XsStatus xs_init();
// Connects to a ring the caller set up itself (the builder: its own page,
// granted to the XenStore domain as ref 1, and its port for it).
XsStatus xs_init(void* ring_va, uint32_t port);
// The store port in use (0 before xs_init).
uint32_t xs_port();
// Relative time allowed for each reply (0: forever, the default).
void xs_set_timeout(uint64_t ns);

// Reads path's value into buf (NUL-terminated: cap must exceed the value's
// length, else ERANGE); returns the value's length.
XsResult<size_t> xs_read(const char* path, char* buf, size_t cap, uint32_t tx = 0);
// A value that is a decimal number (as nodes like domid, port and state
// hold); EINVAL if it is something else.
XsResult<uint64_t> xs_read_number(const char* path, uint32_t tx = 0);
// A NUL-terminated value (without its NUL), or len bytes of anything.
XsStatus xs_write(const char* path, const char* value, uint32_t tx = 0);
XsStatus xs_write_bytes(const char* path, const void* value, size_t len, uint32_t tx = 0);
XsStatus xs_mkdir(const char* path, uint32_t tx = 0);
XsStatus xs_rm(const char* path, uint32_t tx = 0);
// The children's names, each NUL-terminated, one after the other, into buf;
// returns the bytes used (0: no children). xs_next_name walks them.
XsResult<size_t> xs_directory(const char* path, char* buf, size_t cap, uint32_t tx = 0);
// The name after `cur` (nullptr: the first) in a directory listing of len bytes, or nullptr.
const char* xs_next_name(const char* buf, size_t len, const char* cur);
// Fills out[0..n) (owner first); returns n (ERANGE if more than cap).
XsResult<size_t> xs_get_perms(const char* path, XsPerm* out, size_t cap, uint32_t tx = 0);
XsStatus xs_set_perms(const char* path, const XsPerm* perms, size_t n, uint32_t tx = 0);
XsStatus xs_watch(const char* path, const char* token);
XsStatus xs_unwatch(const char* path, const char* token);
XsResult<uint32_t> xs_transaction_start();
// EAGAIN: the transaction conflicted with another change and did nothing; retry it.
XsStatus xs_transaction_end(uint32_t tx, bool commit);
XsResult<size_t> xs_get_domain_path(uint16_t dom, char* buf, size_t cap);
// Master only: XS_INTRODUCE dom <mfn> <port> / XS_RELEASE dom.
XsStatus xs_introduce(uint16_t dom, uint64_t mfn, uint32_t port);
XsStatus xs_release(uint16_t dom);
XsResult<bool> xs_is_domain_introduced(uint16_t dom);
bool xs_next_watch_event(XsWatchEvent& ev);
// Blocks until a watch event arrives, or ETIMEDOUT at `deadline` (absolute
// system time in ns, rt::now_ns(); 0: no deadline).
XsStatus xs_wait_watch_event(XsWatchEvent& ev, uint64_t deadline = 0);

}  // namespace rt
