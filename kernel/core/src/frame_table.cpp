#include <core/frame_table.hpp>
#include <core/platform.hpp>

namespace core {

FrameTable g_frame_table;
uintptr_t g_direct_map;

void FrameTable::init(FrameInfo* info, uint64_t nframes) {
    g_direct_map = reinterpret_cast<uintptr_t>(platform::phys_to_virt(0));
    info_ = info;
    nframes_ = nframes;
    for (uint64_t i = 0; i < nframes; ++i) info_[i] = FrameInfo{kOwnerNone, PageType::none, 0, 0, 0, 0, 0, 0, 0};
}

}  // namespace core
