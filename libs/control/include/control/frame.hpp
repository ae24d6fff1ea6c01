#pragma once
// The control channel's framing (proto/control.proto, docs/control.md): each
// message is "MC", the payload's length (uint16, little endian, at most
// kMaxPayload), the payload's CRC-32 (base::crc32, uint32 little endian),
// then the payload. Portable and allocation-free: the toolstack domain reads
// COM2 through it, the host CLI its socket, the tests and the fuzzer plain
// memory.

#include <cstddef>
#include <cstdint>

namespace control {

inline constexpr uint8_t kMagic[2] = {'M', 'C'};
inline constexpr size_t kHeaderBytes = 8;
inline constexpr size_t kMaxPayload = 1024;
inline constexpr size_t kMaxFrame = kHeaderBytes + kMaxPayload;

// Writes the frame around payload[0..len) into out; returns its size, or 0
// if len is over kMaxPayload or the frame does not fit in cap.
[[nodiscard]] size_t encode_frame(const uint8_t* payload, size_t len, uint8_t* out, size_t cap);

// Bytes in, whole checked frames out. A frame whose length is over
// kMaxPayload or whose CRC does not match is dropped and the reader looks for
// the next "MC" one byte after the start of the bad one, so junk or a damaged
// frame costs that frame only, and a frame hidden in junk is still found.
// Usage: for each byte received, put() it, then next() until it says false.
// Invariant (whatever a peer sends): once next() has said false, the reader
// holds less than one frame (kMaxFrame bytes), and each byte costs at most
// one shift of those and one CRC of a payload.
class FrameReader {
public:
    // Takes one byte. The caller has called next() until false since the
    // last put(), so there is room.
    void put(uint8_t byte);
    // The next checked frame held, if any: true, and its payload is
    // payload()/payload_len() until the next put() or next().
    [[nodiscard]] bool next();
    const uint8_t* payload() const { return buf_ + kHeaderBytes; }
    size_t payload_len() const { return ready_ ? len_ : 0; }

    // Frames dropped for a bad length or CRC, and bytes skipped looking for
    // "MC" (those of dropped frames included), for logs and tests.
    uint64_t bad_frames() const { return bad_frames_; }
    uint64_t skipped_bytes() const { return skipped_; }
    // Bytes of an unfinished frame held now (a peer gone quiet mid-frame).
    size_t pending() const { return ready_ ? n_ - (kHeaderBytes + len_) : n_; }
    // Forgets what is held (after a timeout, so that the next request does
    // not wait behind half a frame).
    void reset() { n_ = 0, ready_ = false; }

private:
    enum class Check { prefix, frame, bad };
    // What buf_[0..n_) starts with: a frame's valid beginning, a whole
    // checked frame (len_ set), or nothing that can be a frame.
    Check check();

    // Invariant: n_ <= kMaxFrame; buf_[0..n_) starts with a checked frame
    // (ready_, handed out by the last next()) or is a frame's valid
    // beginning, or is not yet looked at (the byte put() just added).
    uint8_t buf_[kMaxFrame];
    size_t n_ = 0;
    size_t len_ = 0;       // the payload length of the frame at buf_ (once n_ >= kHeaderBytes)
    bool ready_ = false;   // buf_ starts with the frame the last next() handed out
    uint64_t bad_frames_ = 0, skipped_ = 0;
};

}  // namespace control
