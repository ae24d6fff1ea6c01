#include <control/frame.hpp>

#include <base/crc32.hpp>

namespace control {

namespace {
uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
}  // namespace

size_t encode_frame(const uint8_t* payload, size_t len, uint8_t* out, size_t cap) {
    if (len > kMaxPayload || cap < kHeaderBytes + len) return 0;
    uint32_t crc = base::crc32(payload, len);
    out[0] = kMagic[0];
    out[1] = kMagic[1];
    out[2] = uint8_t(len), out[3] = uint8_t(len >> 8);
    for (int i = 0; i < 4; ++i) out[4 + i] = uint8_t(crc >> (8 * i));
    if (len) __builtin_memcpy(out + kHeaderBytes, payload, len);
    return kHeaderBytes + len;
}

FrameReader::Check FrameReader::check() {
    if (n_ >= 1 && buf_[0] != kMagic[0]) return Check::bad;
    if (n_ >= 2 && buf_[1] != kMagic[1]) return Check::bad;
    if (n_ < kHeaderBytes) return Check::prefix;
    len_ = le16(buf_ + 2);
    if (len_ > kMaxPayload) {
        ++bad_frames_;
        return Check::bad;
    }
    if (n_ < kHeaderBytes + len_) return Check::prefix;
    if (base::crc32(buf_ + kHeaderBytes, len_) != le32(buf_ + 4)) {
        ++bad_frames_;
        return Check::bad;
    }
    return Check::frame;
}

void FrameReader::put(uint8_t byte) {
    if (n_ == kMaxFrame) {   // next() not called: the oldest byte goes (cannot be a frame's start any more)
        __builtin_memmove(buf_, buf_ + 1, --n_);
        ++skipped_;
        ready_ = false;
    }
    buf_[n_++] = byte;
}

bool FrameReader::next() {
    if (ready_) {   // the frame handed out last goes; what followed it stays
        size_t used = kHeaderBytes + len_;
        __builtin_memmove(buf_, buf_ + used, n_ - used);
        n_ -= used;
        ready_ = false;
    }
    while (n_) {
        Check c = check();
        if (c == Check::prefix) return false;
        if (c == Check::frame) return ready_ = true;
        // Not a frame here: look for the next "M" after this start.
        size_t i = 1;
        while (i < n_ && buf_[i] != kMagic[0]) ++i;
        skipped_ += i;
        __builtin_memmove(buf_, buf_ + i, n_ - i);
        n_ -= i;
    }
    return false;
}

}  // namespace control
