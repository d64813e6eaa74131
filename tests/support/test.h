/* SPDX-License-Identifier: MIT
 * test: the one include every cmocka test starts with. cmocka.h needs these four standard
 * headers first and does not include them itself (STYLE §9). */
#ifndef RC_TEST_H
#define RC_TEST_H

/* clang-format off: the order matters */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#endif /* RC_TEST_H */
