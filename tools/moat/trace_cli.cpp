// `moat trace` (docs/control.md, "moat trace"): START, READ each CPU's
// buffer through the toolstack for N seconds of host time, STOP, read what
// is left, and write a Perfetto trace. The wire format is written by hand
// (a few fields of Perfetto's protos/perfetto/trace/trace.proto,
// trace_packet.proto, track_event/track_event.proto, track_descriptor.proto
// and debug_annotation.proto, with their field numbers); records are
// checked before they become packets: a record the toolstack (a domain)
// forged can make a wrong trace, never a malformed one.

#include "trace_cli.hpp"
#include "cli_args.hpp"

#include "control_client.hpp"
#include "rundir.hpp"

#include <abi/grant_table.hpp>
#include <abi/hypercall.hpp>
#include <control/messages.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string_view>
#include <optional>
#include <thread>

namespace moat::cli {

namespace mc = moat::control;
using Clock = std::chrono::steady_clock;

namespace trace {

namespace {

// Perfetto's field numbers.
namespace pf {
constexpr uint32_t kTracePacket = 1;                 // Trace.packet
constexpr uint32_t kTimestamp = 8;                   // TracePacket.timestamp (ns, the default clock)
constexpr uint32_t kTrustedSequenceId = 10;          // TracePacket.trusted_packet_sequence_id
constexpr uint32_t kTrackEvent = 11;                 // TracePacket.track_event
constexpr uint32_t kSequenceFlags = 13;              // TracePacket.sequence_flags
constexpr uint32_t kTrackDescriptor = 60;            // TracePacket.track_descriptor
constexpr uint64_t kSeqIncrementalStateCleared = 1;  // SequenceFlags
constexpr uint32_t kDescUuid = 1, kDescName = 2;     // TrackDescriptor
constexpr uint32_t kEventDebug = 4, kEventType = 9, kEventTrack = 11, kEventName = 23;   // TrackEvent
constexpr uint64_t kSliceBegin = 1, kSliceEnd = 2, kInstant = 3;                         // TrackEvent.Type
constexpr uint32_t kDebugUint = 3, kDebugInt = 4, kDebugName = 10;                       // DebugAnnotation
}  // namespace pf

constexpr uint64_t kSequence = 1;
constexpr uint64_t kCpuTrackBase = 1000, kDomainTrackBase = 100000;

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void key(std::string& out, uint32_t field, unsigned wire) { varint(out, uint64_t(field) << 3 | wire); }
void field_varint(std::string& out, uint32_t field, uint64_t v) {
  key(out, field, 0);
  varint(out, v);
}
void field_bytes(std::string& out, uint32_t field, std::string_view b) {
  key(out, field, 2);
  varint(out, b.size());
  out.append(b);
}

struct Annotation {
  const char* name;
  bool is_signed;
  uint64_t value;
};

// One event of a track, before it is written.
struct Event {
  uint64_t ts;
  uint64_t type;   // pf::kSliceBegin, kSliceEnd, kInstant
  std::string name;
  std::vector<Annotation> args;
};

struct Interval {
  uint64_t begin, end;
  std::string name;
  std::vector<Annotation> args;
};

// A track's slices as a well-nested sequence of begins and ends in time
// order: sorted by begin (the longer first), each ends no later than the one
// it is nested in (a partial overlap, which only a forged record makes, is
// cut to fit). Instants merged in by time.
std::vector<Event> nest(std::vector<Interval> slices, std::vector<Event> instants) {
  std::stable_sort(slices.begin(), slices.end(), [](const Interval& a, const Interval& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  std::vector<Event> out;
  std::vector<uint64_t> open;   // ends of the open slices, innermost last
  auto close_until = [&](uint64_t t) {
    while (!open.empty() && open.back() <= t) {
      out.push_back(Event{open.back(), pf::kSliceEnd, {}, {}});
      open.pop_back();
    }
  };
  for (Interval& s : slices) {
    close_until(s.begin);
    uint64_t end = open.empty() ? s.end : std::min(s.end, open.back());
    out.push_back(Event{s.begin, pf::kSliceBegin, std::move(s.name), std::move(s.args)});
    open.push_back(end);
  }
  close_until(~0ull);
  std::vector<Event> merged;
  merged.reserve(out.size() + instants.size());
  std::stable_sort(instants.begin(), instants.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  std::merge(out.begin(), out.end(), instants.begin(), instants.end(), std::back_inserter(merged),
             [](const Event& a, const Event& b) { return a.ts < b.ts; });
  return merged;
}

void packet(std::string& trace, const std::string& body) { field_bytes(trace, pf::kTracePacket, body); }

void track_descriptor(std::string& trace, uint64_t uuid, const std::string& name, bool first) {
  std::string desc, p;
  field_varint(desc, pf::kDescUuid, uuid);
  field_bytes(desc, pf::kDescName, name);
  field_varint(p, pf::kTrustedSequenceId, kSequence);
  if (first) field_varint(p, pf::kSequenceFlags, pf::kSeqIncrementalStateCleared);
  field_bytes(p, pf::kTrackDescriptor, desc);
  packet(trace, p);
}

void track_events(std::string& trace, uint64_t uuid, const std::vector<Event>& events) {
  for (const Event& e : events) {
    std::string ev, p;
    field_varint(ev, pf::kEventType, e.type);
    field_varint(ev, pf::kEventTrack, uuid);
    if (!e.name.empty()) field_bytes(ev, pf::kEventName, e.name);
    for (const Annotation& a : e.args) {
      std::string d;
      field_bytes(d, pf::kDebugName, a.name);
      field_varint(d, a.is_signed ? pf::kDebugInt : pf::kDebugUint, a.value);
      field_bytes(ev, pf::kEventDebug, d);
    }
    field_varint(p, pf::kTimestamp, e.ts);
    field_varint(p, pf::kTrustedSequenceId, kSequence);
    field_bytes(p, pf::kTrackEvent, ev);
    packet(trace, p);
  }
}

std::string grant_op_name(uint64_t op) {
  static const char* const kNames[] = {"map_grant_ref", "unmap_grant_ref", "setup_table", "dump_table",
                                       "transfer",      "copy",            "query_size",  "unmap_and_replace",
                                       "set_version",   "get_status_frames", "get_version", "swap_grant_ref",
                                       "cache_flush"};
  return op < std::size(kNames) ? kNames[op] : "op_" + std::to_string(op);
}

std::string mark_name(uint64_t what) {
  switch (what) {
    case abi::kMarkNetTx: return "netback tx";
    case abi::kMarkNetRx: return "netback rx";
    case abi::kMarkBlk: return "blkback requests";
    default: return "mark " + std::to_string(what);
  }
}

}  // namespace

std::string hypercall_name(uint64_t nr) {
  static const char* const kNames[] = {
      "set_trap_table", "mmu_update", "set_gdt", "stack_switch", "set_callbacks", "fpu_taskswitch",
      "sched_op_compat", "platform_op", "set_debugreg", "get_debugreg", "update_descriptor", nullptr,
      "memory_op", "multicall", "update_va_mapping", "set_timer_op", "event_channel_op_compat", "xen_version",
      "console_io", "physdev_op_compat", "grant_table_op", "vm_assist", "update_va_mapping_otherdomain", "iret",
      "vcpu_op", "set_segment_base", "mmuext_op", "xsm_op", "nmi_op", "sched_op", "callback_op", "xenoprof_op",
      "event_channel_op", "physdev_op", "hvm_op", "sysctl", "domctl", "kexec_op", "tmem_op", "argo_op",
      "xenpmu_op", "dm_op", "hypfs_op", "cap_op"};
  static_assert(unsigned(abi::Hypercall::cap_op) == 43 && unsigned(abi::Hypercall::domctl) == 36);
  if (nr < std::size(kNames) && kNames[nr]) return kNames[nr];
  return "hypercall_" + std::to_string(nr);
}

std::string perfetto(const std::vector<abi::TraceRecord>& records, unsigned cpus,
                     const std::map<uint16_t, std::string>& names, Counts* counts) {
  auto domain_name = [&](uint16_t d) {
    auto it = names.find(d);
    return it != names.end() ? it->second : "domain " + std::to_string(d);
  };
  struct DomainTrack {
    std::vector<Interval> slices;
    std::vector<Event> instants;
  };
  std::map<uint16_t, DomainTrack> domains;
  std::vector<std::vector<Interval>> runs(cpus);
  // Per CPU: the run that began at the last sched record, closed by the next.
  struct Open {
    bool open = false;
    uint64_t begin = 0;
    uint16_t domain = 0, vcpu = 0;
  };
  std::vector<Open> current(cpus);
  std::vector<uint64_t> last_time(cpus, 0);
  for (const abi::TraceRecord& r : records) {
    if (r.cpu >= cpus) continue;   // not a buffer we read: never from the kernel
    uint64_t end = r.time_ns;
    switch (static_cast<abi::TraceKind>(r.kind)) {
      case abi::TraceKind::sched: {
        Open& o = current[r.cpu];
        if (o.open && r.time_ns >= o.begin)
          runs[r.cpu].push_back(Interval{o.begin, r.time_ns, domain_name(o.domain), {{"vcpu", false, o.vcpu}}});
        o = Open{r.domain != abi::kTraceIdle, r.time_ns, r.domain, r.vcpu};
        break;
      }
      case abi::TraceKind::hypercall: {
        uint64_t nr = r.arg0 & 0xFFFF;
        if (r.time_ns + r.arg1 < r.time_ns) continue;   // a duration past the end of time
        end = r.time_ns + r.arg1;
        domains[r.domain].slices.push_back(
            Interval{r.time_ns, end, hypercall_name(nr),
                     {{"result", true, uint64_t(int64_t(int32_t(uint32_t(r.arg0 >> 32))))}, {"vcpu", false, r.vcpu}}});
        break;
      }
      case abi::TraceKind::event:
        domains[r.domain].instants.push_back(
            Event{r.time_ns, pf::kInstant, "event", {{"port", false, r.arg0}}});
        break;
      case abi::TraceKind::grant:
        domains[r.domain].instants.push_back(
            Event{r.time_ns, pf::kInstant, "grant " + grant_op_name(r.arg0), {{"count", false, r.arg1}}});
        break;
      case abi::TraceKind::mark:
        domains[r.domain].instants.push_back(
            Event{r.time_ns, pf::kInstant, mark_name(r.arg0), {{"requests", false, r.arg1}}});
        break;
      default: continue;   // a kind this moat does not know: left out
    }
    last_time[r.cpu] = std::max(last_time[r.cpu], end);
  }
  // The run still going when the records end closes with the CPU's last record.
  for (unsigned c = 0; c < cpus; ++c)
    if (current[c].open && last_time[c] >= current[c].begin)
      runs[c].push_back(Interval{current[c].begin, last_time[c], domain_name(current[c].domain),
                                 {{"vcpu", false, current[c].vcpu}}});

  Counts n;
  std::string out;
  bool first = true;
  for (unsigned c = 0; c < cpus; ++c) {
    track_descriptor(out, kCpuTrackBase + c, "CPU " + std::to_string(c), first);
    first = false;
    ++n.tracks;
  }
  for (auto& [id, t] : domains) {
    track_descriptor(out, kDomainTrackBase + id, domain_name(id) + " (domain " + std::to_string(id) + ")", first);
    ++n.tracks;
  }
  for (unsigned c = 0; c < cpus; ++c) {
    n.sched_slices += runs[c].size();
    track_events(out, kCpuTrackBase + c, nest(std::move(runs[c]), {}));
  }
  for (auto& [id, t] : domains) {
    n.hypercall_slices += t.slices.size();
    n.instants += t.instants.size();
    track_events(out, kDomainTrackBase + id, nest(std::move(t.slices), std::move(t.instants)));
  }
  if (counts) *counts = n;
  return out;
}

}  // namespace trace

namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;
constexpr unsigned kMaxCpus = 4096;   // as check_response bounds Response.cpus

int usage_error(const std::string& message) {
  std::fprintf(stderr, "moat trace: %s\nRun 'moat trace --help' for usage.\n", message.c_str());
  return kExitUsage;
}
int error(const std::string& message) {
  std::fprintf(stderr, "moat trace: %s\n", message.c_str());
  return kExitFailed;
}

uint32_t fresh_seq() {
  std::random_device rd;
  return uint32_t(rd()) | 1u;
}

// One request: the checked answer, or false with the message printed.
struct Channel {
  std::string socket, system;
  double timeout;

  bool ask(const mc::Request& q, mc::Response* r, const char* what) {
    auto span = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
    mc::Exchange x = mc::exchange(socket, q, Clock::now() + span);
    if (std::string why = mc::unanswered(x, system, socket, timeout); !why.empty()) {
      (void)error(std::string(what) + ": " + why);
      return false;
    }
    switch (x.response.status()) {
      case mc::OK: *r = x.response; return true;
      case mc::REFUSED: (void)error("refused: " + x.response.error()); return false;
      case mc::FAILED: (void)error(std::string(what) + " failed: " + x.response.error()); return false;
      case mc::BAD_VERSION:
        (void)error("the toolstack speaks protocol version " + std::to_string(int(x.response.version())) + ": " +
                    x.response.error());
        return false;
      default: (void)error(std::string(what) + ": " + x.response.error()); return false;
    }
  }
};

mc::Request trace_request(mc::TraceRequest::Op op, uint32_t cpu = 0, uint64_t cursor = 0) {
  mc::Request q = mc::make_request(fresh_seq());
  mc::TraceRequest* t = q.mutable_trace();
  t->set_op(op);
  t->set_cpu(cpu);
  t->set_cursor(cursor);
  return q;
}

struct Reader {
  Channel& ch;
  unsigned cpus;
  std::vector<uint64_t> cursor;
  std::vector<std::vector<abi::TraceRecord>> records;
  uint64_t lost = 0;
  bool failed = false;

  // Reads buffer `cpu` until an answer is short of a full one (caught up:
  // while recording, "nothing more" may never come), or, while recording,
  // until `until` (records may come faster than the channel carries them:
  // the rest is read after the stop, or counted lost). False on an error.
  bool drain(unsigned cpu, std::optional<Clock::time_point> until = std::nullopt) {
    constexpr size_t kFull = ::control::kRecordsLen / sizeof(abi::TraceRecord);
    for (;;) {
      mc::Response r;
      if (!ch.ask(trace_request(mc::TraceRequest::READ, cpu, cursor[cpu]), &r, "trace read")) return false;
      // check_response: whole records, next not before the cursor.
      size_t n = r.records().size() / sizeof(abi::TraceRecord);
      for (size_t k = 0; k < n; ++k) {
        abi::TraceRecord x;
        std::memcpy(&x, r.records().data() + k * sizeof x, sizeof x);
        if (x.cpu != cpu) continue;   // another buffer's record: not the kernel's doing
        records[cpu].push_back(x);
      }
      lost += r.lost();
      cursor[cpu] = r.next();
      if (n < kFull || (until && Clock::now() >= *until)) return true;
    }
  }
};

}  // namespace

void print_trace_help(FILE* out) {
  std::fprintf(out,
               "usage: moat trace --seconds N -o FILE [--only KINDS] [--system S] [--timeout SECONDS]\n"
               "  Records the running system's scheduling (per CPU), hypercalls, event deliveries,\n"
               "  grant operations and back-end requests (per domain) for N seconds (1 to 3600, host\n"
               "  time) from the kernel's per-CPU trace buffers, through the toolstack domain, and\n"
               "  writes FILE as a Perfetto trace (open it in ui.perfetto.dev).\n"
               "  --system S   which running system (default: the only one)\n"
               "  --only K,... only these kinds of records: sched, hypercall, event, grant, mark (default:\n"
               "               all; fewer kinds, fewer records lost to the control channel's speed)\n"
               "  --timeout T  seconds to wait for each answer (default 10)\n");
}

int trace_command(int argc, char** argv, const moat::graph::LoadAndCheck&, const moat::graph::RunningManifest&) {
  double seconds = 0, timeout = 10;
  std::string file, system;
  uint32_t kinds = 0;   // --only: a bit per abi::TraceKind; 0 every kind
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto number = [&](double lo, double hi, double* v) {
      if (i + 1 >= argc || !parse_number(argv[i + 1], lo, hi, v)) return false;
      ++i;
      return true;
    };
    if (arg == "-h" || arg == "--help") {
      print_trace_help(stdout);
      return kExitOk;
    } else if (arg == "--seconds") {
      if (!number(1, 3600, &seconds)) return usage_error("--seconds needs a number of seconds (1 to 3600)");
    } else if (arg == "--timeout") {
      if (!number(0.001, 86400, &timeout)) return usage_error("--timeout needs a positive number of seconds");
    } else if (arg == "-o") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("-o needs a file name");
      file = argv[++i];
    } else if (arg == "--system") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("--system needs a system's name");
      system = argv[++i];
    } else if (arg == "--only") {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("--only needs kinds (sched,hypercall,event,grant,mark)");
      std::string_view list = argv[++i];
      while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view k = list.substr(0, comma);
        abi::TraceKind kind;
        if (k == "sched") kind = abi::TraceKind::sched;
        else if (k == "hypercall") kind = abi::TraceKind::hypercall;
        else if (k == "event") kind = abi::TraceKind::event;
        else if (k == "grant") kind = abi::TraceKind::grant;
        else if (k == "mark") kind = abi::TraceKind::mark;
        else return usage_error("unknown kind '" + std::string(k) + "' (sched, hypercall, event, grant, mark)");
        kinds |= 1u << unsigned(kind);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    }
  }
  if (seconds == 0) return usage_error("how long? (--seconds N)");
  if (file.empty()) return usage_error("where to? (-o FILE)");

  auto root = rundir::root();
  std::string chosen, why;
  if (!rundir::choose(root, system, &chosen, &why)) return error(why);
  Channel ch{(root / chosen / rundir::kSocket).string(), chosen, timeout};

  // The domains' names, as the toolstack lists them (itself and those it
  // controls); the others show as "domain N".
  std::map<uint16_t, std::string> names;
  {
    mc::Exchange x = mc::exchange_list(ch.socket, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                                   std::chrono::duration<double>(timeout)));
    if (x.outcome != mc::Outcome::answered || x.response.status() != mc::OK)
      return error("list: " + (x.why.empty() ? x.response.error() : x.why));
    for (const mc::DomainInfo& d : x.response.domains()) names[uint16_t(d.id())] = d.name();
  }

  mc::Response started;
  mc::Request start = trace_request(mc::TraceRequest::START);
  start.mutable_trace()->set_kinds(kinds);
  if (!ch.ask(start, &started, "trace start")) return kExitFailed;
  unsigned cpus = started.cpus();
  if (cpus == 0 || cpus > kMaxCpus) return error("the toolstack answered a start with " + std::to_string(cpus) + " cpus");
  Reader rd{ch, cpus, std::vector<uint64_t>(cpus, 0), std::vector<std::vector<abi::TraceRecord>>(cpus)};
  auto stop = [&] {
    mc::Response r;
    return ch.ask(trace_request(mc::TraceRequest::STOP), &r, "trace stop");
  };
  auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    for (unsigned c = 0; c < cpus; ++c)
      if (!rd.drain(c, until)) {
        (void)stop();   // never leave the system recording
        return kExitFailed;
      }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!stop()) return kExitFailed;
  for (unsigned c = 0; c < cpus; ++c)
    if (!rd.drain(c)) return kExitFailed;

  std::vector<abi::TraceRecord> all;
  for (auto& v : rd.records) all.insert(all.end(), v.begin(), v.end());
  trace::Counts n;
  std::string bytes = trace::perfetto(all, cpus, names, &n);
  std::ofstream f(file, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) return error("cannot write " + file + ": " + std::strerror(errno));
  std::printf("moat trace: %zu records from %u cpu(s), %llu lost (overwritten before they were read)\n", all.size(),
              cpus, static_cast<unsigned long long>(rd.lost));
  std::printf("moat trace: %s: %zu tracks, %zu scheduling slices, %zu hypercall slices, %zu instant events "
              "(open it in ui.perfetto.dev)\n",
              file.c_str(), n.tracks, n.sched_slices, n.hypercall_slices, n.instants);
  return kExitOk;
}

}  // namespace moat::cli
