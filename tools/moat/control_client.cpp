#include "control_client.hpp"

#include "control_frame.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <set>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace moat::control {

namespace {

using Clock = std::chrono::steady_clock;

// What the toolstack can report, at most: the kernel's domain and vCPU limits
// are far below these; they only keep nonsense out of the table.
constexpr uint32_t kMaxDomainId = 0x7fef;    // DOMID_FIRST_RESERVED - 1
constexpr uint32_t kMaxVcpus = 128;
constexpr size_t kMaxNameLength = 32;        // manifest names (abi::kConsoleNameMax)
// XenStore over the channel (proto/control.proto: XenstoreRequest).
constexpr size_t kMaxValueLength = 512;
constexpr size_t kMaxChildLength = 64;
constexpr size_t kMaxPathLength = 256;
constexpr size_t kMaxEvents = 3;               // xenstore WATCH_READ's fired paths
// moat trace: whole records, at most kMaxRecordsBytes an answer; cpus, the
// number of per-CPU buffers, 1 to kMaxCpus (far above any machine QEMU or
// the kernel runs: only nonsense is kept out).
constexpr size_t kTraceRecordBytes = 32;
constexpr size_t kMaxRecordsBytes = 896;
constexpr uint32_t kMaxCpus = 4096;

bool valid_domain_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

bool xenstore_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '@' || c == '/';
}

bool valid_child(const std::string& name) {
  if (name.empty() || name.size() > kMaxChildLength) return false;
  for (char c : name)
    if (c == '/' || !xenstore_char(c)) return false;
  return true;
}

bool valid_path(const std::string& path) {
  if (path.empty() || path.size() > kMaxPathLength) return false;
  for (char c : path)
    if (!xenstore_char(c)) return false;
  return true;
}

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : int(std::min<long long>(left, 1000));
}

}  // namespace

Request make_request(uint32_t seq) {
  Request r;
  r.set_version(V1);
  r.set_seq(seq);
  return r;
}

bool check_response(const Request& request, const Response& r, std::string* why) {
  auto bad = [&](const std::string& what) {
    *why = "the toolstack's answer is malformed: " + what;
    return false;
  };
  if (!r.GetReflection()->GetUnknownFields(r).empty()) return bad("fields this moat does not know");
  if (r.seq() != request.seq()) return bad("seq " + std::to_string(r.seq()) + ", not " + std::to_string(request.seq()));
  if (!Status_IsValid(r.status()) || r.status() == STATUS_UNSPECIFIED)
    return bad("unknown status " + std::to_string(int(r.status())));
  // A toolstack of another version answers BAD_VERSION in its own; every
  // other answer must be in ours.
  if (r.status() != BAD_VERSION && r.version() != V1)
    return bad("protocol version " + std::to_string(int(r.version())) + ", not 1");
  const bool ok = r.status() == OK;
  const bool is_list = request.op_case() == Request::kList;
  const bool is_create = request.op_case() == Request::kCreate;
  const bool is_xs = request.op_case() == Request::kXenstore;
  const bool is_ls = is_xs && request.xenstore().op() == XenstoreRequest::LS;
  const bool is_read = is_xs && request.xenstore().op() == XenstoreRequest::READ;
  const bool is_watch_read = is_xs && request.xenstore().op() == XenstoreRequest::WATCH_READ;
  const bool is_trace = request.op_case() == Request::kTrace;
  const bool is_trace_read = is_trace && request.trace().op() == TraceRequest::READ;
  const bool is_trace_start = is_trace && request.trace().op() == TraceRequest::START;
  // OK carries a note only where the toolstack may show less than there is:
  // a list or an ls too long for one frame, a watch queue that overflowed.
  if (ok && !r.error().empty() && !is_list && !is_ls && !is_watch_read)
    return bad("status OK with an error (\"" + r.error() + "\")");
  if (!ok && r.error().empty()) return bad("status " + Status_Name(r.status()) + " without a reason");
  for (char c : r.error())
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("control characters in its error text");
  if (!r.value().empty() && !(ok && is_read)) return bad("a value in an answer that is not a read");
  if (r.value().size() > kMaxValueLength)
    return bad("a value of " + std::to_string(r.value().size()) + " bytes, over " + std::to_string(kMaxValueLength));
  if (r.children_size() != 0 && !(ok && is_ls)) return bad("children in an answer that is not an ls");
  std::set<std::string> children;
  for (const std::string& c : r.children()) {
    if (!valid_child(c)) return bad("a child that is not a node name (1 to 64 of [A-Za-z0-9_@-])");
    if (!children.insert(c).second) return bad("child " + c + " listed twice");
  }
  if (r.free_memory_kib() != 0 && !(ok && is_list)) return bad("free memory in an answer that is not a list");
  // list: total counts every domain (at most 4096); a page holds those from
  // its start, so no more than are left from there.
  if (r.total() != 0 && !(ok && is_list)) return bad("a total in an answer that is not a list");
  if (r.total() > 4096) return bad("a total of " + std::to_string(r.total()) + " domains, over 4096");
  if (ok && is_list && uint64_t(request.list().start()) + uint64_t(r.domains_size()) > r.total())
    return bad(std::to_string(r.domains_size()) + " domains from " + std::to_string(request.list().start()) +
               " in a list of " + std::to_string(r.total()));
  // xenstore WATCH_READ: the fired paths, each one XenStore could hold.
  if (r.events_size() != 0 && !(ok && is_watch_read))
    return bad("watch events in an answer that is not a watch_read");
  if (size_t(r.events_size()) > kMaxEvents)
    return bad(std::to_string(r.events_size()) + " watch events, over " + std::to_string(kMaxEvents));
  for (const std::string& e : r.events())
    if (!valid_path(e)) return bad("a watch event that is not a XenStore path (1 to 256 of [A-Za-z0-9_@/-])");
  // moat trace: records, next and lost answer a read; cpus a start or a read.
  if (!(ok && is_trace_read) && (!r.records().empty() || r.next() != 0 || r.lost() != 0))
    return bad("trace records in an answer that is not a trace read");
  if (!(ok && (is_trace_read || is_trace_start)) && r.cpus() != 0)
    return bad("a number of CPUs in an answer that is not a trace start or read");
  if (ok && (is_trace_read || is_trace_start)) {
    if (r.cpus() < 1 || r.cpus() > kMaxCpus)
      return bad(std::to_string(r.cpus()) + " CPUs, not 1 to " + std::to_string(kMaxCpus));
    if (is_trace_read && request.trace().cpu() >= r.cpus())
      return bad("records of CPU " + std::to_string(request.trace().cpu()) + " of only " + std::to_string(r.cpus()));
  }
  if (r.records().size() % kTraceRecordBytes != 0 || r.records().size() > kMaxRecordsBytes)
    return bad("trace records of " + std::to_string(r.records().size()) + " bytes, not whole " +
               std::to_string(kTraceRecordBytes) + "-byte records within " + std::to_string(kMaxRecordsBytes));
  if (ok && is_trace_read && r.next() < request.trace().cursor())
    return bad("a trace cursor that went back (next " + std::to_string(r.next()) + ", asked from " +
               std::to_string(request.trace().cursor()) + ")");
  // Domains: those of a list; the new one in the answer to a create.
  if (!ok || (!is_list && !is_create)) {
    if (r.domains_size() != 0) return bad("domains in an answer that is not a list");
    return true;
  }
  if (is_create && r.domains_size() != 1)
    return bad(std::to_string(r.domains_size()) + " domains in the answer to a create, not the 1 created");
  if (is_create && r.domains(0).name() != request.create().name())
    return bad("the answer to the create of " + request.create().name() + " names another domain");
  std::set<std::string> names;
  std::set<uint32_t> ids;
  for (const DomainInfo& d : r.domains()) {
    if (!d.GetReflection()->GetUnknownFields(d).empty()) return bad("a domain with fields this moat does not know");
    if (!valid_domain_name(d.name())) return bad("a domain name that is not 1 to 32 of [A-Za-z0-9_.-]");
    const std::string who = "domain " + d.name() + ": ";
    if (!names.insert(d.name()).second) return bad(who + "listed twice");
    if (d.id() > kMaxDomainId) return bad(who + "id " + std::to_string(d.id()) + " out of range");
    if (!ids.insert(d.id()).second) return bad(who + "id " + std::to_string(d.id()) + " listed twice");
    if (d.vcpus() < 1 || d.vcpus() > kMaxVcpus) return bad(who + std::to_string(d.vcpus()) + " vCPUs");
    if (!State_IsValid(d.state()) || d.state() == STATE_UNSPECIFIED)
      return bad(who + "unknown state " + std::to_string(int(d.state())));
    // Zero: no limit known; otherwise what it owns is within its maximum.
    if (d.max_memory_kib() != 0 && d.memory_kib() > d.max_memory_kib())
      return bad(who + "owns " + std::to_string(d.memory_kib()) + " KiB, over its maximum of " +
                 std::to_string(d.max_memory_kib()) + " KiB");
  }
  return true;
}

namespace {

// Waits until `fd` is ready for `events` or the deadline passes: true when
// ready (or interrupted: the caller tries again); false with `*why` set when
// poll itself failed.
bool wait_ready(int fd, short events, Clock::time_point deadline, bool* ready, std::string* why) {
  pollfd p{fd, events, 0};
  int r = ::poll(&p, 1, ms_until(deadline));
  if (r < 0 && errno != EINTR) {
    *why = std::string("poll: ") + std::strerror(errno);
    return false;
  }
  *ready = r > 0;
  return true;
}

}  // namespace

Exchange exchange_on(int fd, const Request& request, Clock::time_point deadline) {
  Exchange x;
  std::string payload;
  if (!request.SerializeToString(&payload) || payload.size() > kMaxPayload) {
    x.outcome = Outcome::unreachable;
    x.why = "the request does not fit in a frame";
    return x;
  }
  const std::string frame = encode_frame(payload);
  size_t sent = 0;
  FrameReader reader;
  auto timed_out = [&]() {
    x.outcome = Outcome::timeout;
    x.dropped = reader.dropped();
    return x;
  };
  while (sent < frame.size()) {
    if (Clock::now() >= deadline) return timed_out();
    bool ready = false;
    if (!wait_ready(fd, POLLOUT, deadline, &ready, &x.why)) {
      x.outcome = Outcome::unreachable;
      return x;
    }
    if (!ready) continue;
    ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      x.outcome = Outcome::unreachable;
      x.why = std::string("cannot send the request: ") + std::strerror(errno);
      return x;
    }
    sent += size_t(n);
  }
  char buf[512];   // less than a frame per read: the reader stays bounded
  for (;;) {
    if (Clock::now() >= deadline) return timed_out();
    bool ready = false;
    if (!wait_ready(fd, POLLIN, deadline, &ready, &x.why)) {
      x.outcome = Outcome::unreachable;
      return x;
    }
    if (!ready) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      x.outcome = Outcome::unreachable;
      x.closed = n == 0;
      x.why = n == 0 ? "the system closed the connection before answering"
                     : std::string("cannot read the answer: ") + std::strerror(errno);
      x.dropped = reader.dropped();
      return x;
    }
    reader.feed(std::string_view(buf, size_t(n)));
    while (auto got = reader.next()) {
      Response response;
      if (!response.ParseFromString(*got)) {
        x.outcome = Outcome::bad_answer;
        x.why = "the toolstack's answer does not decode as a Response";
        x.dropped = reader.dropped();
        return x;
      }
      // An answer to an earlier request (one that timed out): not ours.
      if (response.seq() != request.seq()) {
        ++x.stale;
        continue;
      }
      x.dropped = reader.dropped();
      if (!check_response(request, response, &x.why)) {
        x.outcome = Outcome::bad_answer;
        return x;
      }
      x.outcome = Outcome::answered;
      x.response = std::move(response);
      return x;
    }
  }
}

Exchange exchange(const std::string& path, const Request& request, Clock::time_point deadline) {
  Exchange x;
  x.outcome = Outcome::unreachable;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    x.why = "socket path too long for a unix socket: " + path;
    return x;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    x.why = std::string("socket: ") + std::strerror(errno);
    return x;
  }
  // Non-blocking: a QEMU that does not accept cannot stall us past the deadline.
  // (A unix socket connects at once or not at all: EAGAIN is a full backlog.)
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    x.why = errno == EAGAIN ? "the control socket " + path + " is busy (another moat command talking to it?)"
                            : "cannot connect to " + path + ": " + std::strerror(errno);
    ::close(fd);
    return x;
  }
  x = exchange_on(fd, request, deadline);
  ::close(fd);
  return x;
}

std::string sanitise_value(const std::string& value) {
  // Xen's sanitise_value (xenstore-read without -R): a backslash doubled,
  // anything but printable ASCII as \ and three octal digits.
  std::string out;
  for (unsigned char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c < ' ' || c > '~') {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\%03o", c);
      out += esc;
    } else {
      out += char(c);
    }
  }
  return out;
}

std::string state_flags(State state) {
  switch (state) {
    case RUNNING: return "r-----";
    case PAUSED: return "--p---";
    case SHUTDOWN: return "---s--";
    case CRASHED: return "----c-";
    default: return "------";
  }
}

std::string format_list(const Response& response) {
  // xl's own layout (tools/xl/xl_info.c: list_domains).
  std::string out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n";
  char row[160];
  for (const DomainInfo& d : response.domains()) {
    std::snprintf(row, sizeof row, "%-40s %5u %5llu %5u     %s %8.1f\n", d.name().c_str(), d.id(),
                  static_cast<unsigned long long>(d.memory_kib() / 1024), d.vcpus(), state_flags(d.state()).c_str(),
                  double(d.cpu_time_ns()) / 1e9);
    out += row;
  }
  return out;
}

Exchange exchange_list(const std::string& path, Clock::time_point deadline) {
  std::random_device rd;
  Request first = make_request(uint32_t(rd()) | 1u);
  first.mutable_list();
  Exchange x = exchange(path, first, deadline);
  if (x.outcome != Outcome::answered || x.response.status() != OK) return x;
  std::set<uint32_t> ids;
  for (const auto& d : x.response.domains()) ids.insert(d.id());
  // check_response: a page holds no more than are left from its start, and
  // the total is at most 4,096, so this ends (each page moves on by one at least).
  uint32_t next = uint32_t(x.response.domains_size());
  while (next < x.response.total() && next > 0) {
    Request q = make_request(uint32_t(rd()) | 1u);
    q.mutable_list()->set_start(next);
    Exchange page = exchange(path, q, deadline);
    if (page.outcome != Outcome::answered || page.response.status() != OK) {
      page.why = "the list's page from domain " + std::to_string(next) + ": " +
                 (page.why.empty() ? page.response.error() : page.why);
      return page;
    }
    if (page.response.domains_size() == 0) break;
    for (const auto& d : page.response.domains())
      if (ids.insert(d.id()).second) *x.response.add_domains() = d;
    next += uint32_t(page.response.domains_size());
    x.response.set_free_memory_kib(page.response.free_memory_kib());
    x.dropped += page.dropped;
    x.stale += page.stale;
  }
  return x;
}

std::string unanswered(const Exchange& x, const std::string& system, const std::string& socket, double timeout) {
  switch (x.outcome) {
    case Outcome::answered: return "";
    case Outcome::unreachable:
    case Outcome::bad_answer: return "system " + system + ": " + x.why;
    case Outcome::timeout: break;
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", timeout);
  std::string more;
  if (x.dropped) more += "; " + std::to_string(x.dropped) + " damaged frame(s) dropped";
  if (x.stale) more += "; " + std::to_string(x.stale) + " answer(s) to other requests skipped";
  return "the system did not answer in " + std::string(secs) + " s (system " + system + ", " + socket + ")" + more;
}

}  // namespace moat::control
