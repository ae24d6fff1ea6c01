#pragma once
// Everything the console domain asks XenStore (through rt/xenbus.hpp): which
// domains have a console for it, what they are called, and the
// @introduceDomain / @releaseDomain watches.
//
// Which domain left, on @releaseDomain: XenStore does not say (Xen's does
// not either; xenconsoled asks the hypervisor, which we may not). A domain
// counts as gone when its /local/domain/X/console/port can no longer be read
// or names another port; a watch on that node (the builder removes the
// domain's directory right after XS_RELEASE) says when to look. The event
// channel check in backends.cpp catches a domain destroyed without that.

#include <cstddef>
#include <cstdint>

namespace console::store {

// Connects to start_info's store ring (no request yet). False: no
// XenStore; the console then serves the kernel log only.
bool init();

// Sets both watches (and learns our own id) unless done already; true once
// they are set. Each request waits 100 ms at most: call again later while
// false (the store may not have started yet).
bool up();

// Our own domain id (the "domid" node the builder writes), -1 if unknown.
long self();

// Watch events that came since the last call: @introduceDomain,
// @releaseDomain, a served domain's console node changed.
struct Events {
    bool introduced = false, released = false, changed = false;
};
Events take_events();

// Watches /local/domain/<dom>/console/port while we serve that domain.
void watch_console(uint16_t dom);
void unwatch_console(uint16_t dom);

// Calls found(dom) for every domain whose console port we may read: the
// /local/domain listing if we may read it, else every id below kScanMax.
inline constexpr unsigned kScanMax = 64;
void for_each_domain(void (*found)(void* ctx, uint16_t dom), void* ctx);

// The port domain `dom` offers its console on, and its name (NUL-terminated,
// as the store has it). False if unreadable.
bool console_of(uint16_t dom, uint32_t* port, char* name, size_t name_cap);

// False once /local/domain/<dom>/console/port is gone (ENOENT, EACCES) or
// names another port; true while it reads `port`, or the store does not
// answer (that says nothing about the domain).
bool still_offers(uint16_t dom, uint32_t port);

}  // namespace console::store
