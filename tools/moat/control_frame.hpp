// The control channel's framing on the host (proto/control.proto): each
// message is "MC", its length (uint16 LE, at most kMaxPayload), the CRC-32 of
// the payload (IEEE, as zlib; uint32 LE), then the payload.
//
// A std::string face on libs/control's codec (control/frame.hpp), which the
// toolstack domain reads and writes with: one codec on both ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace moat::control {

inline constexpr size_t kHeaderSize = 8;       // "MC", length, CRC-32
inline constexpr size_t kMaxPayload = 1024;

// The frame around `payload`; empty if payload is over kMaxPayload (the
// caller's messages are small and checked before they are sent).
[[nodiscard]] std::string encode_frame(std::string_view payload);

// Bytes in, whole checked frames out. A frame whose length is over
// kMaxPayload or whose CRC does not match is dropped and the reader looks
// for the next "MC" further on, so junk or a damaged frame costs that frame
// only. Invariant: the reader holds less than one frame of unchecked bytes,
// whatever a peer sends, plus the checked payloads of the last feed() not
// yet taken by next().
class FrameReader {
 public:
  FrameReader();
  ~FrameReader();
  void feed(std::string_view bytes);
  // The next complete, checked payload, if any.
  [[nodiscard]] std::optional<std::string> next();
  // Frames dropped so far (bad length or CRC), for error messages.
  [[nodiscard]] size_t dropped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moat::control
