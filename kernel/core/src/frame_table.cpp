#include <core/frame_table.hpp>

namespace core {

namespace {
FrameTable g_frame_table;
}

FrameTable& frame_table() { return g_frame_table; }

void FrameTable::init(FrameInfo* info, uint64_t nframes) {
    info_ = info;
    nframes_ = nframes;
    for (uint64_t i = 0; i < nframes; ++i) info_[i] = FrameInfo{kOwnerNone, PageType::none, 0, 0, 0, 0};
}

bool FrameTable::get_type(Mfn mfn, DomId owner, PageType type) {
    if (!valid(mfn)) return false;
    FrameInfo& f = info_[mfn];
    if (f.owner != owner) return false;
    if (f.type_count == 0) {
        f.type = type;
        f.flags &= static_cast<uint8_t>(~kFrameValidated);
    } else if (f.type != type) {
        return false;
    }
    ++f.type_count;
    ++f.count;
    return true;
}

void FrameTable::put_type(Mfn mfn) {
    FrameInfo& f = info_[mfn];
    --f.count;
    if (--f.type_count == 0) {
        f.type = PageType::none;
        f.flags &= static_cast<uint8_t>(~(kFrameValidated | kFramePinned));
    }
}

}  // namespace core
