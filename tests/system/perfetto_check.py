#!/usr/bin/env python3
"""An independent reader of `moat trace` output (docs/control.md, "moat trace").

Decodes the protobuf wire format itself (no generated code, nothing of moat's
encoder) with Perfetto's field numbers, and checks what ui.perfetto.dev needs
to show the trace: every packet decodes; there is a track per CPU ("CPU n")
and per domain; on every track the slices are balanced (each end closes the
innermost open begin, at or after it) and events come in time order;
every CPU track has scheduling slices; at least one domain track has a
hypercall slice (with --sched-only, a trace of `moat trace --only sched`:
none, and no instant event either). Prints the counts. Exit status 0 when
every check holds.

usage: perfetto_check.py FILE [--cpus N] [--sched-only]
"""

import sys

# Perfetto's field numbers (protos/perfetto/trace/...).
TRACE_PACKET = 1
PKT_TIMESTAMP, PKT_SEQ_ID, PKT_TRACK_EVENT, PKT_TRACK_DESCRIPTOR = 8, 10, 11, 60
DESC_UUID, DESC_NAME = 1, 2
EV_TYPE, EV_TRACK_UUID, EV_NAME = 9, 11, 23
SLICE_BEGIN, SLICE_END, INSTANT = 1, 2, 3


class Malformed(Exception):
    pass


def varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise Malformed("varint runs past the end")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise Malformed("varint longer than 10 bytes")


def fields(buf):
    """(field number, wire type, value) of a message: ints or bytes."""
    pos, out = 0, []
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Malformed("field number 0")
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise Malformed("fixed64 past the end")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = varint(buf, pos)
            if pos + n > len(buf):
                raise Malformed("length-delimited field past the end")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise Malformed("fixed32 past the end")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise Malformed("wire type %d" % wire)
        out.append((number, wire, value))
    return out


def one(fs, number, wire, default=None):
    found = [v for (n, w, v) in fs if n == number]
    if len(found) > 1:
        raise Malformed("field %d repeated" % number)
    if found and [w for (n, w, v) in fs if n == number][0] != wire:
        raise Malformed("field %d has wire type %d" % (number, wire))
    return found[0] if found else default


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    want_cpus = None
    sched_only = False
    rest = argv[2:]
    while rest:
        if rest[0] == "--cpus" and len(rest) > 1:
            want_cpus = int(rest[1])
            rest = rest[2:]
        elif rest[0] == "--sched-only":
            sched_only = True
            rest = rest[1:]
        else:
            print(__doc__.strip().splitlines()[-1], file=sys.stderr)
            return 2
    data = open(argv[1], "rb").read()
    problems = []
    tracks = {}    # uuid -> name
    events = {}    # uuid -> [(ts, type, name)]
    packets = 0
    try:
        for number, wire, body in fields(data):
            if number != TRACE_PACKET or wire != 2:
                raise Malformed("Trace has field %d (wire %d), not packets" % (number, wire))
            packets += 1
            p = fields(body)
            desc = one(p, PKT_TRACK_DESCRIPTOR, 2)
            ev = one(p, PKT_TRACK_EVENT, 2)
            if desc is not None:
                d = fields(desc)
                uuid, name = one(d, DESC_UUID, 0), one(d, DESC_NAME, 2)
                if uuid is None or name is None:
                    raise Malformed("a track descriptor without uuid or name")
                if uuid in tracks:
                    raise Malformed("track %d described twice" % uuid)
                tracks[uuid] = name.decode("utf-8")
            if ev is not None:
                ts = one(p, PKT_TIMESTAMP, 0)
                if ts is None or one(p, PKT_SEQ_ID, 0) is None:
                    raise Malformed("a track event without timestamp or sequence id")
                e = fields(ev)
                kind, uuid = one(e, EV_TYPE, 0), one(e, EV_TRACK_UUID, 0)
                name = one(e, EV_NAME, 2, b"").decode("utf-8")
                if kind not in (SLICE_BEGIN, SLICE_END, INSTANT):
                    raise Malformed("event type %r" % kind)
                events.setdefault(uuid, []).append((ts, kind, name))
    except (Malformed, UnicodeDecodeError) as e:
        print("perfetto_check: FAIL: packet %d does not decode: %s" % (packets + 1, e))
        return 1

    cpu_tracks = {u: n for u, n in tracks.items() if n.startswith("CPU ")}
    domain_tracks = {u: n for u, n in tracks.items() if u not in cpu_tracks}
    slices = {}
    instants = 0
    for uuid, evs in events.items():
        if uuid not in tracks:
            problems.append("events on track %d, which no descriptor names" % uuid)
            continue
        stack, last, done = [], 0, 0
        for ts, kind, name in evs:
            if ts < last:
                problems.append("%s: an event at %d after one at %d" % (tracks[uuid], ts, last))
                break
            last = ts
            if kind == SLICE_BEGIN:
                if not name:
                    problems.append("%s: a slice without a name at %d" % (tracks[uuid], ts))
                stack.append(ts)
            elif kind == SLICE_END:
                if not stack:
                    problems.append("%s: an end at %d with no slice open" % (tracks[uuid], ts))
                    break
                if ts < stack.pop():
                    problems.append("%s: a slice ends before it begins" % tracks[uuid])
                done += 1
            else:
                instants += 1
        if stack:
            problems.append("%s: %d slice(s) never end" % (tracks[uuid], len(stack)))
        slices[uuid] = done

    if not cpu_tracks:
        problems.append("no CPU track")
    if want_cpus is not None and len(cpu_tracks) != want_cpus:
        problems.append("%d CPU tracks, not %d" % (len(cpu_tracks), want_cpus))
    for uuid, name in sorted(cpu_tracks.items()):
        if slices.get(uuid, 0) == 0:
            problems.append("%s has no scheduling slice" % name)
    if not domain_tracks and not sched_only:   # a domain's track holds its hypercalls and instants
        problems.append("no domain track")
    hypercalls = sum(slices.get(u, 0) for u in domain_tracks)
    if sched_only:
        if hypercalls or instants:
            problems.append("%d hypercall slices and %d instant events in a trace of scheduling only" %
                            (hypercalls, instants))
    elif hypercalls == 0:
        problems.append("no hypercall slice on any domain track")

    print("perfetto_check: %d packets, %d CPU tracks, %d domain tracks, %d scheduling slices, "
          "%d hypercall slices, %d instant events" %
          (packets, len(cpu_tracks), len(domain_tracks), sum(slices.get(u, 0) for u in cpu_tracks),
           hypercalls, instants))
    for name in sorted(domain_tracks.values()):
        print("perfetto_check: track %s" % name)
    for p in problems:
        print("perfetto_check: FAIL: %s" % p)
    if not problems:
        print("perfetto_check: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
