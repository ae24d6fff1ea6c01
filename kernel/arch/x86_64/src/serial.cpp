#include <arch/cpu.hpp>
#include <arch/serial.hpp>

namespace arch::serial {
namespace {
constexpr uint16_t kCom1 = 0x3F8;

void put(char c) {
    // Wait for the transmit holding register to empty (LSR bit 5).
    for (int spins = 0; spins < 100000 && !(inb(kCom1 + 5) & 0x20); ++spins) pause();
    outb(kCom1, static_cast<uint8_t>(c));
}
}  // namespace

void init() {
    outb(kCom1 + 1, 0x00);  // no interrupts
    outb(kCom1 + 3, 0x80);  // DLAB
    outb(kCom1 + 0, 0x01);  // 115200 baud
    outb(kCom1 + 1, 0x00);
    outb(kCom1 + 3, 0x03);  // 8N1
    outb(kCom1 + 2, 0xC7);  // FIFO on, cleared
    outb(kCom1 + 4, 0x03);  // DTR, RTS
}

void reclaim() {
    outb(kCom1 + 3, 0x03);  // 8N1, DLAB off
    outb(kCom1 + 1, 0x00);  // no interrupts
    outb(kCom1 + 4, 0x03);  // DTR, RTS, no loopback
}

void write(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (s[i] == '\n') put('\r');
        put(s[i]);
    }
}

}  // namespace arch::serial
