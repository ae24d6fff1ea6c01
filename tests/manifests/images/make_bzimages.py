#!/usr/bin/env python3
"""Writes the small bzImages the manifest tests name (tests/manifests/*bzimage*).

Each is a setup header (x86 boot protocol 2.15: "HdrS" at 0x202, setup_sects,
payload_offset and payload_length) and a payload, as Linux lays out its
/boot/vmlinuz-*. Run it here to make them again; the files are checked in.

  bzimage            xz payload (CRC-32 check, then the unpacked size) of a
                     small stand-in for an ELF vmlinux: `moat check` accepts it
  bzimage-bzip2      a payload with bzip2's magic: refused, by name
  bzimage-truncated  bzimage cut inside its payload
  bzimage-corrupt    bzimage with one byte of its xz stream changed
"""
import lzma
import struct

SETUP_SECTS = 1
PAYLOAD_OFFSET = 0x40


def bzimage(payload):
    b = bytearray((SETUP_SECTS + 1) * 512 + PAYLOAD_OFFSET)
    b[0x1F1] = SETUP_SECTS
    struct.pack_into("<H", b, 0x1FE, 0xAA55)
    b[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", b, 0x206, 0x020F)
    b[0x211] = 1
    struct.pack_into("<II", b, 0x248, PAYLOAD_OFFSET, len(payload))
    return bytes(b) + payload + b"\x90" * 16


elf = b"\x7fELF\x02\x01\x01" + b"moat test kernel, not a real one. " * 60
xz = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
good = bzimage(xz + struct.pack("<I", len(elf)))
with open("bzimage", "wb") as f:
    f.write(good)
with open("bzimage-bzip2", "wb") as f:
    f.write(bzimage(b"BZh91AY&SY" + b"\0" * 40 + struct.pack("<I", len(elf))))
with open("bzimage-truncated", "wb") as f:
    f.write(good[: len(good) - 40])
corrupt = bytearray(good)
corrupt[(SETUP_SECTS + 1) * 512 + PAYLOAD_OFFSET + len(xz) // 2] ^= 0x55
with open("bzimage-corrupt", "wb") as f:
    f.write(bytes(corrupt))
