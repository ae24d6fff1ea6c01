// The demo's back-end ("pong"): waits for a front-end to appear under its
// backend/ring directory, maps the ring it grants and binds the port it
// offers (both allowed only by the capabilities the manifest gives), and
// answers every request, never trusting the ring (libs/ring); then answers
// pings through netback and UDP from the host.

#include "common.hpp"

#include <rt/time.hpp>

using namespace demo;

namespace {
constexpr uint64_t kWaitNs = 60'000'000'000;
}

void rt::main() {
    rt::events_init();
    check(bool(rt::xs_init()), "demo.back_xenstore_connected");
    // Its vif first (if it has one), so that ping's echo requests and ARP
    // wait in its receive ring while it serves the shared ring.
    net_up();
    char list[128], path[160], fpath[128];
    // The builder wrote our side of the connection before we started.
    auto fes = rt::xs_directory("backend/ring", list, sizeof list);
    const char* fe_name = fes && *fes ? rt::xs_next_name(list, *fes, nullptr) : nullptr;
    check(fe_name != nullptr, "demo.back_found_a_frontend");
    if (!fe_name) return;
    char fe_id[16];
    base::snformat(fe_id, sizeof fe_id, "%s", fe_name);
    base::snformat(path, sizeof path, "backend/ring/%s", fe_id);
    auto devs = rt::xs_directory(path, list, sizeof list);
    const char* devid = devs && *devs ? rt::xs_next_name(list, *devs, nullptr) : nullptr;
    if (!devid) return;
    char mine[96];
    base::snformat(mine, sizeof mine, "backend/ring/%s/%s", fe_id, devid);
    base::snformat(path, sizeof path, "%s/frontend", mine);
    auto fp = rt::xs_read(path, fpath, sizeof fpath);
    base::snformat(path, sizeof path, "%s/frontend-id", mine);
    long fe = read_number(path);
    check(fp && fe >= 0, "demo.back_read_frontend", "frontend %ld", fe);
    if (!fp || fe < 0) return;

    base::snformat(path, sizeof path, "%s/state", fpath);
    check(wait_for_state(path, kInitialised, rt::now_ns() + kWaitNs), "demo.back_frontend_initialised");
    base::snformat(path, sizeof path, "%s/ring-ref", fpath);
    long ref = read_number(path);
    base::snformat(path, sizeof path, "%s/event-channel", fpath);
    long remote_port = read_number(path);
    check(ref >= 0 && remote_port > 0, "demo.back_read_ring_details", "ref %ld port %ld", ref, remote_port);

    long err = 0;
    void* page = rt::map_grant(uint16_t(fe), uint32_t(ref), false, &err);
    check(page != nullptr, "demo.back_mapped_ring", "error %ld", err);
    long port = rt::bind_interdomain(uint16_t(fe), uint32_t(remote_port));
    check(port > 0, "demo.back_bound_port", "rc %ld", port);
    if (!page || port <= 0) return;
    Back back;
    back.init(page, 4096);
    base::snformat(path, sizeof path, "%s/state", mine);
    check(bool(rt::xs_write(path, "4")), "demo.back_connected");
    rt::printf("serving domain %ld (ring ref %ld, port %ld)\n", fe, ref, port);

    unsigned served = 0;
    for (;;) {
        Request q;
        if (!back.take_request(q)) {
            if (back.broken()) break;
            if (!back.final_check_for_requests()) rt::wait_port(uint32_t(port));
            continue;
        }
        if (q.seq == kQuit) break;
        Response p{q.seq, {}};
        for (unsigned i = 0; i < sizeof p.payload; ++i) p.payload[i] = uint8_t(q.payload[i] + 1);
        back.push_response(p);
        if (back.push_responses_and_check_notify()) rt::notify(uint32_t(port));
        ++served;
    }
    check(!back.broken() && served > 0, "demo.back_served_requests", "served %u", served);
    check(rt::unmap_grant(page) == 0, "demo.back_unmapped_ring");
    (void)rt::xs_write(path, "6");
    // Then pings and UDP from the host, for a while (with `stay` and a vif:
    // until asked to power off).
    net_serve();
    net_down();
    rt::printf("done, %u failed\n", rt::g_failed_checks);
}
