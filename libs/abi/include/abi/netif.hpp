#pragma once
// Xen's network interface protocol (io/netif.h): the layouts of the TX and
// RX ring entries shared between netfront and netback, their flags and
// status codes. Both rings are one page each (libs/ring over
// abi::SringHeader); the front-end grants them and names them in XenStore
// (tx-ring-ref, rx-ring-ref, event-channel, request-rx-copy=1).
//
// TX (guest -> back-end): a request names a frame in a page the front-end
// granted (gref, offset, size); the back-end copies it out and answers with
// the request's id and a status. RX (back-end -> guest): the front-end posts
// empty granted pages (id, gref); the back-end copies a frame into one and
// answers with the id, the offset it used and the frame's length as the
// status (negative: an error).

#include <cstddef>
#include <cstdint>

#include <abi/io_ring.hpp>
#include <abi/types.hpp>

namespace abi {

// netif_tx_request::flags
inline constexpr uint16_t kNetTxfCsumBlank = 1u << 0;      // protocol checksum field blank
inline constexpr uint16_t kNetTxfDataValidated = 1u << 1;  // protocol checksum validated
inline constexpr uint16_t kNetTxfMoreData = 1u << 2;       // the frame continues in the next request
inline constexpr uint16_t kNetTxfExtraInfo = 1u << 3;      // an extra-info slot follows

struct NetifTxRequest {
  GrantRef gref;    // the page holding the frame
  uint16_t offset;  // of the frame in that page
  uint16_t flags;   // kNetTxf*
  uint16_t id;      // echoed in the response
  uint16_t size;    // bytes of this slot (the first slot of a chain: of the whole frame)
};
static_assert(sizeof(NetifTxRequest) == 12);
static_assert(offsetof(NetifTxRequest, gref) == 0);
static_assert(offsetof(NetifTxRequest, offset) == 4);
static_assert(offsetof(NetifTxRequest, flags) == 6);
static_assert(offsetof(NetifTxRequest, id) == 8);
static_assert(offsetof(NetifTxRequest, size) == 10);

// Extra-info slots (after a request with kNetTxfExtraInfo / a response with
// kNetRxfExtraInfo): GSO and multicast filter details.
inline constexpr uint8_t kNetifExtraTypeNone = 0;
inline constexpr uint8_t kNetifExtraTypeGso = 1;
inline constexpr uint8_t kNetifExtraTypeMcastAdd = 2;
inline constexpr uint8_t kNetifExtraTypeMcastDel = 3;
inline constexpr uint8_t kNetifExtraTypeHash = 4;
inline constexpr uint8_t kNetifExtraFlagMore = 1u << 0;   // another extra slot follows

struct NetifExtraInfo {
  uint8_t type;
  uint8_t flags;
  union {
    struct {
      uint16_t size;  // the GSO segment size
      uint8_t type;
      uint8_t pad;
      uint16_t features;
    } gso;
    struct {
      uint8_t addr[6];  // the multicast address
    } mcast;
    uint16_t pad[3];
  } u;
};
static_assert(sizeof(NetifExtraInfo) == 8);
static_assert(offsetof(NetifExtraInfo, u) == 2);

struct NetifTxResponse {
  uint16_t id;
  int16_t status;  // kNetifRsp*
};
static_assert(sizeof(NetifTxResponse) == 4);
static_assert(offsetof(NetifTxResponse, status) == 2);

struct NetifRxRequest {
  uint16_t id;     // echoed in the response
  uint16_t pad;
  GrantRef gref;   // a page the back-end may write a frame into
};
static_assert(sizeof(NetifRxRequest) == 8);
static_assert(offsetof(NetifRxRequest, gref) == 4);

// netif_rx_response::flags
inline constexpr uint16_t kNetRxfDataValidated = 1u << 0;
inline constexpr uint16_t kNetRxfCsumBlank = 1u << 1;
inline constexpr uint16_t kNetRxfMoreData = 1u << 2;
inline constexpr uint16_t kNetRxfExtraInfo = 1u << 3;
inline constexpr uint16_t kNetRxfGsoPrefix = 1u << 4;

struct NetifRxResponse {
  uint16_t id;
  uint16_t offset;  // of the frame in the page
  uint16_t flags;   // kNetRxf*
  int16_t status;   // > 0: the frame's length; <= 0: kNetifRsp*
};
static_assert(sizeof(NetifRxResponse) == 8);
static_assert(offsetof(NetifRxResponse, offset) == 2);
static_assert(offsetof(NetifRxResponse, flags) == 4);
static_assert(offsetof(NetifRxResponse, status) == 6);

// Response status codes.
inline constexpr int16_t kNetifRspDropped = -2;
inline constexpr int16_t kNetifRspError = -1;
inline constexpr int16_t kNetifRspOkay = 0;
inline constexpr int16_t kNetifRspNull = 1;   // an extra-info slot's response

// One page per ring: 256 entries each, as Xen's NET_TX_RING_SIZE / NET_RX_RING_SIZE.
inline constexpr std::size_t kNetTxEntrySize =
    sizeof(NetifTxRequest) > sizeof(NetifTxResponse) ? sizeof(NetifTxRequest) : sizeof(NetifTxResponse);
inline constexpr std::size_t kNetRxEntrySize =
    sizeof(NetifRxRequest) > sizeof(NetifRxResponse) ? sizeof(NetifRxRequest) : sizeof(NetifRxResponse);
static_assert(sring_entries(kPageSize, kNetTxEntrySize) == 256);
static_assert(sring_entries(kPageSize, kNetRxEntrySize) == 256);

// The largest frame without scatter-gather (feature-sg=0): Ethernet header
// and 1500 bytes of payload, no FCS. The smallest: an Ethernet header.
inline constexpr uint16_t kNetifMaxFrame = 1514;
inline constexpr uint16_t kNetifMinFrame = 14;

}  // namespace abi
