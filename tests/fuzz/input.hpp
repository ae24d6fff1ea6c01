#pragma once
// The fuzzers' reader of their input: bytes in order, zeros once it runs out
// (so every decision a fuzzer makes is defined by the input alone).

#include <cstddef>
#include <cstdint>

namespace fuzz {

struct Input {
    const uint8_t* p;
    size_t n;
    bool empty() const { return n == 0; }
    uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    uint16_t u16() {
        uint16_t lo = byte();
        return uint16_t(lo | uint16_t(byte()) << 8);
    }
    uint32_t u32() {
        uint32_t lo = u16();
        return lo | uint32_t(u16()) << 16;
    }
    // For code that pulls bytes through a callback (void* context).
    static uint8_t next(void* self) { return static_cast<Input*>(self)->byte(); }
};

}  // namespace fuzz
