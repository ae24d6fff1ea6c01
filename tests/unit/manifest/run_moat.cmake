# Runs `moat COMMAND FILE [-o OUT]` in DIR and checks both its exit status and
# its output (stdout then stderr), exactly:
#   cmake -DMOAT=moat -DCOMMAND=check -DFILE=f.textproto -DDIR=dir
#         -DEXPECT_RC=1 -DEXPECTED=f.expected [-DOUT=out.bin
#         [-DPROTOC=protoc -DPROTO=manifest.proto -DDECODED=f.decoded]] -P run_moat.cmake
# With OUT (moat compile): on success OUT must exist, start with the MOATMAN1
# header (magic and payload length; the CRC is the decoder's unit test's) and
# its payload, decoded with protoc, equal DECODED; on failure OUT must not have
# been written.
foreach(v MOAT COMMAND FILE DIR EXPECT_RC EXPECTED)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_moat.cmake: -D${v}=... missing")
  endif()
endforeach()

set(cmd ${MOAT} ${COMMAND} ${FILE})
if(DEFINED OUT)
  file(REMOVE ${OUT})
  list(APPEND cmd -o ${OUT})
endif()
execute_process(COMMAND ${cmd} WORKING_DIRECTORY ${DIR}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(got "${out}${err}")
file(READ ${EXPECTED} want)

set(fail "")
if(NOT "${rc}" STREQUAL "${EXPECT_RC}")
  string(APPEND fail "exit status ${rc}, expected ${EXPECT_RC}\n")
endif()
if(NOT got STREQUAL want)
  string(APPEND fail "output differs from ${EXPECTED}\n--- expected\n${want}--- got\n${got}---\n")
endif()
if(DEFINED OUT)
  if(NOT "${EXPECT_RC}" STREQUAL "0")
    if(EXISTS ${OUT})
      string(APPEND fail "${OUT} was written although the manifest has problems\n")
    endif()
  elseif(NOT EXISTS ${OUT})
    string(APPEND fail "${OUT} was not written\n")
  elseif(DEFINED DECODED)
    get_filename_component(proto_dir ${PROTO} DIRECTORY)
    file(SIZE ${OUT} size)
    file(READ ${OUT} header LIMIT 16 HEX)
    string(SUBSTRING "${header}" 0 16 magic)
    set(length 0)
    foreach(byte 3 2 1 0)   # little-endian uint32 at offset 8
      math(EXPR at "(8 + ${byte}) * 2")
      string(SUBSTRING "${header}" ${at} 2 hex)
      math(EXPR length "${length} * 256 + 0x${hex}")
    endforeach()
    math(EXPR payload "${size} - 16")
    file(READ ${DECODED} want_decoded)
    if(NOT magic STREQUAL "4d4f41544d414e31")   # MOATMAN1
      string(APPEND fail "${OUT} does not start with MOATMAN1 (${header})\n")
    elseif(NOT length EQUAL payload)
      string(APPEND fail "${OUT}: header says a payload of ${length} bytes, the file has ${payload}\n")
    endif()
    # The payload is what follows the 16-byte header.
    execute_process(COMMAND tail -c +17 ${OUT}
      COMMAND ${PROTOC} --decode=moat.System -I ${proto_dir} ${PROTO}
      OUTPUT_VARIABLE decoded ERROR_VARIABLE decode_err RESULT_VARIABLE decode_rc)
    if(NOT decode_rc EQUAL 0)
      string(APPEND fail "protoc --decode failed (${decode_rc}): ${decode_err}\n")
    elseif(NOT decoded STREQUAL want_decoded)
      string(APPEND fail "decoded ${OUT} differs from ${DECODED}\n--- expected\n${want_decoded}--- got\n${decoded}---\n")
    endif()
  endif()
endif()
if(fail)
  # NOTICE prints the text as it is; FATAL_ERROR would re-wrap its lines.
  message(NOTICE "moat ${COMMAND} ${FILE}:\n${fail}")
  message(FATAL_ERROR "moat ${COMMAND} ${FILE}: FAILED")
endif()
