/* vocab.c: the name tables and lookups generated from vocab.h's X-macro
 * tables (the one definition of each vocabulary the C code spells). */
#include "ledgerline/vocab.h"

#include <string.h>

int ll_vocab_find(const ll_vocab *v, const char *word)
{
    for (size_t i = 0; word != NULL && i < v->count; i++)
        if (strcmp(word, v->names[i]) == 0)
            return (int)i;
    return -1;
}

const char *ll_vocab_name(const ll_vocab *v, int i)
{
    return i >= 0 && (size_t)i < v->count ? v->names[i] : NULL;
}

bool ll_vocab_is(const ll_vocab *v, const char *word, int i)
{
    const char *name = ll_vocab_name(v, i);
    return word != NULL && name != NULL && strcmp(word, name) == 0;
}

/* ---- Stripe event types ------------------------------------------------- */

static const struct {
    const char *type;
    stripe_stream stream;
    stripe_object object;
    stripe_family family;
} stripe_events[] = {
#define LL_X(tok, type, stream, object, family)                                                    \
    {type, STRIPE_STREAM_##stream, STRIPE_OBJECT_##object, STRIPE_FAMILY_##family},
    LL_STRIPE_EVENT_MAP(LL_X)
#undef LL_X
};

_Static_assert(sizeof stripe_events / sizeof stripe_events[0] == STRIPE_EVENT_COUNT,
               "one row per stripe_event_type");

stripe_event_type stripe_event_type_of(const char *type)
{
    for (int i = 0; type != NULL && i < STRIPE_EVENT_COUNT; i++)
        if (strcmp(type, stripe_events[i].type) == 0)
            return (stripe_event_type)i;
    return STRIPE_EVENT_UNKNOWN;
}

const char *stripe_event_type_name(stripe_event_type t)
{
    return t >= 0 && t < STRIPE_EVENT_COUNT ? stripe_events[t].type : NULL;
}

stripe_stream stripe_event_stream(stripe_event_type t)
{
    return stripe_events[t].stream;
}

stripe_object stripe_event_object(stripe_event_type t)
{
    return stripe_events[t].object;
}

stripe_family stripe_event_family(stripe_event_type t)
{
    return stripe_events[t].family;
}

/* ---- word lists ----------------------------------------------------------- */

#define LL_WORD(word) #word,
static const char *const hard_names[] = {LL_HARD_DECLINE_MAP(LL_WORD)};
static const char *const soft_names[] = {LL_SOFT_FAILURE_MAP(LL_WORD)};
#undef LL_WORD
const ll_vocab ll_hard_declines = {hard_names, sizeof hard_names / sizeof hard_names[0]};
const ll_vocab ll_soft_failures = {soft_names, sizeof soft_names / sizeof soft_names[0]};

#define LL_VOCAB_DEFINE(map, prefix, type, table)                                                  \
    static const char *const table##_names[] = {map(LL_VOCAB_NAME_ROW, prefix)};                   \
    const ll_vocab table = {table##_names, sizeof table##_names / sizeof table##_names[0]};
LL_WORD_LISTS(LL_VOCAB_DEFINE)
