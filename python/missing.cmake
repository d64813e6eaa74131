# SPDX-License-Identifier: MIT
# Run as a CTest case when the Python suites cannot run: fail, saying why.
message(FATAL_ERROR "${WHY}")
