/* topics.c: the contract's topic list and prefixed topic names. */
#include "ledgerline/topics.h"

#include <stdio.h>
#include <string.h>

#include "ledgerline/config.h"

const char *const topics_all[] = {
    TOPIC_STRIPE_PAYMENTS, TOPIC_STRIPE_DISPUTES, TOPIC_TICKS_INVOICING, TOPIC_TICKS_AUTOPAY,
    TOPIC_TICKS_RETRY,     TOPIC_TICKS_REMINDERS, TOPIC_INVOICES,        TOPIC_DLQ,
};
const size_t topics_count = sizeof topics_all / sizeof topics_all[0];

static int topic_chars_legal(const char *s)
{
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

int topic_name(const char *prefix, const char *name, char *buf, size_t bufsz)
{
    int n = snprintf(buf, bufsz, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= bufsz || n > TOPIC_NAME_MAX || !topic_chars_legal(buf))
        return -1;
    return 0;
}

const char *topic_prefix(void)
{
    const char *p = config_str("KAFKA_TOPIC_PREFIX", TOPIC_DEFAULT_PREFIX);
    if (strlen(p) > 100 || !topic_chars_legal(p))
        config_die("KAFKA_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-' "
                   "(at most 100 characters)");
    return p;
}
