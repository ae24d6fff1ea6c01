#include "udp_echo.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <vector>

namespace moat::systest {

int free_udp_port() {
  // The kernel may hand a just-released port out again: never the same one
  // twice in this process.
  static std::set<int> given;
  for (int attempt = 0; attempt < 16; ++attempt) {
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(s);
    if (port && given.insert(port).second) return port;
  }
  return 0;
}

void UdpEchoClient::start(int port, int count) { thread_ = std::thread([this, port, count] { run(port, count); }); }

void UdpEchoClient::join() {
  if (thread_.joinable()) thread_.join();
}

namespace {

// Datagram i: its number, then bytes of a simple generator; sizes cycle
// through small, odd and near-MTU lengths.
std::vector<unsigned char> datagram(int i) {
  static const size_t sizes[] = {4, 64, 1472, 333, 1000, 17, 512, 1471};
  std::vector<unsigned char> d(sizes[size_t(i) % (sizeof sizes / sizeof sizes[0])]);
  uint32_t x = 0x9E3779B9u * uint32_t(i + 1);
  for (size_t k = 0; k < d.size(); ++k) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    d[k] = static_cast<unsigned char>(x);
  }
  std::memcpy(d.data(), &i, 4);
  return d;
}

}  // namespace

void UdpEchoClient::run(int port, int count) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(uint16_t(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int echoed = 0, resent = 0, mismatched = 0;
  std::string failure;
  for (int i = 0; i < count && failure.empty() && !cancel_; ++i) {
    auto d = datagram(i);
    bool back = false;
    for (int attempt = 0; attempt < 15 && !back && !cancel_; ++attempt) {
      if (attempt) ++resent;
      ::sendto(s, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      // Wait up to 2 s for this datagram's echo; echoes of earlier ones
      // (after a resend) are recognised by their number and dropped.
      for (int waited = 0; waited < 20 && !back && !cancel_; ++waited) {
        pollfd p{s, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        unsigned char buf[2048];
        ssize_t n = ::recv(s, buf, sizeof buf, 0);
        if (n < 4) continue;
        int seq;
        std::memcpy(&seq, buf, 4);
        if (seq != i) continue;
        if (size_t(n) == d.size() && std::memcmp(buf, d.data(), d.size()) == 0) {
          back = true;
        } else {
          ++mismatched;
          failure = "datagram " + std::to_string(i) + " (" + std::to_string(d.size()) + " bytes) came back as " +
                    std::to_string(n) + " different bytes";
          break;
        }
      }
      if (!failure.empty()) break;
    }
    if (back) ++echoed;
    else if (failure.empty()) failure = cancel_ ? "QEMU ended first" : "datagram " + std::to_string(i) + " never came back";
  }
  // The end marker, until its echo comes back (it may be lost as any
  // datagram may): the guest stops serving when it sees it.
  static const char kDone[] = "moat-udp-done";
  bool done_back = false;
  for (int attempt = 0; attempt < 15 && !done_back && !cancel_; ++attempt) {
    ::sendto(s, kDone, sizeof kDone - 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    for (int waited = 0; waited < 20 && !done_back && !cancel_; ++waited) {
      pollfd p{s, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      unsigned char buf[2048];
      ssize_t n = ::recv(s, buf, sizeof buf, 0);
      done_back = n == ssize_t(sizeof kDone - 1) && std::memcmp(buf, kDone, sizeof kDone - 1) == 0;
    }
  }
  ::close(s);
  ok_ = failure.empty() && echoed == count;
  summary_ = "udp echo: " + std::to_string(echoed) + "/" + std::to_string(count) +
             " datagrams came back byte for byte (" + std::to_string(resent) + " resent" +
             (mismatched ? ", " + std::to_string(mismatched) + " mismatched" : "") + ")" +
             (failure.empty() ? "" : ": " + failure);
  finished_ = true;
}

}  // namespace moat::systest
