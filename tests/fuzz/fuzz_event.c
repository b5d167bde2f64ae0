/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the input event decoder in all three wire forms, and
 * the X.509 checks on whatever decodes.
 *
 * flags bit 0: binary mode (headers present); bit 1: tight size limits, so
 * the too-large paths run; bit 2: run hookd_x509_check_event on success.
 * Every input is decoded twice, with and without the decoder's fast path
 * for plain events, and the two must agree in everything.
 * See fuzz_input.h for the layout.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "../unit/event_fields.h"
#include "event.h"
#include "fuzz_input.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

/* The answer of the fast path (a) and of the tree's road (b) must be one. */
static void compare(hookd_event_err_t ra, const hookd_event_t *a, const char *ea,
                    hookd_event_err_t rb, const hookd_event_t *b, const char *eb)
{
    if (ra != rb || strcmp(ea, eb) != 0 || a->type != b->type || a->format != b->format)
        abort();
    for (size_t i = 0; i < EVENT_FIELD_COUNT; i++)
        if (!same_str(event_field(a, i), event_field(b, i)))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg_t m;
    hookd_limits_t limits = {HOOKD_DEFAULT_MAX_EVENT_BYTES, HOOKD_DEFAULT_MAX_FIELD_BYTES};
    hookd_event_t ev;
    hookd_event_err_t rc;
    char err[512];

    if (size == 0)
        return 0;
    fuzz_split(data, size, data[0] & 1, 0, &m);
    if (m.flags & 2) {
        limits.max_event_bytes = 512;
        limits.max_field_bytes = 64;
    }
    memset(&ev, 0, sizeof(ev));
    err[0] = '\0';
    rc = hookd_event_decode(m.value, m.value_len, m.header_count ? m.headers : NULL, m.header_count,
                            &limits, &ev, err, sizeof(err));
    {
        hookd_event_t tree;
        char terr[512];
        hookd_event_err_t trc;

        hookd_event_set_fast_path(false);
        memset(&tree, 0, sizeof(tree));
        terr[0] = '\0';
        trc = hookd_event_decode(m.value, m.value_len, m.header_count ? m.headers : NULL,
                                 m.header_count, &limits, &tree, terr, sizeof(terr));
        hookd_event_set_fast_path(true);
        compare(rc, &ev, err, trc, &tree, terr);
        hookd_event_clear(&tree);
    }
    if (rc == HOOKD_EVENT_OK) {
        /* what the codec promises for a valid event */
        if (ev.id == NULL || ev.time == NULL || ev.order_name == NULL)
            abort();
        if ((unsigned)ev.type >= HOOKD_EVENT_TYPE_COUNT)
            abort();
        if (m.flags & 4)
            (void)hookd_x509_check_event(&ev, err, sizeof(err));
    } else if (err[0] == '\0') {
        abort(); /* every refusal must say why */
    }
    hookd_event_clear(&ev);

    /*
     * The decoder's own parser against cJSON's on the same bytes: what the
     * strict parser accepts, cJSON parses to the very same tree (printed
     * alike). A string cut at a \u0000 is exempt: the decoder refuses it
     * anyway.
     */
    {
        bool nul = false;
        cJSON *mine = hookd_json_parse(m.value, m.value_len, &nul, err, sizeof(err));
        if (mine != NULL && !nul) {
            cJSON *ref = cJSON_ParseWithLength((const char *)m.value, m.value_len);
            char *a = cJSON_PrintUnformatted(mine), *b = ref ? cJSON_PrintUnformatted(ref) : NULL;
            if (ref == NULL || a == NULL || b == NULL || strcmp(a, b) != 0)
                abort();
            cJSON_free(a);
            cJSON_free(b);
            cJSON_Delete(ref);
        }
        cJSON_Delete(mine);
    }
    return 0;
}
