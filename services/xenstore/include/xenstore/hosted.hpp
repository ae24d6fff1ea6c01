#pragma once
// An Engine with its arena on the heap, for hosted code (the unit tests, the
// benchmark); the store domain gives its engine memory of its own.

#include <xenstore/engine.hpp>

#include <cstddef>
#include <memory>

namespace xs {

namespace detail {
struct HeapArena {
    explicit HeapArena(size_t n) : bytes(n), mem(new std::max_align_t[(n + sizeof(std::max_align_t) - 1) /
                                                                      sizeof(std::max_align_t)]) {}
    size_t bytes;
    std::unique_ptr<std::max_align_t[]> mem;
};
}  // namespace detail

// The arena (the first base) is allocated before the engine lays its pools
// out in it, and freed after the engine is gone.
class HostedEngine : private detail::HeapArena, public Engine {
public:
    explicit HostedEngine(DomId privileged, Hooks hooks = {}, const Sizing& s = kStandard)
        : detail::HeapArena(Engine::arena_bytes(s)), Engine(privileged, hooks, s, mem.get(), bytes) {}
};

}  // namespace xs
