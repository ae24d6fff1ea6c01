#pragma once
// A 16550 UART driven from ring 3 (the console domain's COM1, the toolstack's
// COM2): IoPorts capabilities for its eight ports open them in the domain's
// TSS I/O bitmap, so in/out work directly. Bytes as they are: a caller that
// wants "\r\n" for "\n" writes it.

#include <cstddef>
#include <cstdint>

namespace rt {

class Uart {
public:
    static constexpr uint16_t kCom1 = 0x3F8, kCom2 = 0x2F8;

    explicit constexpr Uart(uint16_t base) : base_(base) {}
    uint16_t base() const { return base_; }

    // Whether this domain holds IoPorts capabilities (use) for all eight ports.
    [[nodiscard]] bool held() const;
    // 115200 8N1, FIFOs on, no interrupts. The receive FIFO is cleared; the
    // transmit FIFO too with `clear_tx` (not when someone's output may still
    // be in it).
    void init(bool clear_tx) const;
    // One byte out, waiting (bounded: a UART that never drains costs time,
    // not a hang) for room.
    void put(uint8_t b) const;
    void write(const uint8_t* p, size_t n) const {
        for (size_t i = 0; i < n; ++i) put(p[i]);
    }
    // A received byte, or -1 if none is waiting.
    [[nodiscard]] int read_byte() const;
    // Raise the UART's interrupt line when a byte arrives.
    void enable_rx_interrupt() const;

private:
    uint16_t base_;
};

}  // namespace rt
