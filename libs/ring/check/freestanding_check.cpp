// Compiled with the kernel and domain flags only: the ring headers need nothing
// beyond the freestanding headers. Instantiates every member.
#include <ring/ring.hpp>

namespace {
struct Req {
  uint64_t id;
  uint8_t op;
};
struct Rsp {
  uint64_t id;
  int16_t status;
};
using Shared = ring::SharedRing<Req, Rsp>;
static_assert(Shared::entries(4096) == 128);
static_assert(sizeof(Shared) == 64);
}  // namespace

template class ring::FrontRing<Req, Rsp>;
template class ring::BackRing<Req, Rsp>;

extern "C" unsigned moat_ring_freestanding_check(void* page) {
  ring::FrontRing<Req, Rsp> f;
  ring::BackRing<Req, Rsp> b;
  f.init(page, 4096);
  b.init(page, 4096);
  Req q{};
  f.push_request(q);
  unsigned n = f.push_requests_and_check_notify();
  b.take_request(q);
  b.push_response(Rsp{q.id, 0});
  n += b.push_responses_and_check_notify();
  Rsp r;
  n += f.take_response(r);
  return n + b.broken() + f.broken();
}
