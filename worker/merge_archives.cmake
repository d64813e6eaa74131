# SPDX-License-Identifier: MIT
# merge_archives.cmake: one static archive OUT made of every member of PARTS ("a.a|b.a|..."),
# with ar's MRI script (GNU ar): cmake -DAR=ar -DOUT=x.a -DPARTS=... -P merge_archives.cmake
cmake_minimum_required(VERSION 3.18)
string(REPLACE "|" ";" parts "${PARTS}")
set(script "create ${OUT}.tmp\n")
foreach(part ${parts})
  string(APPEND script "addlib ${part}\n")
endforeach()
string(APPEND script "save\nend\n")
file(REMOVE "${OUT}.tmp")
file(WRITE "${OUT}.mri" "${script}")
execute_process(COMMAND "${AR}" -M INPUT_FILE "${OUT}.mri" RESULT_VARIABLE status
  ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "merge_archives.cmake: ${AR} -M failed (${status}): ${errors}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.mri")
