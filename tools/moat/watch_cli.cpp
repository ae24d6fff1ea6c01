// moat xenstore watch (watch_cli.hpp). The toolstack holds the watch (its own
// XenStore watch, with its own permissions) and queues what fires; we poll.
// A watch we fail to remove (the system stopped answering, we were killed)
// lapses in the toolstack after 10 s unread (services/toolstack/src/watch.hpp).

#include "watch_cli.hpp"

#include "control_client.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>
#include <thread>

namespace moat::cli {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

uint32_t fresh_seq() {
  std::random_device rd;
  return uint32_t(rd()) | 1u;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "moat xenstore: %s\n", message.c_str());
  return 1;
}

// One exchange of a watch operation; "" and *out, or why it failed.
std::string ask(const WatchOptions& o, control::XenstoreRequest::Op op, control::Response* out) {
  control::Request q = control::make_request(fresh_seq());
  q.mutable_xenstore()->set_op(op);
  q.mutable_xenstore()->set_path(o.path);
  auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.timeout));
  control::Exchange x = control::exchange(o.socket, q, std::chrono::steady_clock::now() + span);
  if (std::string why = control::unanswered(x, o.system, o.socket, o.timeout); !why.empty()) return why;
  const control::Response& r = x.response;
  if (r.status() != control::OK) {
    const char* kind = r.status() == control::REFUSED ? "refused: " : r.status() == control::FAILED ? "failed: " : "";
    return std::string(kind) + r.error();
  }
  *out = r;
  return "";
}

}  // namespace

int xenstore_watch(const WatchOptions& o) {
  g_stop = false;
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int, old_term;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  auto restore = [&] {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  };

  control::Response r;
  if (std::string why = ask(o, control::XenstoreRequest::WATCH, &r); !why.empty()) {
    restore();
    return fail("watch " + o.path + ": " + why);
  }
  auto start = std::chrono::steady_clock::now();
  long printed = 0;
  std::string error;
  while (!g_stop) {
    if (std::string why = ask(o, control::XenstoreRequest::WATCH_READ, &r); !why.empty()) {
      error = "watch " + o.path + ": " + why;
      break;
    }
    if (!r.error().empty()) std::fprintf(stderr, "moat xenstore: note: %s\n", r.error().c_str());
    bool done = false;
    for (const std::string& p : r.events()) {
      std::printf("%s\n", p.c_str());   // check_response: each a valid XenStore path
      if (o.count > 0 && ++printed >= o.count) {
        done = true;
        break;
      }
    }
    std::fflush(stdout);
    if (done) break;
    if (o.seconds > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= o.seconds)
      break;
    // Three paths an answer: ask again at once while the queue has more.
    if (r.events_size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Removed on every way out but a dead system (where it lapses by itself)
  // and a kept watch (the user asked; interrupted, it is removed all the same).
  control::Response ignored;
  bool remove = error.empty() && (!o.keep || g_stop);
  std::string why = remove ? ask(o, control::XenstoreRequest::UNWATCH, &ignored) : "";
  restore();
  if (!error.empty()) return fail(error);
  if (!why.empty()) return fail("unwatch " + o.path + ": " + why);
  return 0;
}

}  // namespace moat::cli
