#pragma once
// In-memory ELF64 builder for tests: an ELF header, PT_LOAD segments, Xen
// notes in a PT_NOTE segment (or an SHT_NOTE section), laid out so every
// offset is known and can be patched afterwards.

#include <cstdint>
#include <string>
#include <vector>

namespace elftest {

constexpr uint32_t PT_LOAD = 1, PT_NOTE = 4;
constexpr uint32_t PF_X = 1, PF_W = 2, PF_R = 4;

inline void put(std::vector<uint8_t>& b, size_t off, uint64_t v, unsigned bytes) {
    if (b.size() < off + bytes) b.resize(off + bytes);
    for (unsigned i = 0; i < bytes; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put16(std::vector<uint8_t>& b, size_t off, uint64_t v) { put(b, off, v, 2); }
inline void put32(std::vector<uint8_t>& b, size_t off, uint64_t v) { put(b, off, v, 4); }
inline void put64(std::vector<uint8_t>& b, size_t off, uint64_t v) { put(b, off, v, 8); }

struct Note {
    uint32_t type;
    std::vector<uint8_t> desc;
    std::string name = "Xen";  // written with its NUL
};

inline Note note_str(uint32_t type, const std::string& s) {
    Note n{type, std::vector<uint8_t>(s.begin(), s.end())};
    n.desc.push_back(0);
    return n;
}
inline Note note_u64(uint32_t type, uint64_t v) {
    Note n{type, {}};
    put64(n.desc, 0, v);
    return n;
}
inline Note note_u32(uint32_t type, uint32_t v) {
    Note n{type, {}};
    put32(n.desc, 0, v);
    return n;
}

inline std::vector<uint8_t> serialize_notes(const std::vector<Note>& notes) {
    std::vector<uint8_t> b;
    for (const auto& n : notes) {
        size_t at = b.size();
        size_t namesz = n.name.size() + 1;
        put32(b, at, namesz);
        put32(b, at + 4, n.desc.size());
        put32(b, at + 8, n.type);
        at += 12;
        b.resize(at + ((namesz + 3) & ~size_t{3}), 0);
        for (size_t i = 0; i < n.name.size(); ++i) b[at + i] = static_cast<uint8_t>(n.name[i]);
        at += (namesz + 3) & ~size_t{3};
        b.resize(at + ((n.desc.size() + 3) & ~size_t{3}), 0);
        for (size_t i = 0; i < n.desc.size(); ++i) b[at + i] = n.desc[i];
    }
    return b;
}

struct Seg {
    uint64_t vaddr;
    std::vector<uint8_t> bytes;  // file bytes (p_filesz = bytes.size())
    uint64_t memsz = 0;          // 0: bytes.size()
    uint32_t flags = PF_R | PF_X;
    uint64_t align = 4096;
    bool has_paddr = false;      // unless set, the p_paddr Xen places at vaddr (see Builder::default_paddr)
    uint64_t paddr = 0;
    uint32_t type = PT_LOAD;
};

inline std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
    return v;
}

struct Builder {
    std::vector<Seg> segs;
    std::vector<Note> notes;
    std::vector<uint8_t> raw_notes;  // appended verbatim after the serialized notes
    bool notes_in_section = false;
    unsigned extra_sections = 0;     // SHT_PROGBITS sections after those (Linux has ~40)
    uint64_t entry = 0;

    // Filled in by build().
    size_t note_phdr = 0;  // index of the PT_NOTE program header (if any)
    size_t notes_off = 0, notes_size = 0;
    std::vector<size_t> seg_off;
    size_t shoff = 0;

    static size_t phdr_at(size_t i) { return 64 + 56 * i; }

    // The value of the last numeric note of `type` (0 if none).
    uint64_t note_value(uint32_t type) const {
        uint64_t v = 0;
        for (const auto& n : notes) {
            if (n.type != type || n.name != "Xen") continue;
            v = 0;
            for (size_t i = n.desc.size(); i-- > 0 && i < 8;) v = (v << 8) | n.desc[i];
        }
        return v;
    }
    // Xen places a segment at p_paddr + VIRT_BASE - PADDR_OFFSET (both 0
    // when absent): the p_paddr that puts it at its vaddr, as a linker
    // script for a Xen guest writes it.
    uint64_t default_paddr(uint64_t vaddr) const {
        return vaddr - note_value(3 /* VIRT_BASE */) + note_value(4 /* PADDR_OFFSET */);
    }

    std::vector<uint8_t> build() {
        std::vector<uint8_t> blob = serialize_notes(notes);
        blob.insert(blob.end(), raw_notes.begin(), raw_notes.end());
        const bool note_seg = !notes_in_section && !blob.empty();
        const size_t nph = segs.size() + (note_seg ? 1 : 0);
        std::vector<uint8_t> b(64 + 56 * nph, 0);
        size_t off = b.size();
        notes_off = (off + 3) & ~size_t{3};
        notes_size = blob.size();
        b.resize(notes_off, 0);
        b.insert(b.end(), blob.begin(), blob.end());
        off = b.size();
        seg_off.clear();
        for (const auto& s : segs) {
            uint64_t a = s.align > 1 ? s.align : 1;
            size_t o = static_cast<size_t>(((off + a - 1) / a) * a + (s.vaddr % a));
            if (o < off) o += a;
            seg_off.push_back(o);
            b.resize(o, 0);
            b.insert(b.end(), s.bytes.begin(), s.bytes.end());
            off = b.size();
        }
        // ELF header.
        b[0] = 0x7f; b[1] = 'E'; b[2] = 'L'; b[3] = 'F';
        b[4] = 2; b[5] = 1; b[6] = 1;
        put16(b, 16, 2);      // ET_EXEC
        put16(b, 18, 62);     // EM_X86_64
        put32(b, 20, 1);
        put64(b, 24, entry);
        put64(b, 32, 64);     // e_phoff
        put16(b, 52, 64);
        put16(b, 54, 56);
        put16(b, 56, nph);
        for (size_t i = 0; i < segs.size(); ++i) {
            const Seg& s = segs[i];
            size_t p = phdr_at(i);
            put32(b, p, s.type);
            put32(b, p + 4, s.flags);
            put64(b, p + 8, seg_off[i]);
            put64(b, p + 16, s.vaddr);
            put64(b, p + 24, s.has_paddr ? s.paddr : default_paddr(s.vaddr));
            put64(b, p + 32, s.bytes.size());
            put64(b, p + 40, s.memsz ? s.memsz : s.bytes.size());
            put64(b, p + 48, s.align);
        }
        if (note_seg) {
            note_phdr = segs.size();
            size_t p = phdr_at(note_phdr);
            put32(b, p, PT_NOTE);
            put32(b, p + 4, PF_R);
            put64(b, p + 8, notes_off);
            put64(b, p + 32, notes_size);
            put64(b, p + 40, notes_size);
            put64(b, p + 48, 4);
        }
        if (notes_in_section || extra_sections) {
            const size_t nsec = 1 + (notes_in_section ? 1 : 0) + extra_sections;
            shoff = (b.size() + 7) & ~size_t{7};
            b.resize(shoff + nsec * 64, 0);  // null section, the note section, the others
            size_t at = shoff + 64;
            if (notes_in_section) {
                put32(b, at + 4, 7);  // SHT_NOTE
                put64(b, at + 24, notes_off);
                put64(b, at + 32, notes_size);
                at += 64;
            }
            for (unsigned k = 0; k < extra_sections; ++k, at += 64) {
                put32(b, at + 4, 1);  // SHT_PROGBITS, over the first segment's bytes
                put64(b, at + 24, seg_off.empty() ? 0 : seg_off[0]);
                put64(b, at + 32, segs.empty() ? 0 : segs[0].bytes.size());
            }
            put64(b, 40, shoff);
            put16(b, 58, 64);
            put16(b, 60, nsec);
        }
        return b;
    }
};

}  // namespace elftest
