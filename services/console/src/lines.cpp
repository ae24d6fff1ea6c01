#include <console/lines.hpp>

namespace console {

void LineAssembler::feed(const char* s, size_t n, Emit emit, void* ctx) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            end_line(emit, ctx);
            continue;
        }
        if (c == '\r') continue;
        if ((c >= 0x20 && c < 0x7F) || c == '\t') {
            text_[len_++] = char(c);
        } else {
            text_[len_++] = '\\';
            text_[len_++] = 'x';
            text_[len_++] = kHex[c >> 4];
            text_[len_++] = kHex[c & 15];
        }
        if (++raw_ == kMaxLine) end_line(emit, ctx);
    }
}

void LineAssembler::flush(Emit emit, void* ctx) {
    if (raw_) end_line(emit, ctx);
}

void LineAssembler::end_line(Emit emit, void* ctx) {
    emit(ctx, text_, len_);
    len_ = raw_ = 0;
}

size_t format_line(const char* name, const char* text, size_t n, char* out) {
    size_t k = 0;
    for (size_t i = 0; name[i] && i < 32; ++i) out[k++] = name[i];
    out[k++] = ':';
    out[k++] = ' ';
    if (n > LineAssembler::kMaxText) n = LineAssembler::kMaxText;
    for (size_t i = 0; i < n; ++i) out[k++] = text[i];
    out[k++] = '\n';
    return k;
}

}  // namespace console
