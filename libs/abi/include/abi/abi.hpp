#pragma once
// The whole Xen PV x86-64 guest ABI as Moat defines it.

#include <abi/types.hpp>
#include <abi/errno.hpp>
#include <abi/hypercall.hpp>
#include <abi/x86_64.hpp>
#include <abi/start_info.hpp>
#include <abi/shared_info.hpp>
#include <abi/elfnote.hpp>
#include <abi/memory.hpp>
#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/io_ring.hpp>
#include <abi/console_io.hpp>
#include <abi/xs_wire.hpp>
#include <abi/moat.hpp>
