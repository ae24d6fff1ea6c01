#pragma once
// moat xenstore watch PATH: XenStore watches the host holds through the
// toolstack (docs/control.md, "moat xenstore watch"). The host sets a watch
// (WATCH), then polls for the paths that fired (WATCH_READ), and removes it
// (UNWATCH). A watch is the toolstack's own XenStore watch, with its own
// permissions: XenStore fires it only for nodes the toolstack may read.
//
// The toolstack holds at most kMaxWatches; each queues at most kQueued fired
// paths (more are counted as dropped and said in the next WATCH_READ). A
// host that goes away without UNWATCH (killed, its connection lost) cannot
// pin them: a watch not read for kLeaseNs of guest time is removed.

#include <control/messages.hpp>

#include <cstdint>

namespace toolstack {

inline constexpr unsigned kMaxWatches = 4;
inline constexpr unsigned kQueued = 16;
inline constexpr uint64_t kLeaseNs = 10'000'000'000;

// WATCH, WATCH_READ or UNWATCH of q.path; fills rsp's status, error and
// events. `store`: whether the toolstack has a XenStore connection.
void watch_request(const control::Request& q, control::Response& rsp, bool store);

// Moves arrived watch events to their watches' queues and removes the
// watches whose lease ran out (at `now`, guest ns). Called from the main
// loop between requests, so that events are not left in the XenStore
// client's queue (where they would crowd out the next ones).
void watch_tick(uint64_t now);

// Watches held now (tests, logs).
unsigned watches_held();

// The toolstack's own watches (not the host's: they count against nothing
// above, never lapse, and their tokens, "toolstack-own-<k>", are never one
// of the host's "moat-ctl-..."). Their events only raise a flag, taken by
// own_watch_fired(), so that the main loop acts on them between requests,
// never in the middle of one (an event may arrive while a host's request is
// being answered). At most kMaxOwnWatches; own_watch returns its index, or
// -1 if the store refused it (said on our log).
inline constexpr unsigned kMaxOwnWatches = 2;
[[nodiscard]] int own_watch(const char* path);
// Whether watch `k` fired since the last call (several events: once).
[[nodiscard]] bool own_watch_fired(int k);

}  // namespace toolstack
