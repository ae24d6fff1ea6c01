// A 16550 UART from ring 3 (rt/uart.hpp).

#include <rt/caps.hpp>
#include <rt/uart.hpp>

#include <abi/moat.hpp>

namespace rt {

namespace {
constexpr uint16_t kData = 0, kIer = 1, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20;

inline uint8_t inb(uint16_t port) {
    uint8_t v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
}  // namespace

bool Uart::held() const {
    abi::CapOpArgs a{};
    a.domain = abi::kDomidSelf;
    long n = cap_op(abi::CapOp::size, a);
    unsigned have = 0;
    for (long i = 0; i < n; ++i) {
        abi::MoatCap c = cap_inspect(uint32_t(i));
        if (c.type != uint32_t(abi::CapType::io_ports) || !(c.rights & abi::kCapRightUse)) continue;
        for (unsigned p = 0; p < 8; ++p)
            if (base_ + p >= c.object && base_ + p - c.object < c.object2) have |= 1u << p;
    }
    return have == 0xFF;
}

void Uart::init(bool clear_tx) const {
    outb(base_ + kIer, 0x00);   // no interrupts
    outb(base_ + kLcr, 0x80);   // DLAB
    outb(base_ + kData, 0x01);  // divisor 1: 115200 baud
    outb(base_ + kIer, 0x00);
    outb(base_ + kLcr, 0x03);   // 8N1, DLAB off
    outb(base_ + kFcr, clear_tx ? 0xC7 : 0xC3);   // FIFOs on, receive (and transmit) cleared
    outb(base_ + kMcr, 0x03);   // DTR, RTS
}

void Uart::put(uint8_t b) const {
    for (unsigned spins = 0; spins < 100000 && !(inb(base_ + kLsr) & kLsrThrEmpty); ++spins) asm volatile("pause");
    outb(base_ + kData, b);
}

int Uart::read_byte() const { return (inb(base_ + kLsr) & kLsrDataReady) ? inb(base_ + kData) : -1; }

void Uart::enable_rx_interrupt() const {
    outb(base_ + kIer, 0x01);   // received data available
    outb(base_ + kMcr, 0x0B);   // DTR, RTS, OUT2 (which gates the IRQ line on a PC)
}

}  // namespace rt
