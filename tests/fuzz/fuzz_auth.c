/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: HMAC verification of arbitrary messages, and the
 * sign-then-verify round trip.
 *
 * Two keys ("k1", "k2") are loaded from files written at start-up. The
 * input is a Kafka message (fuzz_input.h). flags bit 0: sign the message
 * with k2 first; the verification must then succeed (a round-trip
 * failure aborts). Without it, verification runs on the message as given
 * (whose hookd-signature headers the fuzzer invents) and must not crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "fuzz_input.h"
#include "result.h"

static hookd_auth_t *auth;

static void write_key(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(content, f) < 0 || fclose(f) != 0)
        abort();
    if (chmod(path, 0600) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/hookd-fuzz-auth-XXXXXX", p1[64], p2[64], keys[160], err[256];
    hookd_config_t cfg;
    (void)argc;
    (void)argv;
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(p1, sizeof(p1), "%s/k1", dir);
    snprintf(p2, sizeof(p2), "%s/k2", dir);
    write_key(p1, "fuzzing-key-one-0123456789abcdef\n");
    write_key(p2, "hex:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    snprintf(keys, sizeof(keys), "k1:%s k2:%s", p1, p2);
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_keys = keys;
    cfg.auth_signing_key_id = (char *)"k2";
    cfg.auth_require = true;
    cfg.auth_sign_results = true;
    auth = hookd_auth_create(&cfg, err, sizeof(err));
    if (auth == NULL) {
        fprintf(stderr, "fuzz_auth: %s\n", err);
        abort();
    }
    /* the secrets are in memory now; the files are not needed */
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg_t m;
    char err[256];
    int rc;

    if (size == 0)
        return 0;
    fuzz_split(data, size, 1, 1, &m);
    if (m.flags & 1) {
        hookd_headers_t *h = hookd_headers_new();
        hookd_header_t arr[FUZZ_HEADERS_MAX + 1];
        size_t n, i;
        if (h == NULL)
            abort();
        for (i = 0; i < m.header_count; i++)
            if (hookd_headers_add(h, m.headers[i].name, m.headers[i].value, m.headers[i].len) != 0)
                abort();
        rc = hookd_auth_sign(auth, m.key, m.key_len, m.value, m.value_len, h, err, sizeof(err));
        n = hookd_headers_count(h);
        if (n > FUZZ_HEADERS_MAX + 1)
            abort();
        for (i = 0; i < n; i++)
            arr[i] = *hookd_headers_get(h, i);
        if (rc == 0 && hookd_auth_verify(auth, m.key, m.key_len, m.value, m.value_len, arr, n, err,
                                         sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_auth: signed message does not verify: %s\n", err);
            abort();
        }
        /* signing refuses only a duplicate signed header name */
        if (rc != 0 && strstr(err, "more than once") == NULL) {
            fprintf(stderr, "fuzz_auth: sign failed: %s\n", err);
            abort();
        }
        hookd_headers_destroy(h);
    } else {
        rc = hookd_auth_verify(auth, m.key, m.key_len, m.value, m.value_len,
                               m.header_count ? m.headers : NULL, m.header_count, err, sizeof(err));
        if (rc != 0 && err[0] == '\0')
            abort();
    }
    return 0;
}
