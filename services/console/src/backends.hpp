#pragma once
// The back-end half of every domain's PV console (io/console.h): the ring
// page (grant ref 0 of the domain), the port it offers, and the input focus.
// The rings are never trusted: indices are read once, bounded, and every
// access to a page goes through safe_copy (a destroyed domain's page goes
// away under us).

#include <cstddef>
#include <cstdint>

namespace console::backends {

inline constexpr unsigned kMax = 128;  // domains served at once

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
// port (it was destroyed). `left(dom)` (may be null) hears of each.
void reap(bool (*offers)(uint16_t dom, uint32_t port), void (*left)(uint16_t dom));

// A byte typed on COM1: Ctrl-] (0x1d) moves the focus to the next domain
// (and says which); anything else goes to the focused domain's in[] ring.
void input(char c);

}  // namespace console::backends
