#include <rt/gnttab.hpp>
#include <rt/mm.hpp>

namespace rt {

namespace {

alignas(4096) uint8_t g_table_page[4096];
grant::Table g_table;
bool g_table_tried;

// The window: pages of our own image whose mapping is replaced by a foreign
// one while in use, and given back its own frame after unmapping.
alignas(4096) uint8_t g_default_window[kForeignWindowPages][4096];
ForeignSlot g_default_slots[kForeignWindowPages];
uint8_t (*g_window)[4096] = g_default_window;
ForeignSlot* g_slots = g_default_slots;
unsigned g_window_pages = kForeignWindowPages;

uint64_t own_pte(const void* va) {
    uint64_t pfn = (ptr(va) - kVirtBase) >> 12;
    return (mfn_of_pfn(pfn) << 12) | kPteP | kPteRw | kPteA | kPteD;
}

}  // namespace

void set_foreign_window(uint8_t (*pages)[4096], ForeignSlot* slots, unsigned n) {
    for (unsigned i = 0; i < g_window_pages; ++i)
        if (g_slots[i].used) return;   // not while pages are mapped in the old one
    for (unsigned i = 0; i < n; ++i) slots[i] = ForeignSlot{false, 0};
    g_window = pages;
    g_slots = slots;
    g_window_pages = n;
}

grant::Table& grant_table() {
    if (!g_table_tried) {
        g_table_tried = true;
        uint64_t frame = 0;
        abi::GnttabSetupTable st{abi::kDomidSelf, 1, 0, ptr(&frame)};
        if (gnttab_op(abi::GnttabOp::setup_table, &st) == 0 && st.status == 0 &&
            update_va_mapping(ptr(g_table_page), (frame << 12) | kPteP | kPteRw | kPteA | kPteD) == 0)
            g_table = grant::Table(reinterpret_cast<abi::GrantEntryV1*>(g_table_page), abi::kGrantEntriesV1PerPage);
    }
    return g_table;
}

void* map_grant(uint16_t dom, uint32_t ref, bool readonly, long* error) {
    unsigned i = 0;
    while (i < g_window_pages && g_slots[i].used) ++i;
    if (i == g_window_pages) {
        if (error) *error = -12;   // ENOMEM
        return nullptr;
    }
    abi::GnttabMapGrantRef m{};
    m.host_addr = ptr(g_window[i]);
    m.flags = abi::kGntmapHostMap | (readonly ? abi::kGntmapReadonly : 0);
    m.ref = ref;
    m.dom = dom;
    long r = gnttab_op(abi::GnttabOp::map_grant_ref, &m);
    if (r == 0 && m.status != 0) r = m.status;
    if (r != 0) {
        if (error) *error = r;
        return nullptr;
    }
    g_slots[i] = ForeignSlot{true, m.handle};
    return g_window[i];
}

long unmap_grant(void* va) {
    uint64_t off = ptr(va) - ptr(g_window[0]);
    unsigned i = unsigned(off / 4096);
    if (ptr(va) < ptr(g_window[0]) || i >= g_window_pages || off % 4096 || !g_slots[i].used) return -22;
    abi::GnttabUnmapGrantRef u{};
    u.host_addr = ptr(va);
    u.handle = g_slots[i].handle;
    long r = gnttab_op(abi::GnttabOp::unmap_grant_ref, &u);
    if (r == 0 && u.status != 0) r = u.status;
    // bad_handle: the hypervisor already took the mapping away (the granter
    // was destroyed first); the slot is free all the same.
    if (r != 0 && r != long(abi::GntStatus::bad_handle)) return r;
    // The entry is empty now: our own frame goes back.
    long m = update_va_mapping(ptr(va), own_pte(va));
    g_slots[i].used = false;
    return r ? r : m;
}

}  // namespace rt
