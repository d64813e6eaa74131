/* SPDX-License-Identifier: MIT
 * ctl_prompt: yes/no on the terminal. */
#include "tools/researchctl/ctl_prompt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum ctl_prompt_answer
ctl_prompt_yes_no(const char *question)
{
    if (!isatty(STDIN_FILENO)) {
        return CTL_PROMPT_NO_TTY;
    }
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char line[32];
    clearerr(stdin);
    if (fgets(line, sizeof(line), stdin) == NULL) {
        fputc('\n', stderr);
        return CTL_PROMPT_NO;
    }
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    return strcmp(line, "y") == 0 || strcmp(line, "yes") == 0 ? CTL_PROMPT_YES : CTL_PROMPT_NO;
}

bool
ctl_prompt_is_tty(void)
{
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}
