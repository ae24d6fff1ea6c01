#pragma once
// The hostile driver domain's virtio-blk function, driven by polling (its
// interrupt is not needed: every request is waited for). Each request is one
// chain: header, one data buffer of at most a page, status byte. A read may
// name any machine address as its data buffer: that is the attack, the
// device writes the sector wherever the descriptor points unless the IOMMU
// stops it.

#include <cstdint>

namespace rt::virtio {
class Device;
}

namespace dma {

// What the device made of a request. Not whether its DMA reached memory:
// QEMU 10 completes a request whose buffer the IOMMU refused (through a
// bounce buffer whose write-back fails silently); older QEMUs stop the
// device instead. The attacks judge by the target's bytes.
enum class Outcome {
    done,         // finished with status OK
    io_error,     // finished with an error status
    needs_reset,  // the device stopped (DEVICE_NEEDS_RESET)
    no_answer,    // nothing within the deadline
};
const char* outcome_name(Outcome o);

// Opens, negotiates, sets up the queue and starts the function `bdf`; again
// after a reset (the device then forgets everything). False with the reason
// printed.
[[nodiscard]] bool blk_open(uint32_t bdf);
// Resets the device and opens it again.
[[nodiscard]] bool blk_reinit();
uint64_t blk_capacity();
// The open function itself (its interrupt line, ISR and acknowledgement:
// the MSI attack, msi.hpp, binds the line to see what reaches the CPU).
rt::virtio::Device& blk_device();

// Reads `sector` into the machine address `maddr` (`len` bytes, at most to
// the end of its page), or writes it from there.
[[nodiscard]] Outcome blk_read_to(uint64_t sector, uint64_t maddr, uint32_t len);
[[nodiscard]] Outcome blk_write_from(uint64_t sector, uint64_t maddr, uint32_t len);
// Reads `sector` through a chain of two data buffers: its first kSector -
// `tail_len` bytes to `head_maddr`, its last `tail_len` to `tail_maddr`
// (virtio-blk wants whole sectors per request, not per buffer: this is how
// a few of its bytes alone are aimed somewhere).
[[nodiscard]] Outcome blk_read_split(uint64_t sector, uint64_t head_maddr, uint64_t tail_maddr, uint32_t tail_len);
// Asks the device not to interrupt when it uses the queue (until the next
// blk_reinit, or blk_quiet(false)): then a completion does not raise the
// line, and what does is something else.
void blk_quiet(bool quiet);

}  // namespace dma
