#pragma once
// The ring the IPC test guests and the demo guests share: 64-byte requests a
// back end answers with the payload's bytes plus one; kQuit ends it.

#include <cstdint>

#include <ring/ring.hpp>

namespace echo_ring {

struct Request {
    uint64_t seq;
    uint8_t payload[56];
};
struct Response {
    uint64_t seq;
    uint8_t payload[56];
};
static_assert(sizeof(Request) == 64 && sizeof(Response) == 64);
using Front = ring::FrontRing<Request, Response>;
using Back = ring::BackRing<Request, Response>;
constexpr uint64_t kQuit = ~0ull;

}  // namespace echo_ring
