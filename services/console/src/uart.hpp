#pragma once
// COM1, driven from ring 3: the IoPorts capability for 0x3F8..0x3FF opens
// those ports in this domain's TSS I/O bitmap, so in/out work directly.
// Polled both ways: the kernel does not deliver the UART's IRQ as an event
// yet, so input is looked for on a timer.

#include <cstddef>

namespace console::uart {

// 115200 8N1, FIFOs on (the receive FIFO cleared, what is still being sent
// left alone), no interrupts.
void init();
// Writes every byte, '\n' as "\r\n".
void write(const char* s, size_t n);
// A received byte, or -1 if none is waiting.
int read_byte();
// Raise COM1's interrupt line (IRQ 4) when a byte arrives.
void enable_rx_interrupt();

}  // namespace console::uart
