#pragma once
// The domains this toolstack may act on: exactly those it holds a Domain
// capability with the control right for (the builder installs one for each
// name in the manifest's `controls`, again after each restart), found by
// walking our CSpace at each request, so a domain that went (its capability
// revoked) or came back (a new one installed) is seen as it is now.

#include <control/messages.hpp>

#include <cstddef>
#include <cstdint>

namespace toolstack {

// Our own name and id, from our XenStore home (the builder writes them);
// "toolstack" and 0xFFFF without a store.
void self_init();
const char* self_name();
// Our own line of `moat list`: from start_info and our vCPU's runstate (we
// hold no Domain capability for ourselves: none that would let us raise our
// own weight). So its moat top counters (events_sent, grant_ops,
// grant_copy_bytes), which only getinfo reports, are 0.
control::DomainInfo self_info();

// A domain we hold a capability for, as getinfo sees it now.
struct Held {
    uint16_t id;
    control::DomainInfo info;
};
// Fills out[0..cap) with those we hold from the skip-th on, in CSpace
// order, each once; returns how many we hold in all (the first `skip` and
// those past cap are counted, not filled).
size_t held(Held* out, size_t cap, size_t skip = 0);
// The one called `name`, if we hold it.
[[nodiscard]] bool find(const char* name, Held* out);
// Whether `name` was ever one of ours (seen in a getinfo): a controlled
// domain that is down now (stopped and destroyed, maybe being restarted)
// is NO_SUCH_DOMAIN rather than REFUSED.
[[nodiscard]] bool seen(const char* name);

// domctl pause / unpause with our capability: 0 or a negative errno.
[[nodiscard]] long pause(uint16_t id);
[[nodiscard]] long unpause(uint16_t id);
// Asks the domain to power off as Xen's toolstack does: "poweroff" in its
// control/shutdown node (the builder lets us write it). 0, or the XenStore
// error's name in why.
[[nodiscard]] bool ask_poweroff(uint16_t id, const char** why);

}  // namespace toolstack
