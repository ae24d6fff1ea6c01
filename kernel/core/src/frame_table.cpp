#include <core/frame_table.hpp>

namespace core {

namespace {
FrameTable g_frame_table;
}

FrameTable& frame_table() { return g_frame_table; }

void FrameTable::init(FrameInfo* info, uint64_t nframes) {
    info_ = info;
    nframes_ = nframes;
    for (uint64_t i = 0; i < nframes; ++i) info_[i] = FrameInfo{kOwnerNone, PageType::none, 0, 0, 0, 0, 0, 0, 0};
}

}  // namespace core
