#include "uart.hpp"

#include <cstdint>

namespace console::uart {

namespace {
constexpr uint16_t kCom1 = 0x3F8;
constexpr uint16_t kData = kCom1, kIer = kCom1 + 1, kFcr = kCom1 + 2, kLcr = kCom1 + 3, kMcr = kCom1 + 4,
                   kLsr = kCom1 + 5;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20;

inline uint8_t inb(uint16_t port) {
    uint8_t v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

void put(char c) {
    // Bounded: a UART that never drains (none there) costs time, not a hang.
    for (unsigned spins = 0; spins < 100000 && !(inb(kLsr) & kLsrThrEmpty); ++spins) asm volatile("pause");
    outb(kData, static_cast<uint8_t>(c));
}
}  // namespace

void init() {
    outb(kIer, 0x00);   // no interrupts
    outb(kLcr, 0x80);   // DLAB
    outb(kData, 0x01);  // divisor 1: 115200 baud
    outb(kIer, 0x00);
    outb(kLcr, 0x03);   // 8N1, DLAB off
    outb(kFcr, 0xC3);   // FIFOs on, receive FIFO cleared
    outb(kMcr, 0x03);   // DTR, RTS
}

void write(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (s[i] == '\n') put('\r');
        put(s[i]);
    }
}

void enable_rx_interrupt() {
    outb(kIer, 0x01);   // received data available
    outb(kMcr, 0x0B);   // DTR, RTS, OUT2 (which gates the IRQ line on a PC)
}

int read_byte() { return (inb(kLsr) & kLsrDataReady) ? inb(kData) : -1; }

}  // namespace console::uart
