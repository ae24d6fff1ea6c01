#pragma once
// The back-end half of every domain's PV console (io/console.h): the ring
// page (grant ref 0 of the domain), the port it offers, and the input focus.
// The rings are never trusted: indices are read once, bounded, and every
// access to a page goes through safe_copy (a destroyed domain's page goes
// away under us).

#include <cstddef>
#include <cstdint>

namespace console::backends {

// Domains served at once: each takes a page of our window and a Backend
// (~1.1 KiB), 5.2 MiB in all; an 8M console domain holds that with 2.5 MiB
// to spare (its image is 5.4 MiB).
inline constexpr unsigned kMax = 1024;

// Where whole lines go ("<name>: <text>\n").
using Sink = void (*)(const char* s, size_t n);
// `focus`: the name of the domain the keyboard goes to once it is served
// (the command line's focus=NAME; nullptr or empty: the first served).
void init(Sink sink, const char* focus = nullptr, size_t focus_len = 0);

bool serving(uint16_t dom);

// Maps grant ref 0 of `dom`, binds `remote_port` of it; `name` is what the
// store calls it (made safe here). False on failure, said once per domain.
bool connect(uint16_t dom, uint32_t remote_port, const char* name);

// Every ring's output to the sink, as whole lines; a line left unended for
// a second goes out as it is. True if some ring had output.
bool serve(uint64_t now_ns);

// Drains and lets go of every domain that left: `offers(dom, port)` says
// false (null: not asked), or our channel to it is no longer bound to its
// port (it was destroyed). O(domains served).
void reap(bool (*offers)(uint16_t dom, uint32_t port));
// The same for domain `dom` alone, if we serve it. O(1).
void reap_one(uint16_t dom, bool (*offers)(uint16_t dom, uint32_t port));

// A byte typed on COM1: Ctrl-] (0x1d) moves the focus to the next domain
// (and says which); a q right after a Ctrl-] is not delivered, and true is
// returned: the caller asks the system to end (store.hpp, ask_shutdown);
// anything else goes to the focused domain's in[] ring.
[[nodiscard]] bool input(char c);

// Bytes for domain `dom`'s in[] ring from elsewhere than COM1 (`moat
// console`'s typed keys, services/console/src/store.hpp), written as typed
// input is (what does not fit is dropped, said once, counted); Ctrl-] is a
// byte like any other here, and the focus does not move. False if we serve
// no console of `dom`.
bool input_to(uint16_t dom, const char* s, size_t n);

}  // namespace console::backends
