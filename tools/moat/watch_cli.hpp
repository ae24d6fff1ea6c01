// `moat xenstore watch PATH`: as xenstore-watch, through the toolstack
// (docs/control.md, "moat xenstore watch").
#pragma once

#include <string>

namespace moat::cli {

struct WatchOptions {
  std::string socket;     // the system's control socket
  std::string system;     // its name, for messages
  std::string path;       // a valid XenStore path (the caller checked it)
  long count = 0;         // stop after this many fired paths (0: until interrupted)
  double seconds = 0;     // stop after this long (0: until interrupted)
  double timeout = 10;    // each exchange's deadline
  // Leave the watch set when done (a count or seconds reached): a later
  // watch of the same path takes over what it queued meanwhile. Unread, it
  // lapses in the toolstack after 10 s of the system's time.
  bool keep = false;
};

// Sets the watch, prints each fired path on its own line as it comes
// (polling the toolstack every 100 ms), and removes the watch when done
// (unless `keep`): after `count` paths, after `seconds`, on SIGINT/SIGTERM,
// or on an error. A watch already set on the path (kept) is taken over.
// Exit status: 0, or 1 with the reason on stderr as `moat xenstore: ...`.
[[nodiscard]] int xenstore_watch(const WatchOptions& o);

}  // namespace moat::cli
