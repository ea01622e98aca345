/* ctltest.h: running billingctl (LL_BILLINGCTL_BIN) as a real process from
 * a test and capturing what it printed. */
#ifndef LEDGERLINE_TESTS_CTLTEST_H
#define LEDGERLINE_TESTS_CTLTEST_H

#include <stddef.h>

/* Runs billingctl with the NULL-terminated arguments after arg0 (arg0 is the
 * first argument, not the program); its stdout goes into out and its stderr
 * into err (NUL-terminated, cut to size). database_url, when not NULL,
 * replaces DATABASE_URL for the child. LOG_LEVEL is warn. Returns the exit
 * status; fails the running test when the child did not exit normally. */
int ctltest(char *out, size_t outsz, char *err, size_t errsz, const char *database_url,
            const char *arg0, ...) __attribute__((sentinel));
/* The same with the arguments as a NULL-terminated array, and env (NULL or a
 * NULL-terminated list of "NAME=value") added to the child's environment. */
int ctltest_argv(char *out, size_t outsz, char *err, size_t errsz, const char *const *env,
                 const char *const *argv);

#endif
