/* SPDX-License-Identifier: MIT
 * ctl_prompt: asking the operator a yes/no question on the terminal, as bulk cancel and
 * `trigger --follow`'s Ctrl+C do. Only when stdin is a terminal: a script never blocks on it. */
#ifndef RC_CTL_PROMPT_H
#define RC_CTL_PROMPT_H

#include <stdbool.h>

enum ctl_prompt_answer {
    CTL_PROMPT_NO = 0,
    CTL_PROMPT_YES,
    CTL_PROMPT_NO_TTY, /* stdin is not a terminal: nobody was asked */
};

/* Print "<question> [y/N] " on stderr and read one line from stdin: y or yes (any case) is
 * yes; anything else, end of input or an interrupted read is no. */
enum ctl_prompt_answer ctl_prompt_yes_no(const char *question);
/* True when stdin and stdout are terminals (follow redraws in place then). */
bool ctl_prompt_is_tty(void);

#endif /* RC_CTL_PROMPT_H */
