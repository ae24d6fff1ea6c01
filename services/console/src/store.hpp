#pragma once
// Everything the console domain asks XenStore (through rt/xenbus.hpp): which
// domains have a console for it and what they are called.
//
// Which domains: the builder names each domain whose console we serve as
// /local/domain/<us>/backend/console/<id> before it starts it, and removes
// that node before it releases the domain (docs/system.md). We watch that
// directory, so each event names the one domain that came or went: an
// introduction costs us a read of its console port and name, whatever the
// number of domains (XenStore's @introduceDomain says no more than that
// someone came, and rescanning every domain on each one made booting N
// domains cost O(N^2)). The event channel check in backends.cpp catches a
// domain destroyed without its node going.

#include <cstddef>
#include <cstdint>

namespace console::store {

// Connects to start_info's store ring (no request yet). False: no
// XenStore; the console then serves the kernel log only.
bool init();

// Sets the watch on our backend/console directory (and learns our own id)
// unless done already; true once set. Each request waits 100 ms at most:
// call again later while false (the store may not have started yet).
bool up();

// Our own domain id (the "domid" node the builder writes), -1 if unknown.
long self();

// Watch events that came since the last call: touched(ctx, dom) for each
// domain whose node in our directory came or went; true if every domain
// must be looked at again (the watch was just set, which fires once at
// once, or the client dropped events).
bool take_events(void (*touched)(void* ctx, uint16_t dom), void* ctx);

// Calls found(ctx, dom) for every domain named in our directory (the whole
// listing: at start and after dropped events).
void for_each_domain(void (*found)(void* ctx, uint16_t dom), void* ctx);

// The port domain `dom` offers its console on, and its name (NUL-terminated,
// as the store has it). False if unreadable.
bool console_of(uint16_t dom, uint32_t* port, char* name, size_t name_cap);

// False once /local/domain/<dom>/console/port is gone (ENOENT, EACCES) or
// names another port; true while it reads `port`, or the store does not
// answer (that says nothing about the domain).
bool still_offers(uint16_t dom, uint32_t port);

// `moat console NAME`'s typed keys (docs/control.md): the toolstack writes
// each request as kInputDir/<seq> = "<domid> <bytes>" (seq increasing, 1
// to kInputMax bytes); the builder made the directory ours to read and
// empty. up() watches it too; take_events notes that it changed.
inline constexpr const char* kInputDir = "/moat/console-input";
inline constexpr size_t kInputMax = 256;
// Nodes looked at per call: a toolstack that writes many (its XenStore
// quota bounds them) costs us at most this many reads and removals a tick;
// the rest wait for the next one.
inline constexpr unsigned kInputPerTick = 16;

// Whether input may be waiting (the directory changed, the watch was just
// set, or events were dropped, and not all was taken since).
bool input_pending();

// Takes up to kInputPerTick nodes of kInputDir, lowest seq first: each is
// read and removed, and then `deliver(ctx, dom, bytes, n)` is called with
// its bytes (n 1 to kInputMax); deliver returns false if it serves no
// console of `dom`. A node that is malformed (its name not a number, its
// value not "<domid> <1 to kInputMax bytes>", a domid not served) is
// removed, not delivered, and said on our log (the first few; the rest
// counted). A node we can neither read nor remove is skipped.
void take_input(bool (*deliver)(void* ctx, uint16_t dom, const char* bytes, size_t n), void* ctx);

// Ctrl-] q (docs/control.md, "The live demo"): we ask the toolstack to shut
// the system down, as the host's `moat shutdown` does, by writing
// kShutdownRequest into kRequestNode. We have no authority over any domain
// and get none: the builder makes the node (when the system has a
// toolstack) ours to write but not to read, and the toolstack's to read and
// empty; the toolstack decides. Without a toolstack the node is not there
// and we may not make it (XenStore refuses: /moat is the builder's).
inline constexpr const char* kRequestNode = "/moat/console-request";
inline constexpr const char* kShutdownRequest = "shutdown";

// Writes the request, saying so on our log, and why not when the write
// fails (no toolstack, no XenStore, a store that does not answer): nothing
// else happens then. Waits at most the store's reply timeout (100 ms).
void ask_shutdown();

}  // namespace console::store
