#pragma once
// Internal pieces shared by elf.cpp and xen_notes.cpp.

#include <cstddef>
#include <cstdint>

#include <base/result.hpp>
#include <elf/elf.hpp>

namespace elf::detail {

// Bounded little-endian reads of an untrusted image through its Source.
// Readers never touch bytes outside [0, size): an out-of-range read yields 0
// (callers check lengths first, so that fallback only guards against
// mistakes), and so does a read the source fails, which is remembered
// (failed()) and turned into Error::ReadFailed by the parser. An image in
// memory is read in place; any other source through a small cache, so that
// the parser's many small reads cost one source read per block.
class Reader {
public:
    explicit Reader(const Source& s) : s_(s) {}

    uint64_t size() const { return s_.size; }
    bool failed() const { return failed_; }

    // [off, off+len) lies within the image.
    bool has(uint64_t off, uint64_t len) const { return off <= s_.size && len <= s_.size - off; }

    uint8_t u8(uint64_t off) {
        if (!has(off, 1)) return 0;
        if (s_.data) return s_.data[off];
        for (unsigned k = 0; k < 2; ++k) {
            Block& b = blocks_[k];
            if (off >= b.base && off - b.base < b.valid) {
                last_ = k;
                return b.bytes[off - b.base];
            }
        }
        if (!fill(off)) return 0;
        const Block& b = blocks_[last_];
        return b.bytes[off - b.base];
    }
    uint64_t le(uint64_t off, unsigned bytes) {
        if (!has(off, bytes)) return 0;
        uint64_t v = 0;  // in increasing address order: one refill at most at a block edge
        for (unsigned i = 0; i < bytes; ++i) v |= uint64_t{u8(off + i)} << (8 * i);
        return v;
    }
    uint16_t u16(uint64_t off) { return static_cast<uint16_t>(le(off, 2)); }
    uint32_t u32(uint64_t off) { return static_cast<uint32_t>(le(off, 4)); }
    uint64_t u64(uint64_t off) { return le(off, 8); }

private:
    static constexpr size_t kBlock = 512;
    struct Block {
        uint64_t base = 0;
        size_t valid = 0;
        uint8_t bytes[kBlock];
    };

    // Two blocks, the one not used last refilled: a string read twice
    // across a block edge costs no more reads.
    bool fill(uint64_t off) {
        const unsigned k = last_ ^ 1u;
        Block& b = blocks_[k];
        const uint64_t base = off - off % kBlock;
        const uint64_t n = s_.size - base < kBlock ? s_.size - base : kBlock;
        b.valid = 0;
        if (failed_ || !s_.read || !s_.read(s_.ctx, base, b.bytes, static_cast<size_t>(n))) {
            failed_ = true;
            return false;
        }
        b.base = base;
        b.valid = static_cast<size_t>(n);
        last_ = k;
        return true;
    }

    const Source& s_;
    Block blocks_[2];
    unsigned last_ = 0;
    bool failed_ = false;
};

// ELF64 layout constants.
constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr size_t kShdrSize = 64;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;
constexpr uint32_t kShtNote = 7;

// Xen notes as found, before defaults and cross-checks.
struct RawXenNotes {
    XenParams params;  // strings, feature bitmaps, numeric values found
    bool has_virt_base;
    bool has_entry;
    bool has_xen_version;
    bool xen_version_ok;  // full (untruncated) value starts with "xen-3.0"
    bool has_loader;
    bool loader_ok;       // full value starts with "generic"
    bool has_guest_os;
    unsigned xen_notes;   // "Xen" notes seen
    unsigned total_notes; // all notes seen, for kMaxNotes
};

// Walks the notes in the image's bytes [off, off+len) (a PT_NOTE segment or
// an SHT_NOTE section, already checked to lie within the image), recording
// "Xen" notes into `raw`.
base::Status<Error> scan_notes(Reader& r, uint64_t off, uint64_t len, RawXenNotes& raw);

}  // namespace elf::detail
