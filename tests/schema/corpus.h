/* SPDX-License-Identifier: MIT */
/*
 * Reading the schema example corpus (schemas/examples/), shared by the
 * hookd-schema-check tool and the codec's unit test so both feed the codec
 * exactly the same messages.
 *
 * A corpus file of a plain or structured folder is the Kafka value itself,
 * byte for byte. A file of an *-binary folder describes a whole Kafka
 * message: {"headers": {name: string|null, ...}, "value": <JSON>} or, for a
 * value that is not JSON, {"headers": {...}, "value_text": "<raw text>"}.
 */
#ifndef HOOKD_TEST_CORPUS_H
#define HOOKD_TEST_CORPUS_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "event.h"

#define CORPUS_MAX_HEADERS 64

typedef struct corpus_msg {
    char *value;
    size_t len;
    hookd_header_t headers[CORPUS_MAX_HEADERS];
    char *header_values[CORPUS_MAX_HEADERS];
    size_t header_count;
    cJSON *doc; /* the binary-form description, owns the header names */
} corpus_msg_t;

static inline char *corpus_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf != NULL) {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static inline void corpus_msg_free(corpus_msg_t *m)
{
    free(m->value);
    for (size_t i = 0; i < m->header_count; i++)
        free(m->header_values[i]);
    cJSON_Delete(m->doc);
    memset(m, 0, sizeof(*m));
}

/* Load one corpus file as the Kafka message it stands for. 0, or -1 with a reason. */
static inline int corpus_msg_load(const char *path, bool binary, corpus_msg_t *m, char *err,
                                  size_t err_size)
{
    char *raw;
    size_t len = 0;
    const cJSON *headers, *value, *value_text, *h;

    memset(m, 0, sizeof(*m));
    raw = corpus_read_file(path, &len);
    if (raw == NULL) {
        snprintf(err, err_size, "%s: cannot read", path);
        return -1;
    }
    if (!binary) {
        m->value = raw;
        m->len = len;
        return 0;
    }
    m->doc = cJSON_ParseWithLength(raw, len);
    free(raw);
    headers = cJSON_GetObjectItemCaseSensitive(m->doc, "headers");
    value = cJSON_GetObjectItemCaseSensitive(m->doc, "value");
    value_text = cJSON_GetObjectItemCaseSensitive(m->doc, "value_text");
    if (!cJSON_IsObject(headers) || (value == NULL) == (value_text == NULL) ||
        (value_text != NULL && !cJSON_IsString(value_text))) {
        snprintf(err, err_size, "%s: not a binary-mode corpus file", path);
        corpus_msg_free(m);
        return -1;
    }
    cJSON_ArrayForEach(h, headers)
    {
        size_t i = m->header_count;

        if (i == CORPUS_MAX_HEADERS || !(cJSON_IsString(h) || cJSON_IsNull(h))) {
            snprintf(err, err_size, "%s: header '%s': too many, or not a string/null", path,
                     h->string);
            corpus_msg_free(m);
            return -1;
        }
        m->headers[i].name = h->string;
        if (cJSON_IsString(h)) {
            m->header_values[i] = strdup(h->valuestring);
            m->headers[i].value = m->header_values[i];
            m->headers[i].len = strlen(h->valuestring);
        }
        m->header_count++;
    }
    if (value_text != NULL)
        m->value = strdup(value_text->valuestring);
    else
        m->value = cJSON_PrintUnformatted(value);
    m->len = m->value ? strlen(m->value) : 0;
    return 0;
}

static inline int corpus_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json files of `dir`, sorted, NULL-terminated (free each and the array). */
static inline char **corpus_list(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **list = NULL;
    size_t n = 0, cap = 0;

    *count = 0;
    if (d == NULL)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 64;
            list = realloc(list, cap * sizeof(*list));
        }
        list[n] = malloc(strlen(dir) + l + 2);
        sprintf(list[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (list == NULL)
        return NULL;
    qsort(list, n, sizeof(*list), corpus_cmp);
    list[n] = NULL;
    *count = n;
    return list;
}

static inline void corpus_list_free(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

#endif /* HOOKD_TEST_CORPUS_H */
