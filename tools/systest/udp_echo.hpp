// The host side of the network system tests: a UDP client on the host's own
// network stack that sends datagrams through QEMU's forwarded port into the
// guest network and checks that each comes back byte for byte.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace moat::systest {

// A free UDP port on 127.0.0.1 (bound and released: QEMU binds it next).
int free_udp_port();

class UdpEchoClient {
 public:
  // Sends `count` datagrams of varied sizes (4 to 1472 bytes) to
  // 127.0.0.1:port, one at a time, each until its echo arrives (resent
  // every 2 s, at most 15 times), then a final "moat-udp-done" datagram.
  void start(int port, int count);
  // Waits for the client to end (it ends by itself once every datagram came
  // back or one was given up on).
  void join();
  bool started() const { return thread_.joinable() || finished_; }
  // After join(): all echoed byte for byte?
  bool ok() const { return ok_; }
  // After join(): a line for the log ("N/N datagrams ... ").
  const std::string& summary() const { return summary_; }
  // Asks the client to stop early (QEMU ended).
  void cancel() { cancel_ = true; }

 private:
  void run(int port, int count);
  std::thread thread_;
  std::atomic<bool> cancel_{false};
  bool finished_ = false;
  bool ok_ = false;
  std::string summary_;
};

}  // namespace moat::systest
