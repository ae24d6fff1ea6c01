#pragma once
// `moat console NAME`'s typed keys (docs/control.md, "moat console"): the
// toolstack checks NAME as it does for pause (only a domain it holds a
// Domain capability for: one in its `controls`, or one it created) and
// hands the bytes to the console service, the only one that writes into
// guests' console rings, through XenStore: one node
// kConsoleInputDir/<seq> = "<domid> <bytes>" a request, seq increasing, so
// that what several requests wrote before the console read them is all kept,
// in order. The builder makes the directory (ours to write in, the console's
// to read and empty: services/builder/src/store.hpp). We wait for nothing
// more than the write (at most the store's timeout): OK means "given to the
// console service", not "read by the guest".

#include <control/messages.hpp>

namespace toolstack {

// Where the console service takes input (services/console/src/store.hpp).
inline constexpr const char* kConsoleInputDir = "/moat/console-input";

// Request.console_input: sets r.status (and r.error). `store`: whether
// XenStore answered at start.
void console_input(const control::Request& q, control::Response& r, bool store);

}  // namespace toolstack
