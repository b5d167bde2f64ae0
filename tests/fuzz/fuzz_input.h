/* SPDX-License-Identifier: MIT */
/*
 * Splitting one fuzzer input into a Kafka message (key, value, headers),
 * shared by the event and authentication targets.
 *
 * Layout (each length a single byte, so the fuzzer mutates structure and
 * content alike):
 *   flags
 *   header count (taken modulo FUZZ_HEADERS_MAX)
 *   per header: name selector; when >= the table size, a length byte and
 *               that many name bytes follow; then a value length byte (0xff
 *               = null header) and the value bytes
 *   key length byte (0xff = null key) and the key bytes  (auth target only)
 *   the rest: the value
 * Running out of input ends the message early; what was read is used.
 */
#ifndef HOOKD_FUZZ_INPUT_H
#define HOOKD_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"

#define FUZZ_HEADERS_MAX 12

static const char *const fuzz_header_names[] = {
    "ce_specversion", "ce_id",         "ce_source", "ce_type",         "ce_time", "content-type",
    "ce_subject",     "ce_dataschema", "ce_data",   "hookd-signature", "CE_ID",   "traceparent",
};
#define FUZZ_NAMES (sizeof(fuzz_header_names) / sizeof(fuzz_header_names[0]))

typedef struct fuzz_msg {
    uint8_t flags;
    hookd_header_t headers[FUZZ_HEADERS_MAX];
    char names[FUZZ_HEADERS_MAX][256]; /* custom names, NUL-terminated copies */
    size_t header_count;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} fuzz_msg_t;

typedef struct fuzz_reader {
    const uint8_t *p;
    size_t left;
} fuzz_reader_t;

static inline int fuzz_byte(fuzz_reader_t *r, uint8_t *b)
{
    if (r->left == 0)
        return -1;
    *b = *r->p++;
    r->left--;
    return 0;
}

static inline int fuzz_bytes(fuzz_reader_t *r, size_t n, const uint8_t **out)
{
    if (r->left < n)
        return -1;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static inline void fuzz_split(const uint8_t *data, size_t size, int with_headers, int with_key,
                              fuzz_msg_t *m)
{
    fuzz_reader_t r = {data, size};
    uint8_t n = 0, b;
    size_t i;

    memset(m, 0, sizeof(*m));
    m->value = (const uint8_t *)"";
    if (fuzz_byte(&r, &m->flags) != 0)
        return;
    if (with_headers && fuzz_byte(&r, &n) == 0) {
        n %= FUZZ_HEADERS_MAX;
        for (i = 0; i < n; i++) {
            hookd_header_t *h = &m->headers[m->header_count];
            const uint8_t *v;
            if (fuzz_byte(&r, &b) != 0)
                goto rest;
            if (b < FUZZ_NAMES) {
                h->name = fuzz_header_names[b];
            } else {
                uint8_t nl;
                if (fuzz_byte(&r, &nl) != 0 || fuzz_bytes(&r, nl, &v) != 0)
                    goto rest;
                memcpy(m->names[m->header_count], v, nl);
                m->names[m->header_count][nl] = '\0';
                h->name = m->names[m->header_count];
            }
            if (fuzz_byte(&r, &b) != 0)
                goto rest;
            if (b == 0xff) {
                h->value = NULL;
                h->len = 0;
            } else {
                if (fuzz_bytes(&r, b, &v) != 0)
                    goto rest;
                h->value = v;
                h->len = b;
            }
            m->header_count++;
        }
    }
    if (with_key && fuzz_byte(&r, &b) == 0) {
        if (b != 0xff) {
            const uint8_t *k;
            if (fuzz_bytes(&r, b, &k) != 0)
                goto rest;
            m->key = k;
            m->key_len = b;
        }
    }
rest:
    m->value = r.p;
    m->value_len = r.left;
}

#endif /* HOOKD_FUZZ_INPUT_H */
