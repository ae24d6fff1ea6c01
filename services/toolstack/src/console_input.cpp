#include "console_input.hpp"

#include "domains.hpp"

#include <base/format.hpp>
#include <rt/xenbus.hpp>

namespace toolstack {

namespace {

// The next node's number: increasing for as long as we run (a restarted
// toolstack starts afresh at 0 in a directory the builder made afresh).
uint64_t g_seq;

void say(control::Response& r, control::Status s, const char* what, const char* name, const char* why) {
    r.status = s;
    base::snformat(r.error, sizeof r.error, "%s \"%s\": %s", what, name, why);
}

}  // namespace

void console_input(const control::Request& q, control::Response& r, bool store) {
    constexpr const char* kWhat = "console input for";
    // As pause's target(): ourselves, a domain we hold no capability for,
    // one of ours that is down.
    if (__builtin_strcmp(q.name, self_name()) == 0)
        return say(r, control::Status::refused, kWhat, q.name, "the toolstack's own console takes no input from the host");
    Held h;
    if (!find(q.name, &h)) {
        if (seen(q.name))
            return say(r, control::Status::no_such_domain, kWhat, q.name,
                       "it is not running now (stopped, or being restarted)");
        return say(r, control::Status::refused, kWhat, q.name,
                   "the toolstack holds no Domain capability for it (the host may type only into the consoles of "
                   "domains the toolstack controls)");
    }
    if (h.info.state == control::State::shutdown || h.info.state == control::State::crashed)
        return say(r, control::Status::failed, kWhat, q.name, "it is stopped: nothing reads its console");
    if (!store) return say(r, control::Status::failed, kWhat, q.name, "the toolstack has no XenStore connection");
    // The decoder bounds the input (1 to kInputLen bytes); the value is its
    // domain id, a space and the bytes as they are.
    if (q.input_len == 0 || q.input_len > control::kInputLen)
        return say(r, control::Status::bad_request, kWhat, q.name, "expected 1 to 256 bytes of input");
    char value[8 + control::kInputLen];
    size_t n = base::snformat(value, sizeof value, "%u ", unsigned(h.id));
    __builtin_memcpy(value + n, q.input, q.input_len);
    n += q.input_len;
    char path[64];
    base::snformat(path, sizeof path, "%s/%lu", kConsoleInputDir, static_cast<unsigned long>(g_seq));
    auto w = rt::xs_write_bytes(path, value, n);
    if (!w) {
        // EACCES: no directory (the system has no console service, or the
        // builder did not make it); EQUOTA: the console service is not
        // taking what we gave it (our node quota is full of it).
        char why[96];
        base::snformat(why, sizeof why, "the console service cannot be given it (%s: xenstore write %s)",
                       rt::xs_error_name(w.error()), path);
        return say(r, control::Status::failed, kWhat, q.name, why);
    }
    ++g_seq;
    r.status = control::Status::ok;
}

}  // namespace toolstack
