// The server side of the IPC benchmark: answers ring requests, acknowledges
// every event, and stamps the TSC at each event upcall into the page it
// grants bench_a (ref 9).

#include "common.hpp"

#include <rt/time.hpp>

using namespace ipc;

namespace {
constexpr uint16_t kA = 1;
constexpr uint32_t kPort = 1;
alignas(4096) uint8_t g_ring_map[4096];
alignas(4096) uint8_t g_gnttab_page[4096];
alignas(4096) uint8_t g_shared[4096];

void stamp() { *reinterpret_cast<volatile uint64_t*>(g_shared) = rt::rdtsc(); }
}  // namespace

void rt::main() {
    rt::events_init();
    rt::set_event_hook(stamp);
    wait_for_cap(1, abi::CapType::event);
    grant::Table gt = setup_grant_table(g_gnttab_page);
    bool ok = gt.size() && gt.grant_access(kPatternRef, kA, uint32_t(mfn_of(g_shared)), false);

    long port = retry([] { return rt::bind_interdomain(kA, kPort); });
    ok &= port == long(kPort);
    rt::wait_port(kPort);
    abi::GnttabMapGrantRef m{};
    m.host_addr = rt::ptr(g_ring_map);
    m.flags = abi::kGntmapHostMap;
    m.ref = kRingRef;
    m.dom = kA;
    long r = retry([&] { return gnttab_op(abi::GnttabOp::map_grant_ref, &m) ? -1L : (m.status ? -1L : 0L); });
    ok &= r == 0;
    Back back;
    back.init(g_ring_map, sizeof g_ring_map);
    rt::notify(kPort);

    // Every wake-up is answered with an event (bench_a times both the bare
    // event and the ring round trip with it). Before sleeping, the final
    // check re-arms req_event so the next request notifies us.
    for (bool quit = false; !quit;) {
        rt::wait_port(kPort);
        do {
            Request q;
            while (!quit && back.take_request(q)) {
                if (q.seq == kQuit) quit = true;
                else back.push_response(Response{q.seq, {}});
            }
        } while (!quit && back.final_check_for_requests());
        back.push_responses();
        if (!quit) rt::notify(kPort);
    }
    if (!ok || back.broken()) rt::printf("FAIL ipc_bench.server: setup failed or the ring broke\n");
}
