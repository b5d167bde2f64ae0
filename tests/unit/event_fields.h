/* SPDX-License-Identifier: MIT */
/*
 * The string fields of a decoded event, for the tests that compare two
 * decodes of the same input (test_event.c, fuzz/fuzz_event.c).
 */
#ifndef HOOKD_TEST_EVENT_FIELDS_H
#define HOOKD_TEST_EVENT_FIELDS_H

#include <stddef.h>

#include "event.h"

static const size_t event_field_offsets[] = {
    offsetof(hookd_event_t, id),
    offsetof(hookd_event_t, time),
    offsetof(hookd_event_t, source),
    offsetof(hookd_event_t, certificate_name),
    offsetof(hookd_event_t, order_name),
    offsetof(hookd_event_t, csr),
    offsetof(hookd_event_t, certificate),
    offsetof(hookd_event_t, certificate_raw),
    offsetof(hookd_event_t, poll_identifier),
    offsetof(hookd_event_t, error),
};
#define EVENT_FIELD_COUNT (sizeof(event_field_offsets) / sizeof(event_field_offsets[0]))

/* The i-th string field of `ev` (NULL: absent). */
static inline const char *event_field(const hookd_event_t *ev, size_t i)
{
    return *(const char *const *)((const char *)ev + event_field_offsets[i]);
}

#endif /* HOOKD_TEST_EVENT_FIELDS_H */
