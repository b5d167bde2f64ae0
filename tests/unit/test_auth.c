/* SPDX-License-Identifier: MIT */
/*
 * Message authentication (HMAC-SHA256, key files, rotation) and the X.509
 * checks, with keys, CSRs and certificates made by the test itself.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"
#include "config.h"
#include "result.h"
#include "test_keys.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hookd-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

/* Write a key file; returns its path (static storage per name). */
static const char *key_file(const char *name, const char *content, mode_t mode)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    int fd;
    snprintf(p, 128, "%s/%s", tmpdir, name);
    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    cr_assert_eq(chmod(p, mode), 0);
    return p;
}

static hookd_auth_t *auth_with(const char *keys, const char *signing, bool require, bool sign,
                               char *err, size_t err_size)
{
    hookd_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_keys = (char *)keys;
    cfg.auth_signing_key_id = (char *)signing;
    cfg.auth_require = require;
    cfg.auth_sign_results = sign;
    err[0] = '\0';
    return hookd_auth_create(&cfg, err, err_size);
}

#define K1 "k1-secret-0123456789abcdef0123456"
#define K2 "k2-secret-fedcba9876543210fedcba9"

typedef struct msg {
    hookd_headers_t *h;
    hookd_header_t arr[32];
    size_t n;
    char key[64];
    size_t key_len;
    char value[256];
    size_t value_len;
} msg_t;

static void msg_init(msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->h = hookd_headers_new();
    cr_assert_not_null(m->h);
    strcpy(m->key, "order-42");
    m->key_len = strlen(m->key);
    strcpy(m->value, "{\"certificate_name\":\"www.example.com\",\"order_name\":\"order-42\","
                     "\"csr\":\"MIIB\"}");
    m->value_len = strlen(m->value);
    cr_assert_eq(hookd_headers_add_str(m->h, "ce_specversion", "1.0"), 0);
    cr_assert_eq(hookd_headers_add_str(m->h, "ce_type", "acme.enrollment.requested"), 0);
    cr_assert_eq(hookd_headers_add_str(m->h, "ce_id", "evt-1"), 0);
    cr_assert_eq(hookd_headers_add_str(m->h, "ce_source", "urn:test"), 0);
    cr_assert_eq(hookd_headers_add_str(m->h, "content-type", "application/json"), 0);
    cr_assert_eq(hookd_headers_add_str(m->h, "traceparent", "00-abc-def-01"), 0);
}

/* Refresh the array view of the owned header list. */
static void msg_view(msg_t *m)
{
    m->n = hookd_headers_count(m->h);
    cr_assert_leq(m->n, 32);
    for (size_t i = 0; i < m->n; i++)
        m->arr[i] = *hookd_headers_get(m->h, i);
}

static void msg_sign(const hookd_auth_t *a, msg_t *m)
{
    char err[256] = "";
    cr_assert_eq(hookd_auth_sign(a, m->key, m->key_len, m->value, m->value_len, m->h, err,
                                 sizeof(err)),
                 0, "sign: %s", err);
    msg_view(m);
}

static int msg_verify(const hookd_auth_t *a, msg_t *m, char *err, size_t err_size)
{
    err[0] = '\0';
    return hookd_auth_verify(a, m->key, m->key_len, m->value, m->value_len, m->arr, m->n, err,
                             err_size);
}

static void msg_free(msg_t *m)
{
    hookd_headers_destroy(m->h);
}

TestSuite(auth, .init = make_tmpdir, .fini = rm_tmpdir);

Test(auth, round_trip)
{
    char err[256], keys[512];
    hookd_auth_t *a;
    msg_t m;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, "k1", true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    cr_assert(hookd_auth_verify_enabled(a));
    cr_assert(hookd_auth_sign_enabled(a));
    msg_init(&m);
    msg_sign(a, &m);
    cr_assert_str_eq(m.arr[m.n - 1].name, "hookd-signature");
    cr_assert_eq(strncmp(m.arr[m.n - 1].value, "v1;kid=k1;sig=", 14), 0);
    cr_assert_eq(m.arr[m.n - 1].len, 14 + 44);
    cr_assert_eq(msg_verify(a, &m, err, sizeof(err)), 0, "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
}

/* The documented canonical form, computed independently with HMAC(). */
Test(auth, canonical_form_is_the_documented_one)
{
    char err[256], keys[512];
    unsigned char canon[1024], mac[32];
    unsigned int mac_len = 0;
    char b64[64], expect[128];
    size_t off = 0;
    hookd_auth_t *a;
    hookd_headers_t *h = hookd_headers_new();
    const hookd_header_t *sig;

    snprintf(keys, sizeof(keys), "main:%s", key_file("main", K1, 0400));
    a = auth_with(keys, NULL, false, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    /* inserted out of order: the canonical form sorts by name */
    hookd_headers_add_str(h, "content-type", "application/json");
    hookd_headers_add_str(h, "ce_id", "x");
    hookd_headers_add_str(h, "other", "not signed");
    hookd_headers_add(h, "ce_null", NULL, 0);
    cr_assert_eq(hookd_auth_sign(a, NULL, 0, "{}", 2, h, err, sizeof(err)), 0, "%s", err);

#define PUT(p, n)                                                                                  \
    do {                                                                                           \
        memcpy(canon + off, p, n);                                                                 \
        off += n;                                                                                  \
    } while (0)
#define PUT_LEN(v)                                                                                 \
    do {                                                                                           \
        uint32_t x = (v);                                                                          \
        unsigned char be[4] = {x >> 24, x >> 16, x >> 8, x};                                       \
        PUT(be, 4);                                                                                \
    } while (0)
    PUT("acme-hookd-hmac-v1\n", 19);
    PUT_LEN(0xffffffffu); /* no key */
    PUT_LEN(2);
    PUT("{}", 2);
    PUT_LEN(3); /* ce_id < ce_null < content-type */
    PUT_LEN(5);
    PUT("ce_id", 5);
    PUT_LEN(1);
    PUT("x", 1);
    PUT_LEN(7);
    PUT("ce_null", 7);
    PUT_LEN(0xffffffffu);
    PUT_LEN(12);
    PUT("content-type", 12);
    PUT_LEN(16);
    PUT("application/json", 16);
    cr_assert_not_null(HMAC(EVP_sha256(), K1, (int)strlen(K1), canon, off, mac, &mac_len));
    EVP_EncodeBlock((unsigned char *)b64, mac, 32);
    snprintf(expect, sizeof(expect), "v1;kid=main;sig=%s", b64);
    sig = hookd_headers_get(h, hookd_headers_count(h) - 1);
    cr_assert_str_eq(sig->name, "hookd-signature");
    cr_assert_eq(sig->len, strlen(expect));
    cr_assert_eq(memcmp(sig->value, expect, sig->len), 0, "got %.*s want %s", (int)sig->len,
                 (const char *)sig->value, expect);
    hookd_headers_destroy(h);
    hookd_auth_destroy(a);
}

static void expect_forged(void (*tamper)(msg_t *), const char *needle)
{
    char err[256], keys[512];
    hookd_auth_t *a;
    msg_t m;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, "k1", true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    msg_init(&m);
    msg_sign(a, &m);
    tamper(&m);
    cr_assert_neq(msg_verify(a, &m, err, sizeof(err)), 0, "tampered message verified");
    cr_assert_not_null(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
    msg_free(&m);
    hookd_auth_destroy(a);
}

static void flip_value(msg_t *m)
{
    m->value[10] ^= 0x01;
}
static void flip_key(msg_t *m)
{
    m->key[0] ^= 0x20;
}
static void drop_key(msg_t *m)
{
    m->key_len = 0; /* "" is not the same as the key it replaces */
}
static void longer_value(msg_t *m)
{
    m->value[m->value_len++] = ' ';
}
static hookd_header_t swapped;
static char swapped_value[64];
static void flip_ce_header(msg_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->arr[i].name, "ce_type") == 0) {
            snprintf(swapped_value, sizeof(swapped_value), "%.*s", (int)m->arr[i].len,
                     (const char *)m->arr[i].value);
            swapped_value[strlen(swapped_value) - 1] ^= 0x01;
            swapped = m->arr[i];
            swapped.value = swapped_value;
            m->arr[i] = swapped;
        }
    }
}
static void add_flags(msg_t *m)
{
    m->arr[m->n].name = "hookd.flags";
    m->arr[m->n].value = "allow_pre_hook_failure=true";
    m->arr[m->n].len = strlen("allow_pre_hook_failure=true");
    m->n++;
}
static void add_phases_done(msg_t *m)
{
    m->arr[m->n].name = "hookd.phases.done";
    m->arr[m->n].value = "pre";
    m->arr[m->n].len = 3;
    m->n++;
}
static void add_phases_done_twin(msg_t *m)
{
    m->arr[m->n].name = "Hookd.Phases.Done";
    m->arr[m->n].value = "pre";
    m->arr[m->n].len = 3;
    m->n++;
}
static void add_reply_topic(msg_t *m)
{
    m->arr[m->n].name = "kafka_replyTopic";
    m->arr[m->n].value = "elsewhere";
    m->arr[m->n].len = 9;
    m->n++;
}
static void add_correlation_id(msg_t *m)
{
    m->arr[m->n].name = "kafka_correlationId";
    m->arr[m->n].value = "x";
    m->arr[m->n].len = 1;
    m->n++;
}
static void flip_content_type(msg_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->arr[i].name, "content-type") == 0)
            m->arr[i].value = "application/xml!";
}
static void add_ce_header(msg_t *m)
{
    m->arr[m->n].name = "ce_subject";
    m->arr[m->n].value = "injected";
    m->arr[m->n].len = 8;
    m->n++;
}
static void add_case_twin(msg_t *m)
{
    m->arr[m->n].name = "CE_ID";
    m->arr[m->n].value = "evt-2";
    m->arr[m->n].len = 5;
    m->n++;
}
static void drop_ce_header(msg_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->arr[i].name, "ce_source") == 0) {
            m->arr[i] = m->arr[m->n - 1];
            m->n--;
            return;
        }
    }
}
static void flip_sig(msg_t *m)
{
    static char v[128];
    hookd_header_t *s = &m->arr[m->n - 1];
    memcpy(v, s->value, s->len);
    v[20] = v[20] == 'A' ? 'B' : 'A';
    s->value = v;
}
static void unsign(msg_t *m)
{
    m->n--; /* the signature header is the last one */
}
static void wrong_version(msg_t *m)
{
    static char v[128];
    hookd_header_t *s = &m->arr[m->n - 1];
    memcpy(v, s->value, s->len);
    v[1] = '2';
    s->value = v;
}
static void truncated_sig(msg_t *m)
{
    m->arr[m->n - 1].len -= 4;
}

Test(auth, one_byte_in_the_value_is_a_forgery)
{
    expect_forged(flip_value, "does not match");
}
Test(auth, one_byte_in_the_key_is_a_forgery)
{
    expect_forged(flip_key, "does not match");
}
Test(auth, an_emptied_key_is_a_forgery)
{
    expect_forged(drop_key, "does not match");
}
Test(auth, an_appended_byte_is_a_forgery)
{
    expect_forged(longer_value, "does not match");
}
Test(auth, one_byte_in_a_ce_header_is_a_forgery)
{
    expect_forged(flip_ce_header, "does not match");
}
Test(auth, a_changed_content_type_is_a_forgery)
{
    expect_forged(flip_content_type, "does not match");
}
Test(auth, an_added_ce_header_is_a_forgery)
{
    expect_forged(add_ce_header, "does not match");
}
Test(auth, a_removed_ce_header_is_a_forgery)
{
    expect_forged(drop_ce_header, "does not match");
}
/* The request headers decide flags and reply routing: they are signed too. */
Test(auth, added_flags_are_a_forgery)
{
    expect_forged(add_flags, "does not match");
}
/* hookd.phases.done skips chains, pre (a policy gate) included: signed. */
Test(auth, added_phases_done_is_a_forgery)
{
    expect_forged(add_phases_done, "does not match");
}
Test(auth, a_phases_done_twin_differently_cased_is_a_forgery)
{
    expect_forged(add_phases_done_twin, "does not match");
}

/* Signed with the header, it verifies; changing or dropping it does not. */
Test(auth, signed_phases_done_is_bound_to_the_signature)
{
    char err[256], keys[512];
    hookd_auth_t *a;
    msg_t m;
    size_t i, at = 0;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    msg_init(&m);
    cr_assert_eq(hookd_headers_add_str(m.h, "hookd.phases.done", "pre,success"), 0);
    msg_sign(a, &m);
    cr_assert_eq(msg_verify(a, &m, err, sizeof(err)), 0, "%s", err);
    /* provenance added after signing (hookd.replay.*) is not signed */
    m.arr[m.n].name = "hookd.replay.reason";
    m.arr[m.n].value = "CMDB back";
    m.arr[m.n].len = 9;
    m.n++;
    cr_assert_eq(msg_verify(a, &m, err, sizeof(err)), 0, "%s", err);
    m.n--;
    for (i = 0; i < m.n; i++)
        if (strcmp(m.arr[i].name, "hookd.phases.done") == 0)
            at = i;
    m.arr[at].value = "pre";
    m.arr[at].len = 3;
    cr_assert_neq(msg_verify(a, &m, err, sizeof(err)), 0, "a changed phases.done verified");
    m.arr[at] = m.arr[m.n - 1]; /* drop it: the signature moves into its slot */
    m.n--;
    cr_assert_neq(msg_verify(a, &m, err, sizeof(err)), 0, "a dropped phases.done verified");
    msg_free(&m);
    hookd_auth_destroy(a);
}

Test(auth, an_added_reply_topic_is_a_forgery)
{
    expect_forged(add_reply_topic, "does not match");
}
Test(auth, an_added_correlation_id_is_a_forgery)
{
    expect_forged(add_correlation_id, "does not match");
}
Test(auth, a_differently_cased_twin_header_is_refused)
{
    expect_forged(add_case_twin, "more than once");
}
Test(auth, one_byte_in_the_signature_is_a_forgery)
{
    expect_forged(flip_sig, "does not match");
}
Test(auth, unsigned_is_refused)
{
    expect_forged(unsign, "not signed");
}
Test(auth, unknown_signature_version_is_malformed)
{
    expect_forged(wrong_version, "malformed");
}
Test(auth, truncated_signature_is_malformed)
{
    expect_forged(truncated_sig, "malformed");
}

Test(auth, unsigned_headers_may_change)
{
    char err[256], keys[512];
    hookd_auth_t *a;
    msg_t m;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    msg_init(&m);
    msg_sign(a, &m);
    for (size_t i = 0; i < m.n; i++)
        if (strcmp(m.arr[i].name, "traceparent") == 0)
            m.arr[i].value = "00-zzz-zzz-00";
    cr_assert_eq(msg_verify(a, &m, err, sizeof(err)), 0, "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
}

Test(auth, unknown_key_id_is_refused)
{
    char err[256], keys[512];
    hookd_auth_t *signer, *verifier;
    msg_t m;
    snprintf(keys, sizeof(keys), "k3:%s", key_file("k3", K1, 0600));
    signer = auth_with(keys, "k3", false, true, err, sizeof(err));
    cr_assert_not_null(signer, "%s", err);
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    verifier = auth_with(keys, NULL, true, false, err, sizeof(err));
    cr_assert_not_null(verifier, "%s", err);
    msg_init(&m);
    msg_sign(signer, &m);
    /* same secret, other id: the id chooses the key, and k3 is not loaded */
    cr_assert_neq(msg_verify(verifier, &m, err, sizeof(err)), 0);
    cr_assert_not_null(strstr(err, "unknown key id 'k3'"), "%s", err);
    msg_free(&m);
    hookd_auth_destroy(signer);
    hookd_auth_destroy(verifier);
}

Test(auth, rotation_accepts_every_loaded_key)
{
    char err[256], keys[512];
    const char *p1 = key_file("k1", K1, 0600), *p2 = key_file("k2", K2, 0600);
    hookd_auth_t *old_signer, *new_signer, *both, *only_new;
    msg_t m1, m2;

    snprintf(keys, sizeof(keys), "2025:%s", p1);
    old_signer = auth_with(keys, NULL, false, true, err, sizeof(err));
    cr_assert_not_null(old_signer, "%s", err);
    snprintf(keys, sizeof(keys), "2026:%s", p2);
    new_signer = auth_with(keys, NULL, false, true, err, sizeof(err));
    cr_assert_not_null(new_signer, "%s", err);
    snprintf(keys, sizeof(keys), "2025:%s,\n 2026:%s", p1, p2);
    both = auth_with(keys, "2026", true, true, err, sizeof(err));
    cr_assert_not_null(both, "%s", err);
    snprintf(keys, sizeof(keys), "2026:%s", p2);
    only_new = auth_with(keys, NULL, true, false, err, sizeof(err));
    cr_assert_not_null(only_new, "%s", err);

    msg_init(&m1);
    msg_sign(old_signer, &m1);
    msg_init(&m2);
    msg_sign(new_signer, &m2);
    cr_assert_eq(msg_verify(both, &m1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(msg_verify(both, &m2, err, sizeof(err)), 0, "%s", err);
    cr_assert_neq(msg_verify(only_new, &m1, err, sizeof(err)), 0, "retired key still accepted");
    cr_assert_eq(msg_verify(only_new, &m2, err, sizeof(err)), 0, "%s", err);
    msg_free(&m1);
    msg_free(&m2);

    /* a producer in the middle of a rotation signs with both keys */
    msg_init(&m1);
    msg_sign(old_signer, &m1);
    /* the first signature header is not itself signed, so a second one can be added */
    msg_sign(new_signer, &m1);
    cr_assert_eq(m1.n, 8);
    cr_assert_eq(msg_verify(only_new, &m1, err, sizeof(err)), 0, "%s", err);
    msg_free(&m1);

    hookd_auth_destroy(old_signer);
    hookd_auth_destroy(new_signer);
    hookd_auth_destroy(both);
    hookd_auth_destroy(only_new);
}

Test(auth, key_file_encodings_are_equivalent)
{
    /* 32 bytes 0x00..0x1f, in hex and in base64 */
    const char *hex = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
    const char *b64 = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    char err[256], keys[512];
    hookd_auth_t *a, *b;
    msg_t m;
    snprintf(keys, sizeof(keys), "x:%s", key_file("hex", hex, 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    snprintf(keys, sizeof(keys), "x:%s", key_file("b64", b64, 0600));
    b = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    msg_init(&m);
    msg_sign(a, &m);
    cr_assert_eq(msg_verify(b, &m, err, sizeof(err)), 0, "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
    hookd_auth_destroy(b);
}

Test(auth, raw_key_file_trailing_newline_is_ignored)
{
    char err[256], keys[512];
    hookd_auth_t *a, *b;
    msg_t m;
    snprintf(keys, sizeof(keys), "r:%s", key_file("r1", K1 "\n", 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    snprintf(keys, sizeof(keys), "r:%s", key_file("r2", K1, 0600));
    b = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    msg_init(&m);
    msg_sign(a, &m);
    cr_assert_eq(msg_verify(b, &m, err, sizeof(err)), 0, "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
    hookd_auth_destroy(b);
}

static void expect_create_error(const char *keys, const char *signing, bool require, bool sign,
                                const char *needle)
{
    char err[512];
    hookd_auth_t *a = auth_with(keys, signing, require, sign, err, sizeof(err));
    cr_assert_null(a, "created with keys '%s'", keys ? keys : "(null)");
    cr_assert_not_null(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
}

Test(auth, key_files_readable_by_others_are_refused)
{
    char keys[512];
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0644));
    expect_create_error(keys, NULL, true, false, "too open");
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0640));
    expect_create_error(keys, NULL, true, false, "too open");
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0604));
    expect_create_error(keys, NULL, true, false, "permissions 0604");
}

Test(auth, key_configuration_errors)
{
    char keys[512];
    const char *good = key_file("good", K1, 0600);
    /* errors name the key id and the file, never the secret */
    snprintf(keys, sizeof(keys), "k1:%s/missing", tmpdir);
    expect_create_error(keys, NULL, true, false, "No such file");
    snprintf(keys, sizeof(keys), "k1:%s", key_file("short", "tooshort", 0600));
    expect_create_error(keys, NULL, true, false, "must be 16..1024");
    snprintf(keys, sizeof(keys), "k1:%s", key_file("badhex", "hex:zz", 0600));
    expect_create_error(keys, NULL, true, false, "hex");
    snprintf(keys, sizeof(keys), "k1:%s", key_file("badb64", "base64:!!!!", 0600));
    expect_create_error(keys, NULL, true, false, "base64");
    expect_create_error(good, NULL, true, false, "not KEYID:PATH");
    snprintf(keys, sizeof(keys), "bad/id:%s", good);
    expect_create_error(keys, NULL, true, false, "key id");
    snprintf(keys, sizeof(keys), "k1:%s k1:%s", good, good);
    expect_create_error(keys, NULL, true, false, "listed twice");
    snprintf(keys, sizeof(keys), "k1:%s", good);
    expect_create_error(keys, "k9", false, true, "'k9' is not a key id");
    expect_create_error(NULL, NULL, true, false, "no key");
    snprintf(keys, sizeof(keys), "k1:%s", tmpdir);
    expect_create_error(keys, NULL, true, false, "not a regular file");
}

Test(auth, secrets_never_appear_in_errors)
{
    char err[512], keys[512];
    hookd_auth_t *a;
    msg_t m;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0644));
    a = auth_with(keys, NULL, true, false, err, sizeof(err));
    cr_assert_null(a);
    cr_assert_null(strstr(err, "k1-secret"), "%s", err);
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    msg_init(&m);
    msg_sign(a, &m);
    flip_value(&m);
    cr_assert_neq(msg_verify(a, &m, err, sizeof(err)), 0);
    cr_assert_null(strstr(err, "k1-secret"), "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
}

Test(auth, disabled_auth_needs_no_keys)
{
    char err[256];
    hookd_auth_t *a = auth_with(NULL, NULL, false, false, err, sizeof(err));
    msg_t m;
    cr_assert_not_null(a, "%s", err);
    cr_assert_not(hookd_auth_verify_enabled(a));
    cr_assert_not(hookd_auth_sign_enabled(a));
    msg_init(&m);
    msg_view(&m);
    cr_assert_neq(msg_verify(a, &m, err, sizeof(err)), 0, "no key verifies nothing");
    cr_assert_neq(hookd_auth_sign(a, NULL, 0, "x", 1, m.h, err, sizeof(err)), 0);
    msg_free(&m);
    hookd_auth_destroy(a);
}

Test(auth, a_second_valid_signature_rescues_an_unknown_one)
{
    char err[256], keys[512];
    hookd_auth_t *a;
    msg_t m;
    snprintf(keys, sizeof(keys), "k1:%s", key_file("k1", K1, 0600));
    a = auth_with(keys, NULL, true, true, err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    msg_init(&m);
    hookd_headers_add_str(m.h, "hookd-signature",
                          "v1;kid=gone;sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    msg_sign(a, &m);
    cr_assert_eq(msg_verify(a, &m, err, sizeof(err)), 0, "%s", err);
    msg_free(&m);
    hookd_auth_destroy(a);
}

/* ---- X.509 ------------------------------------------------------------- */

static EVP_PKEY *gen_key(bool rsa)
{
    EVP_PKEY *k = rsa ? hookd_test_rsa_key() : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(k);
    return k;
}

static unsigned char *csr_der(EVP_PKEY *key, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"www.example.com",
                               -1, -1, 0);
    X509_REQ_set_subject_name(req, name);
    X509_REQ_set_pubkey(req, key);
    cr_assert_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    *len = i2d_X509_REQ(req, &der);
    cr_assert_gt(*len, 0);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return der;
}

static char *b64(const unsigned char *der, int len)
{
    char *out = malloc((size_t)(len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, der, len);
    return out;
}

/* A certificate for `subject_key`, issued by a throwaway CA; PEM chain (leaf, CA). */
static char *cert_pem(EVP_PKEY *subject_key)
{
    EVP_PKEY *ca_key = gen_key(false);
    X509 *ca = X509_new(), *leaf = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    X509_NAME *ca_name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(ca_name, "CN", MBSTRING_ASC, (const unsigned char *)"Test CA", -1,
                               -1, 0);
    X509_set_version(ca, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
    X509_set_issuer_name(ca, ca_name);
    X509_set_subject_name(ca, ca_name);
    X509_gmtime_adj(X509_getm_notBefore(ca), 0);
    X509_gmtime_adj(X509_getm_notAfter(ca), 3600);
    X509_set_pubkey(ca, ca_key);
    cr_assert_gt(X509_sign(ca, ca_key, EVP_sha256()), 0);

    X509_set_version(leaf, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(leaf), 2);
    X509_set_issuer_name(leaf, ca_name);
    X509_set_subject_name(leaf, ca_name);
    X509_gmtime_adj(X509_getm_notBefore(leaf), 0);
    X509_gmtime_adj(X509_getm_notAfter(leaf), 3600);
    X509_set_pubkey(leaf, subject_key);
    cr_assert_gt(X509_sign(leaf, ca_key, EVP_sha256()), 0);

    PEM_write_bio_X509(bio, leaf);
    PEM_write_bio_X509(bio, ca);
    n = BIO_get_mem_data(bio, &data);
    out = malloc((size_t)n + 1); /* the BIO's data is not NUL-terminated */
    cr_assert_not_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    X509_free(ca);
    X509_free(leaf);
    X509_NAME_free(ca_name);
    EVP_PKEY_free(ca_key);
    return out;
}

static hookd_event_t event_of(hookd_event_type_t type, const char *csr, const char *cert)
{
    hookd_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.id = "evt-x509";
    ev.certificate_name = "www.example.com";
    ev.order_name = "order";
    ev.csr = csr;
    ev.certificate = cert;
    return ev;
}

static void x509_good(bool rsa)
{
    char err[256] = "";
    EVP_PKEY *key = gen_key(rsa);
    int len;
    unsigned char *der = csr_der(key, &len);
    char *csr = b64(der, len), *pem = cert_pem(key);
    hookd_event_t ev = event_of(HOOKD_EVENT_REQUESTED, csr, NULL);
    cr_assert_eq(hookd_x509_check_event(&ev, err, sizeof(err)), 0, "%s", err);
    ev = event_of(HOOKD_EVENT_ISSUED, csr, pem);
    cr_assert_eq(hookd_x509_check_event(&ev, err, sizeof(err)), 0, "%s", err);
    free(csr);
    free(pem);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

Test(x509, rsa_csr_and_matching_certificate_pass)
{
    x509_good(true);
}

Test(x509, ec_csr_and_matching_certificate_pass)
{
    x509_good(false);
}

Test(x509, url_safe_unpadded_csr_is_accepted)
{
    char err[256] = "";
    EVP_PKEY *key = gen_key(false);
    int len;
    unsigned char *der = csr_der(key, &len);
    char *csr = b64(der, len);
    for (char *p = csr; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=')
            *p = '\0';
    }
    hookd_event_t ev = event_of(HOOKD_EVENT_REQUESTED, csr, NULL);
    cr_assert_eq(hookd_x509_check_event(&ev, err, sizeof(err)), 0, "%s", err);
    free(csr);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

Test(x509, tampered_csr_fails_its_self_signature)
{
    char err[256] = "";
    EVP_PKEY *key = gen_key(false);
    int len;
    unsigned char *der = csr_der(key, &len);
    unsigned char *cn = memmem(der, (size_t)len, "www.example.com", 15);
    char *csr;
    cr_assert_not_null(cn);
    cn[0] = 'v'; /* vww.example.com: still DER, no longer what was signed */
    csr = b64(der, len);
    hookd_event_t ev = event_of(HOOKD_EVENT_REQUESTED, csr, NULL);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "csr: self-signature does not verify");
    free(csr);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

Test(x509, certificate_for_another_key_is_refused)
{
    char err[256] = "";
    EVP_PKEY *key = gen_key(false), *other = gen_key(true);
    int len;
    unsigned char *der = csr_der(key, &len);
    char *csr = b64(der, len), *pem = cert_pem(other);
    hookd_event_t ev = event_of(HOOKD_EVENT_ISSUED, csr, pem);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "certificate: public key differs from the CSR's public key");
    free(csr);
    free(pem);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

Test(x509, malformed_inputs_are_refused)
{
    char err[256] = "";
    EVP_PKEY *key = gen_key(false);
    int len;
    unsigned char *der = csr_der(key, &len);
    char *csr = b64(der, len);
    hookd_event_t ev = event_of(HOOKD_EVENT_REQUESTED, "not base64 at all!", NULL);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "csr: not base64");
    ev = event_of(HOOKD_EVENT_REQUESTED, "AAAA", NULL);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "csr: not a DER certificate signing request");
    ev = event_of(HOOKD_EVENT_REQUESTED, NULL, NULL);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "csr: missing");
    ev = event_of(HOOKD_EVENT_ISSUED, csr, NULL);
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "certificate: missing");
    ev = event_of(HOOKD_EVENT_ISSUED, csr, "-----BEGIN CERTIFICATE-----\nAAAA\n");
    cr_assert_neq(hookd_x509_check_event(&ev, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "certificate: no PEM certificate in the chain");
    ev = event_of(HOOKD_EVENT_FAILED, NULL, NULL);
    cr_assert_eq(hookd_x509_check_event(&ev, err, sizeof(err)), 0, "%s", err);
    free(csr);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}
