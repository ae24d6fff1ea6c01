// The host's side of the control channel (proto/control.proto,
// docs/control.md): one Request to the running system's toolstack domain,
// its Response back, checked field by field before anyone believes it.
#pragma once

#include "control.pb.h"

#include <chrono>
#include <string>

namespace moat::control {

// Every way an exchange can end.
enum class Outcome {
  answered,     // *response is the toolstack's, checked (its status may still be an error)
  unreachable,  // the socket could not be opened (QEMU gone?)
  timeout,      // no matching Response before the deadline
  bad_answer,   // a Response that does not decode or does not check
};

struct Exchange {
  Outcome outcome = Outcome::timeout;
  Response response;
  std::string why;        // for a person, when outcome is not answered
  size_t dropped = 0;     // damaged frames dropped (bad length or CRC)
  size_t stale = 0;       // checked frames for another seq, skipped
  bool closed = false;    // the system closed the connection (after the request went out)
};

// The payload of a Request for one operation; `seq` echoes in its Response.
[[nodiscard]] Request make_request(uint32_t seq);

// Checks every field of a decoded Response to `request`, one whose seq is
// the request's: the version (V1, or BAD_VERSION naming its own), a known
// status, an error exactly when the status is not OK, no unknown fields,
// domains only in the answer to a list (and exactly one, the one named, in
// the OK answer to a create), each with a valid name, unique name and id, a
// known state, vCPUs and memory in range; free memory only in a list's; a
// value (at most 512 bytes) only in the answer to a xenstore read, children
// (each a node name of 1 to 64 of [A-Za-z0-9_@-], unique) only in the
// answer to an ls, events (at most 3 XenStore paths) only in a watch_read's;
// records (whole 32-byte records, at most 896 bytes), next (not before the
// request's cursor) and lost only in a trace read's, cpus (1 to 4096, above
// the cpu read) in exactly the OK answers to a trace start or read; an OK
// with an error text (a note: some left out) only for a list, an ls or a
// watch_read. Only OK answers carry any of these. False with *why.
[[nodiscard]] bool check_response(const Request& request, const Response& response, std::string* why);

// Sends `request` on the connected stream socket `fd` and waits for the
// Response with its seq until `deadline` (never longer): frames for other
// seqs are skipped, damaged frames dropped (counted).
[[nodiscard]] Exchange exchange_on(int fd, const Request& request, std::chrono::steady_clock::time_point deadline);

// exchange_on() over a new connection to the unix socket at `path`.
[[nodiscard]] Exchange exchange(const std::string& path, const Request& request,
                                std::chrono::steady_clock::time_point deadline);

// Why an exchange with system `system` (its control socket `socket`, each
// exchange given `timeout` seconds) got no checked answer, for a person:
// "system S: <why>" when unreachable or malformed, "the system did not
// answer in N s (system S, SOCKET)" with the damaged and stale frames
// counted on a timeout; "" when it was answered. Every moat command says
// it so.
[[nodiscard]] std::string unanswered(const Exchange& x, const std::string& system, const std::string& socket,
                                     double timeout);

// A whole `moat list`: the list request's first page (from 0), then the
// next ones from where each ended until the answer's total, each a fresh
// request with a fresh seq, all before `deadline`. Domains that go between
// pages end it early; one that shows on two pages (as others went) is kept
// once, by id; the free memory is the last page's. An Exchange whose
// outcome is not answered, or whose status is not OK, is the first page
// that failed, as it came (a later page's failure says which in `why`).
[[nodiscard]] Exchange exchange_list(const std::string& path, std::chrono::steady_clock::time_point deadline);

// As `xl list` prints it: a header, then one row per domain
// (Name ID Mem VCPUs State Time(s)), memory in MiB, the state as xl's flags.
[[nodiscard]] std::string format_list(const Response& response);

// A XenStore value as xenstore-read prints it (Xen's sanitise_value): `\`
// doubled, bytes outside printable ASCII as `\` and three octal digits, so
// that a guest's value can never drive the terminal.
[[nodiscard]] std::string sanitise_value(const std::string& value);

// xl's six state flags (r b p s c d) for a state: RUNNING "r-----", ...
[[nodiscard]] std::string state_flags(State state);

}  // namespace moat::control
