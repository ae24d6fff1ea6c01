// Unpacking Linux bzImages on the host (tools/moat/bzimage.cpp): synthetic
// bzImages built here (a setup header and an xz or gzip payload made with
// liblzma and zlib) unpack to the ELF they hold; damaged ones (truncated,
// corrupt, wrongly sized, other compressions, old protocol) are refused with
// a reason; the cache unpacks once. With Debian's kernel installed
// (build/deps.sh), that one unpacks too.
#include "bzimage.hpp"

#include <gtest/gtest.h>

#include <lzma.h>
#include <zlib.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace bz = moat::bzimage;

void put16(std::string* b, size_t at, uint16_t v) {
  (*b)[at] = char(v & 0xff);
  (*b)[at + 1] = char(v >> 8);
}
void put32(std::string* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + size_t(i)] = char((v >> (8 * i)) & 0xff);
}
std::string le32(uint32_t v) {
  std::string s(4, '\0');
  put32(&s, 0, v);
  return s;
}

// Something shaped like a vmlinux: the ELF magic, then bytes that compress.
std::string fake_elf(size_t size = 100000) {
  std::string e = std::string("\x7f" "ELF\x02\x01\x01", 7);
  uint32_t x = 12345;
  while (e.size() < size) {
    x = x * 1103515245u + 12345u;
    e.push_back(char("moat-linux"[(x >> 16) % 10]));
  }
  return e;
}

std::string xz(const std::string& data) {
  std::string out(lzma_stream_buffer_bound(data.size()), '\0');
  size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, nullptr, reinterpret_cast<const uint8_t*>(data.data()),
                                    data.size(), reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}

std::string gzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, uLong(data.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

constexpr uint32_t kPayloadOffset = 0x1c0;   // into the protected-mode code, as Linux's are

// A bzImage as Linux lays it out: the setup sectors, then the protected-mode
// code with the payload inside it and a little code after it.
std::string bzimage(const std::string& payload, uint8_t setup_sects = 3, uint16_t version = 0x020f) {
  size_t setup = size_t(setup_sects ? setup_sects : 4) + 1;
  std::string b(setup * 512 + kPayloadOffset, '\0');
  b[0x1f1] = char(setup_sects);
  put16(&b, 0x1fe, 0xaa55);
  std::memcpy(&b[0x202], "HdrS", 4);
  put16(&b, 0x206, version);
  b[0x211] = 1;   // LOADED_HIGH
  put32(&b, 0x248, kPayloadOffset);
  put32(&b, 0x24c, uint32_t(payload.size()));
  return b + payload + std::string(300, '\x90');
}

// The payload as Linux's build makes it: xz, then the unpacked size.
std::string xz_payload(const std::string& elf) { return xz(elf) + le32(uint32_t(elf.size())); }

struct Unpacked {
  bool ok;
  std::string elf, why;
};
Unpacked unpack(const std::string& image) {
  Unpacked u;
  u.ok = bz::unpack(image, &u.elf, &u.why);
  if (u.ok) EXPECT_EQ(u.why, "");
  if (!u.ok) EXPECT_NE(u.why, "") << "no reason given";
  EXPECT_EQ(u.why.find('\n'), std::string::npos) << "reason is not one line: " << u.why;
  return u;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(BzImage, XzPayloadUnpacksToTheElf) {
  const std::string elf = fake_elf();
  const std::string image = bzimage(xz_payload(elf));
  EXPECT_TRUE(bz::looks_like(image));
  bz::Header h;
  std::string why;
  ASSERT_TRUE(bz::parse(image, &h, &why)) << why;
  EXPECT_EQ(h.version, 0x020f);
  EXPECT_EQ(h.setup_bytes, 4u * 512);
  EXPECT_EQ(h.payload_offset, 4u * 512 + kPayloadOffset);
  EXPECT_EQ(h.method, bz::Method::xz);
  Unpacked u = unpack(image);
  ASSERT_TRUE(u.ok) << u.why;
  EXPECT_EQ(u.elf, elf);
}

TEST(BzImage, GzipPayloadUnpacksToTheElf) {
  const std::string elf = fake_elf(70000);
  const std::string image = bzimage(gzip(elf));   // gzip's trailer is the size
  Unpacked u = unpack(image);
  ASSERT_TRUE(u.ok) << u.why;
  EXPECT_EQ(u.elf, elf);
}

TEST(BzImage, SetupSectsZeroMeansFour) {
  const std::string elf = fake_elf(5000);
  const std::string image = bzimage(xz_payload(elf), 0);
  bz::Header h;
  std::string why;
  ASSERT_TRUE(bz::parse(image, &h, &why)) << why;
  EXPECT_EQ(h.setup_bytes, 5u * 512);
  EXPECT_EQ(unpack(image).elf, elf);
}

TEST(BzImage, NotABzImage) {
  const std::string elf = fake_elf(5000);
  EXPECT_FALSE(bz::looks_like(elf));
  Unpacked u = unpack(elf + std::string(1000, '\0'));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "not a bzImage (no \"HdrS\" at 0x202)");
  u = unpack("tiny");
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "not a bzImage (4 bytes)");
  // Its magic, but cut inside the setup header.
  std::string image = bzimage(xz_payload(elf));
  u = unpack(image.substr(0, 0x240));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "a bzImage shorter than its setup header (576 bytes)");
}

TEST(BzImage, OldBootProtocolRefused) {
  Unpacked u = unpack(bzimage(xz_payload(fake_elf(5000)), 3, 0x0206));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "boot protocol 2.06 is older than 2.08: the bzImage does not say where its payload is");
}

TEST(BzImage, TruncatedFileRefused) {
  const std::string image = bzimage(xz_payload(fake_elf()));
  bz::Header h;
  std::string why;
  ASSERT_TRUE(bz::parse(image, &h, &why));
  // Cut inside the payload: the header says more than the file has.
  Unpacked u = unpack(image.substr(0, size_t(h.payload_offset) + h.payload_length / 2));
  EXPECT_FALSE(u.ok);
  EXPECT_TRUE(contains(u.why, "goes past the end of the file")) << u.why;
  // Every cut is refused, never a crash.
  for (size_t n = 0; n < image.size() - 300; n += 7) EXPECT_FALSE(unpack(image.substr(0, n)).ok) << n;
}

TEST(BzImage, TruncatedStreamRefused) {
  const std::string elf = fake_elf();
  std::string stream = xz(elf);
  // A payload whose xz stream stops half way (then the size, as Linux appends it).
  Unpacked u = unpack(bzimage(stream.substr(0, stream.size() / 2) + le32(uint32_t(elf.size()))));
  EXPECT_FALSE(u.ok);
  EXPECT_TRUE(contains(u.why, "xz payload")) << u.why;
  std::string g = gzip(elf);
  u = unpack(bzimage(g.substr(0, g.size() / 2) + le32(uint32_t(elf.size()))));
  EXPECT_FALSE(u.ok);
  EXPECT_TRUE(contains(u.why, "gzip payload")) << u.why;
}

TEST(BzImage, EveryCorruptByteOfThePayloadRefused) {
  const std::string elf = fake_elf(3000);
  const std::string good = bzimage(xz_payload(elf));
  bz::Header h;
  std::string why;
  ASSERT_TRUE(bz::parse(good, &h, &why));
  ASSERT_TRUE(unpack(good).ok);
  // xz checks its headers, index and data (CRC-32); the size after it is
  // compared with what came out. So no flipped byte goes unnoticed.
  for (size_t i = 0; i < h.payload_length; ++i) {
    std::string bad = good;
    bad[size_t(h.payload_offset) + i] ^= 0x5a;
    Unpacked u = unpack(bad);
    EXPECT_FALSE(u.ok) << "byte " << i << " of the payload flipped";
  }
  // Garbage instead of the stream.
  std::string garbage(200, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char(i * 37 + 11);
  std::string payload = std::string("\xfd" "7zXZ", 6) + garbage;
  payload[5] = '\0';
  Unpacked u = unpack(bzimage(payload));
  EXPECT_FALSE(u.ok);
  EXPECT_TRUE(contains(u.why, "xz payload")) << u.why;
}

TEST(BzImage, WrongSizeRefused) {
  const std::string elf = fake_elf(5000);
  Unpacked u = unpack(bzimage(xz(elf) + le32(uint32_t(elf.size() + 1))));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "its payload says it unpacks to 5001 bytes, but it unpacked to 5000");
}

TEST(BzImage, PayloadThatIsNoElfRefused) {
  const std::string data(4096, 'x');
  Unpacked u = unpack(bzimage(xz_payload(data)));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "its xz payload is not an ELF image (it starts 78 78 78 78)");
}

TEST(BzImage, OtherCompressionsRefusedByName) {
  struct {
    const char* magic;
    size_t len;
    const char* name;
  } methods[] = {{"BZh91AY&SY", 10, "bzip2"},
                 {"\x5d\x00\x00\x80\x00", 5, "lzma"},
                 {"\x89LZO\x00\x0d\x0a\x1a\x0a", 9, "lzo"},
                 {"\x02\x21\x4c\x18", 4, "lz4"},
                 {"\x28\xb5\x2f\xfd\x00", 5, "zstd"}};
  for (const auto& m : methods) {
    std::string payload = std::string(m.magic, m.len) + std::string(100, 'z') + le32(1000);
    Unpacked u = unpack(bzimage(payload));
    EXPECT_FALSE(u.ok) << m.name;
    EXPECT_EQ(u.why, std::string("its payload is compressed with ") + m.name +
                         ": moat unpacks gzip and xz only (Debian's kernels are xz)");
    EXPECT_EQ(bz::method_name(bz::detect(payload)), std::string(m.name));
  }
  Unpacked u = unpack(bzimage(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8) + le32(8)));
  EXPECT_FALSE(u.ok);
  EXPECT_EQ(u.why, "its payload is compressed with an unknown method (it starts 01 02 03 04 05 06): moat unpacks gzip and xz");
}

TEST(BzImage, PayloadOutsideTheFileRefused) {
  std::string image = bzimage(xz_payload(fake_elf(5000)));
  std::string b = image;
  put32(&b, 0x248, 0xfffffff0u);   // offset past the end
  EXPECT_TRUE(contains(unpack(b).why, "goes past the end of the file"));
  b = image;
  put32(&b, 0x24c, 0xffffffffu);   // length past the end (no overflow)
  EXPECT_TRUE(contains(unpack(b).why, "goes past the end of the file"));
  b = image;
  put32(&b, 0x24c, 3);
  EXPECT_EQ(unpack(b).why, "its payload is 3 bytes: too short for a compressed kernel");
}

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "moat-bzimage-test-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void write(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}
std::string read(const std::filesystem::path& p) {
  std::string s, why;
  EXPECT_TRUE(bz::read_file(p, &s, &why)) << why;
  return s;
}

TEST(BzImageCache, UnpacksOnceIntoTheCache) {
  TempDir dir;
  const std::string elf = fake_elf();
  const auto image = dir.path() / "vmlinuz-6.1.0-test";
  write(image, bzimage(xz_payload(elf)));
  EXPECT_TRUE(bz::file_looks_like(image));
  const auto cache = dir.path() / "cache";
  std::filesystem::path out;
  std::string why;
  ASSERT_TRUE(bz::unpack_cached(image, cache, &out, &why)) << why;
  EXPECT_EQ(out.parent_path(), cache);
  EXPECT_EQ(out.filename().string().rfind("vmlinuz-6.1.0-test-", 0), 0u) << out;
  EXPECT_EQ(out.extension(), ".elf");
  EXPECT_EQ(read(out), elf);
  // Found the second time: not unpacked again.
  write(out, "kept");
  std::filesystem::path again;
  ASSERT_TRUE(bz::unpack_cached(image, cache, &again, &why)) << why;
  EXPECT_EQ(again, out);
  EXPECT_EQ(read(again), "kept");
  // Another kernel, another entry.
  write(image, bzimage(xz_payload(fake_elf(5000))));
  ASSERT_TRUE(bz::unpack_cached(image, cache, &again, &why)) << why;
  EXPECT_NE(again, out);
  EXPECT_EQ(read(again), fake_elf(5000));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(cache), std::filesystem::directory_iterator()), 2);
}

TEST(BzImageCache, BadImageLeavesNothingBehind) {
  TempDir dir;
  const auto image = dir.path() / "vmlinuz-bad";
  std::string b = bzimage(xz_payload(fake_elf()));
  write(image, b.substr(0, b.size() - 2000));   // truncated
  const auto cache = dir.path() / "cache";
  std::filesystem::path out;
  std::string why;
  EXPECT_FALSE(bz::unpack_cached(image, cache, &out, &why));
  EXPECT_TRUE(contains(why, "goes past the end of the file")) << why;
  EXPECT_TRUE(!std::filesystem::exists(cache) || std::filesystem::is_empty(cache));
  EXPECT_FALSE(bz::unpack_cached(dir.path() / "missing", cache, &out, &why));
  EXPECT_TRUE(contains(why, "cannot read")) << why;
}

// Debian's own kernel, as build/deps.sh fetches it: an xz bzImage whose
// payload is an x86-64 ELF vmlinux with Xen's ELF notes.
TEST(BzImageDebian, StockKernelUnpacks) {
  const std::filesystem::path vmlinuz = "/var/lib/moat/linux/vmlinuz";
  if (!std::filesystem::exists(vmlinuz)) GTEST_SKIP() << vmlinuz << " missing (make deps fetches it)";
  std::string image, why, elf;
  ASSERT_TRUE(bz::read_file(vmlinuz, &image, &why)) << why;
  bz::Header h;
  ASSERT_TRUE(bz::parse(image, &h, &why)) << why;
  EXPECT_EQ(h.method, bz::Method::xz);
  ASSERT_TRUE(bz::unpack(image, &elf, &why)) << why;
  ASSERT_GT(elf.size(), 64u);
  EXPECT_EQ(elf[4], 2) << "ELFCLASS64";
  EXPECT_EQ(uint8_t(elf[18]) | uint8_t(elf[19]) << 8, 62) << "EM_X86_64";
  EXPECT_NE(elf.find(std::string("Xen\0", 4)), std::string::npos) << "no Xen ELF note name";
}

}  // namespace
