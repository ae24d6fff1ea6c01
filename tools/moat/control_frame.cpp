#include "control_frame.hpp"

// The codec itself is libs/control's (the toolstack domain's own): host and
// domain cannot disagree on a byte of it.
#include <control/frame.hpp>

#include <deque>

namespace moat::control {

static_assert(kHeaderSize == ::control::kHeaderBytes && kMaxPayload == ::control::kMaxPayload);

std::string encode_frame(std::string_view payload) {
  std::string out(kHeaderSize + payload.size(), '\0');
  size_t n = ::control::encode_frame(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                                     reinterpret_cast<uint8_t*>(out.data()), out.size());
  out.resize(n);   // 0: over kMaxPayload, which callers rule out first
  return out;
}

struct FrameReader::Impl {
  ::control::FrameReader reader;
  std::deque<std::string> ready;   // checked payloads not yet handed out
};

FrameReader::FrameReader() : impl_(std::make_unique<Impl>()) {}
FrameReader::~FrameReader() = default;

void FrameReader::feed(std::string_view bytes) {
  for (char c : bytes) {
    impl_->reader.put(uint8_t(c));
    while (impl_->reader.next())
      impl_->ready.emplace_back(reinterpret_cast<const char*>(impl_->reader.payload()), impl_->reader.payload_len());
  }
}

std::optional<std::string> FrameReader::next() {
  if (impl_->ready.empty()) return std::nullopt;
  std::string out = std::move(impl_->ready.front());
  impl_->ready.pop_front();
  return out;
}

size_t FrameReader::dropped() const { return size_t(impl_->reader.bad_frames()); }

}  // namespace moat::control
