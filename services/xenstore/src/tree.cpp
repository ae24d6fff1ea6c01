#include <xenstore/path.hpp>
#include <xenstore/tree.hpp>

namespace xs {

void Tree::place(Arena& a, uint32_t nodes, Tree* into) {
    Node* n = a.take<Node>(nodes);
    uint32_t buckets = pow2_at_least(nodes);
    uint32_t* b = a.take<uint32_t>(buckets);
    uint32_t* pb = a.take<uint32_t>(buckets);
    if (!into) return;
    into->nodes_ = n;
    into->cap_ = nodes;
    into->bucket_ = b;
    into->pbucket_ = pb;
    into->mask_ = buckets - 1;
}

void Tree::reset(DomId root_owner) {
    high_ = 0;
    free_head_ = kNil;
    free_count_ = 0;
    gen_ = 0;
    probes_ = 0;
    for (uint32_t b = 0; b <= mask_; ++b) bucket_[b] = pbucket_[b] = kNil;
    auto r = alloc("/", 1, 0, Kind::live);  // cannot fail on an empty table
    Node& root = nodes_[r.value()];
    root.perms = Perms::make(root_owner, kPermNone);
    root.charged = kNoDom;  // the root is nobody's quota
    root.gen = next_gen();
}

int32_t Tree::find(const char* p, size_t n, uint16_t layer) const {
    uint32_t h = path_hash(p, n);
    for (uint32_t i = bucket_[h & (mask_)]; i != kNil; i = nodes_[i].hash_next) {
        const Node& x = nodes_[i];
        probes_++;
        if (x.hash == h && x.layer == layer && blobs_.equals(x.path, p, n)) return static_cast<int32_t>(i);
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
    uint32_t& b = bucket_[x.hash & (mask_)];
    x.hash_next = b;
    b = i;
    x.own_prev = x.own_next = kNil;
    x.sib_prev = x.sib_next = kNil;
    if (n > 1) {
        // At the end of the chain, so a directory lists children in the
        // order they were made (as xenstored does). The head's sib_prev is
        // the tail.
        uint32_t& head = pbucket_[x.parent_hash & mask_];
        if (head == kNil) {
            head = i;
            x.sib_prev = i;
        } else {
            uint32_t tail = nodes_[head].sib_prev;
            nodes_[tail].sib_next = i;
            x.sib_prev = tail;
            nodes_[head].sib_prev = i;
        }
    }
    return static_cast<int32_t>(i);
}

void Tree::release(int32_t i) {
    Node& x = nodes_[i];
    uint32_t* link = &bucket_[x.hash & (mask_)];
    while (*link != static_cast<uint32_t>(i)) link = &nodes_[*link].hash_next;
    *link = x.hash_next;
    if (x.path.len > 1) {
        uint32_t& head = pbucket_[x.parent_hash & mask_];
        uint32_t self = static_cast<uint32_t>(i);
        if (head == self) {
            head = x.sib_next;
            if (head != kNil) nodes_[head].sib_prev = x.sib_prev;  // the tail, still
        } else {
            nodes_[x.sib_prev].sib_next = x.sib_next;
            if (x.sib_next != kNil) nodes_[x.sib_next].sib_prev = x.sib_prev;
            else nodes_[head].sib_prev = x.sib_prev;  // it was the tail
        }
    }
    blobs_.release(x.path);
    blobs_.release(x.value);
    x.kind = Kind::free;
    x.next_free = free_head_;
    free_head_ = static_cast<uint32_t>(i);
    free_count_++;
}

Status Tree::set_value(int32_t i, const char* v, size_t n) { return blobs_.replace(nodes_[i].value, v, n); }

// Walks, for every record, the two chains it must be on (so the cost is the
// records times their chains' lengths, not the buckets: the fuzzers call it
// after every message).
const char* Tree::check_index() const {
    uint32_t used = uint32_t(used_nodes());
    for (uint32_t x = 0; x < high_; ++x) {
        const Node& r = nodes_[x];
        if (r.kind == Kind::free) continue;
        bool found = false;
        uint32_t steps = 0;
        for (uint32_t i = bucket_[r.hash & mask_]; i != kNil; i = nodes_[i].hash_next) {
            if (i >= high_ || nodes_[i].kind == Kind::free) return "a free record in the path index";
            if ((nodes_[i].hash & mask_) != (r.hash & mask_)) return "a record in the wrong bucket";
            if (++steps > used) return "a loop in the path index";
            found |= i == x;
        }
        if (!found) return "a record missing from the path index";
        if (r.path.len <= 1) continue;  // "/" has no parent
        // The parent chain by its links next to x (a chain can be as long
        // as a directory is wide: walking it for every record would cost
        // the square of that).
        uint32_t b = r.parent_hash & mask_;
        bool head = pbucket_[b] == x;
        if (r.sib_prev >= high_ || nodes_[r.sib_prev].kind == Kind::free) return "a broken back link in the parent index";
        if (!head && nodes_[r.sib_prev].sib_next != x) return "a record missing from the parent index";
        if (head && nodes_[r.sib_prev].sib_next != kNil) return "the parent chain's head does not know its tail";
        if (r.sib_next != kNil && (r.sib_next >= high_ || nodes_[r.sib_next].sib_prev != x))
            return "a broken link in the parent index";
        if (r.sib_next == kNil && !head && nodes_[pbucket_[b]].sib_prev != x) return "a chain's tail unknown to its head";
        if ((nodes_[r.sib_prev].parent_hash & mask_) != b) return "a record in the wrong parent bucket";
    }
    return nullptr;
}

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
