#pragma once
// XenStore wire protocol: message header and types, error names, and the
// shared ring page (start_info store_mfn).

#include <cstddef>
#include <cstdint>

namespace abi {

enum class XsType : uint32_t {
  control = 0,  // also known as debug
  directory = 1,
  read = 2,
  get_perms = 3,
  watch = 4,
  unwatch = 5,
  transaction_start = 6,
  transaction_end = 7,
  introduce = 8,
  release = 9,
  get_domain_path = 10,
  write = 11,
  mkdir = 12,
  rm = 13,
  set_perms = 14,
  watch_event = 15,
  error = 16,
  is_domain_introduced = 17,
  resume = 18,
  set_target = 19,
  // 20 was "restrict", since removed.
  reset_watches = 21,
  directory_part = 22,
  get_feature = 23,  // newer Xen
  set_feature = 24,  // newer Xen
  get_quota = 25,    // newer Xen
  set_quota = 26,    // newer Xen
  invalid = 0xffff,  // guaranteed never to be a valid type
};
inline constexpr uint32_t kXsTypeCount = 27;

// Header of every request and reply; len bytes of payload follow.
struct XsdSockmsg {
  uint32_t type;    // XsType
  uint32_t req_id;  // echoed in the reply
  uint32_t tx_id;   // transaction, 0 for none
  uint32_t len;     // payload bytes
};
static_assert(sizeof(XsdSockmsg) == 16);
static_assert(offsetof(XsdSockmsg, type) == 0);
static_assert(offsetof(XsdSockmsg, req_id) == 4);
static_assert(offsetof(XsdSockmsg, tx_id) == 8);
static_assert(offsetof(XsdSockmsg, len) == 12);

// An error reply (XsType::error) carries one of these names as its payload.
// The numbers are the Linux errno values clients map them back to; only the
// string travels on the wire. New names are only ever appended.
struct XsdError {
  int errnum;
  const char* errstring;
};
inline constexpr XsdError kXsdErrors[] = {
    {22, "EINVAL"},  {13, "EACCES"}, {17, "EEXIST"}, {21, "EISDIR"},
    {2, "ENOENT"},   {12, "ENOMEM"}, {28, "ENOSPC"}, {5, "EIO"},
    {39, "ENOTEMPTY"}, {38, "ENOSYS"}, {30, "EROFS"}, {16, "EBUSY"},
    {11, "EAGAIN"},  {106, "EISCONN"}, {7, "E2BIG"}, {1, "EPERM"},
};

// Payload of a watch event: path NUL token NUL.
enum class XsWatchField : uint32_t {
  path = 0,
  token = 1,
};

inline constexpr char kXsWriteNone[] = "NONE";
inline constexpr char kXsWriteCreate[] = "CREATE";
inline constexpr char kXsWriteCreateExcl[] = "CREATE|EXCL";

inline constexpr std::size_t kXenstoreRingSize = 1024;
using XenstoreRingIdx = uint32_t;
constexpr std::size_t xenstore_ring_slot(XenstoreRingIdx idx) { return idx & (kXenstoreRingSize - 1); }

inline constexpr std::size_t kXenstorePayloadMax = 4096;
inline constexpr std::size_t kXenstoreAbsPathMax = 3072;
inline constexpr std::size_t kXenstoreRelPathMax = 2048;

// XenstoreDomainInterface::server_features
inline constexpr uint32_t kXenstoreServerFeatureReconnection = 1u << 0;
inline constexpr uint32_t kXenstoreServerFeatureError = 1u << 1;  // error field valid

// XenstoreDomainInterface::connection
inline constexpr uint32_t kXenstoreConnected = 0;
inline constexpr uint32_t kXenstoreReconnect = 1;

// XenstoreDomainInterface::error
inline constexpr uint32_t kXenstoreErrorNone = 0;
inline constexpr uint32_t kXenstoreErrorComm = 1;
inline constexpr uint32_t kXenstoreErrorRingidx = 2;
inline constexpr uint32_t kXenstoreErrorProto = 3;

struct XenstoreDomainInterface {
  char req[kXenstoreRingSize];  // guest -> store
  char rsp[kXenstoreRingSize];  // store -> guest (replies and watch events)
  XenstoreRingIdx req_cons, req_prod;
  XenstoreRingIdx rsp_cons, rsp_prod;
  uint32_t server_features;  // set by the server
  uint32_t connection;
  uint32_t error;
};
static_assert(sizeof(XenstoreDomainInterface) == 2076);
static_assert(offsetof(XenstoreDomainInterface, req) == 0);
static_assert(offsetof(XenstoreDomainInterface, rsp) == 1024);
static_assert(offsetof(XenstoreDomainInterface, req_cons) == 2048);
static_assert(offsetof(XenstoreDomainInterface, req_prod) == 2052);
static_assert(offsetof(XenstoreDomainInterface, rsp_cons) == 2056);
static_assert(offsetof(XenstoreDomainInterface, rsp_prod) == 2060);
static_assert(offsetof(XenstoreDomainInterface, server_features) == 2064);
static_assert(offsetof(XenstoreDomainInterface, connection) == 2068);
static_assert(offsetof(XenstoreDomainInterface, error) == 2072);

}  // namespace abi
