#include <xenstore/path.hpp>
#include <xenstore/tree.hpp>

namespace xs {

void Tree::reset(DomId root_owner) {
    high_ = 0;
    free_head_ = kNil;
    free_count_ = 0;
    gen_ = 0;
    auto r = alloc("/", 1, 0, Kind::live);  // cannot fail on an empty table
    Node& root = nodes_[r.value()];
    root.perms = Perms::make(root_owner, kPermNone);
    root.charged = kNoDom;  // the root is nobody's quota
    root.gen = next_gen();
}

int32_t Tree::find(const char* p, size_t n, uint16_t layer) const {
    uint32_t h = path_hash(p, n);
    for (uint32_t i = 0; i < high_; ++i) {
        const Node& x = nodes_[i];
        if (x.kind != Kind::free && x.hash == h && x.layer == layer && blobs_.equals(x.path, p, n))
            return static_cast<int32_t>(i);
    }
    return -1;
}

int32_t Tree::view(const char* p, size_t n, uint16_t layer) const {
    if (layer != 0) {
        int32_t t = find(p, n, layer);
        if (t >= 0 && nodes_[t].kind == Kind::live) return t;
        if (t >= 0 && nodes_[t].kind == Kind::deleted) return -1;
    }
    return find(p, n, 0);
}

Result<int32_t> Tree::alloc(const char* p, size_t n, uint16_t layer, Kind kind) {
    if (free_nodes() == 0) return Err{Error::nomem};
    auto path = blobs_.store(p, n);
    if (!path) return Err{path.error()};
    uint32_t i;
    if (free_head_ != kNil) {
        i = free_head_;
        free_head_ = nodes_[i].next_free;
        free_count_--;
    } else {
        i = high_++;
    }
    Node& x = nodes_[i];
    x.hash = path_hash(p, n);
    x.parent_hash = n == 1 ? 0 : path_hash(p, parent_len(p, n));
    x.path = path.value();
    x.value = kEmptyBlob;
    x.perms = Perms::make(kNoDom, kPermNone);
    x.gen = 0;
    x.layer = layer;
    x.charged = kNoDom;
    x.kind = kind;
    x.exact_event = false;
    x.next_free = kNil;
    return static_cast<int32_t>(i);
}

void Tree::release(int32_t i) {
    Node& x = nodes_[i];
    blobs_.release(x.path);
    blobs_.release(x.value);
    x.kind = Kind::free;
    x.next_free = free_head_;
    free_head_ = static_cast<uint32_t>(i);
    free_count_++;
}

Status Tree::set_value(int32_t i, const char* v, size_t n) { return blobs_.replace(nodes_[i].value, v, n); }

size_t Tree::path_of(int32_t i, char* out) const {
    blobs_.read(nodes_[i].path, out);
    return nodes_[i].path.len;
}

bool Tree::is_child(int32_t i, const char* p, size_t n, uint32_t hash) const {
    const Node& x = nodes_[i];
    if (x.kind == Kind::free || x.parent_hash != hash || x.path.len <= n || x.path.len == 1) return false;
    if (!blobs_.starts_with(x.path, p, n)) return false;
    // The rest must be one component: no '/' after the parent's prefix.
    char buf[kPathBuf];
    blobs_.read(x.path, buf);
    size_t start = n == 1 ? 1 : n + 1;
    if (n != 1 && buf[n] != '/') return false;
    for (size_t k = start; k < x.path.len; ++k)
        if (buf[k] == '/') return false;
    return true;
}

bool Tree::is_self_or_below(int32_t i, const char* p, size_t n) const {
    const Node& x = nodes_[i];
    if (x.kind == Kind::free || !blobs_.starts_with(x.path, p, n)) return false;
    if (x.path.len == n || (n == 1 && p[0] == '/')) return true;
    char c;
    // Read the byte after the prefix.
    char buf[kPathBuf];
    blobs_.read(x.path, buf);
    c = buf[n];
    return c == '/';
}

}  // namespace xs
