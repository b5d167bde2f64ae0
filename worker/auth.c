/* SPDX-License-Identifier: MIT */
/*
 * Message authentication (HMAC-SHA256 over a canonical form of a Kafka
 * message) and the optional X.509 checks done before the hooks.
 *
 * The canonical form, the signature header and the key files are documented
 * in docs/security.md; the summary:
 *
 *   "acme-hookd-hmac-v1\n"
 *   LEN(key)   key bytes              LEN = 4-byte big-endian length,
 *   LEN(value) value bytes                  0xffffffff for "absent" (null)
 *   COUNT      number of signed headers (4-byte big-endian)
 *   for each signed header, sorted by name (bytewise):
 *     LEN(name) name  LEN(value) value
 *
 * Signed headers: every header whose name starts with "ce_" or is
 * "content-type", and the request headers "hookd.flags", "hookd.phases.done",
 * "kafka_reply*" and "kafka_correlationId" (all matched without regard to
 * case, so a
 * differently cased twin cannot slip past unsigned). A signed header name that appears
 * twice makes the message unverifiable: a reader could take either copy.
 *
 * Header: hookd-signature: v1;kid=<key id>;sig=<base64 of the 32-byte MAC>
 *
 * Length prefixes make the encoding injective: no two different messages
 * share a canonical form, so no byte can move from one field to another
 * without changing the MAC.
 *
 * Keys live in ordinary heap memory and are wiped on destroy; they never
 * reach a log line, an error string, or a config dump.
 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define HOOKD_AUTH_CONTEXT "acme-hookd-hmac-v1\n"
#define HOOKD_AUTH_HEADER "hookd-signature"
#define HOOKD_AUTH_MAC_LEN 32
#define HOOKD_AUTH_KID_MAX 64
#define HOOKD_AUTH_KEY_MIN 16   /* bytes; 32 recommended */
#define HOOKD_AUTH_KEY_MAX 1024 /* bytes after decoding */
#define HOOKD_AUTH_FILE_MAX 4096
#define HOOKD_AUTH_SIGNED_MAX                                                                      \
    128 /* signed headers in one message (the codec allows 64 attributes) */
#define HOOKD_AUTH_NULL_LEN 0xffffffffu

typedef struct hookd_auth_key {
    char kid[HOOKD_AUTH_KID_MAX + 1];
    unsigned char *secret;
    size_t len;
} hookd_auth_key_t;

struct hookd_auth {
    bool verify;
    bool sign;
    EVP_MAC *mac; /* fetched once, shared read-only by every thread */
    hookd_auth_key_t *keys;
    size_t key_count;
    const hookd_auth_key_t *signing; /* one of keys[], NULL when not signing */
};

static void set_err(char *errstr, size_t size, const char *fmt, ...) HOOKD_PRINTF(3, 4);
static void set_err(char *errstr, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (errstr == NULL || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}

/* ---- base64 ------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/*
 * Decode standard or URL-safe base64 (ACME CSRs are often the latter),
 * padding optional. With `lenient`, whitespace is skipped (PEM-like line
 * breaks). Returns a malloc'd buffer and its length, NULL on bad input.
 */
static unsigned char *b64_decode(const char *in, size_t in_len, bool lenient, size_t *out_len)
{
    unsigned char *out = malloc(in_len / 4 * 3 + 3);
    uint32_t acc = 0;
    size_t n = 0, bits = 0, pad = 0, i;
    if (out == NULL)
        return NULL;
    for (i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (lenient && isspace(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0) /* data after padding */
            goto bad;
        v = b64_value(c);
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* 6 bits left over cannot be a complete group; more than 2 '=' never are */
    if (bits >= 6 || pad > 2)
        goto bad;
    *out_len = n;
    return out;
bad:
    free(out);
    return NULL;
}

/* ---- key files --------------------------------------------------------- */

static bool kid_valid(const char *kid, size_t len)
{
    size_t i;
    if (len == 0 || len > HOOKD_AUTH_KID_MAX)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)kid[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Read one key file. The file must be a regular file with no permission
 * bits for group or others (like ssh private keys). Its content, minus
 * trailing whitespace, is either "hex:<hex digits>", "base64:<base64>", or
 * the raw secret bytes.
 */
static int key_load(hookd_auth_key_t *k, const char *path, char *errstr, size_t errstr_size)
{
    unsigned char buf[HOOKD_AUTH_FILE_MAX + 1];
    unsigned char *secret = NULL;
    size_t len = 0, secret_len = 0;
    struct stat st;
    ssize_t r;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(errstr, errstr_size, "auth key '%s': %s: %s", k->kid, path, strerror(errno));
        return -1;
    }
    /* fstat the opened file: no window between the check and the read */
    if (fstat(fd, &st) != 0) {
        set_err(errstr, errstr_size, "auth key '%s': %s: %s", k->kid, path, strerror(errno));
        goto error;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(errstr, errstr_size, "auth key '%s': %s: not a regular file", k->kid, path);
        goto error;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        set_err(errstr, errstr_size,
                "auth key '%s': %s: permissions %04o are too open (group/others must have no "
                "access, e.g. chmod 0400)",
                k->kid, path, (unsigned)(st.st_mode & 07777));
        goto error;
    }
    while (len <= HOOKD_AUTH_FILE_MAX) {
        r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(errstr, errstr_size, "auth key '%s': %s: %s", k->kid, path, strerror(errno));
            goto error;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > HOOKD_AUTH_FILE_MAX) {
        set_err(errstr, errstr_size, "auth key '%s': %s: larger than %d bytes", k->kid, path,
                HOOKD_AUTH_FILE_MAX);
        goto error;
    }
    close(fd);
    fd = -1;

    while (len > 0 && isspace(buf[len - 1]))
        len--;

    if (len >= 4 && memcmp(buf, "hex:", 4) == 0) {
        size_t i, digits = len - 4;
        if (digits == 0 || digits % 2 != 0) {
            set_err(errstr, errstr_size, "auth key '%s': %s: odd or empty hex", k->kid, path);
            goto error;
        }
        secret = malloc(digits / 2);
        if (secret == NULL)
            goto enomem;
        for (i = 0; i < digits / 2; i++) {
            int hi = hex_value(buf[4 + 2 * i]), lo = hex_value(buf[5 + 2 * i]);
            if (hi < 0 || lo < 0) {
                OPENSSL_cleanse(secret, digits / 2);
                free(secret);
                secret = NULL;
                set_err(errstr, errstr_size, "auth key '%s': %s: not hex after 'hex:'", k->kid,
                        path);
                goto error;
            }
            secret[i] = (unsigned char)(hi << 4 | lo);
        }
        secret_len = digits / 2;
    } else if (len >= 7 && memcmp(buf, "base64:", 7) == 0) {
        secret = b64_decode((const char *)buf + 7, len - 7, true, &secret_len);
        if (secret == NULL) {
            set_err(errstr, errstr_size, "auth key '%s': %s: not base64 after 'base64:'", k->kid,
                    path);
            goto error;
        }
    } else {
        secret = malloc(len > 0 ? len : 1);
        if (secret == NULL)
            goto enomem;
        memcpy(secret, buf, len);
        secret_len = len;
    }
    OPENSSL_cleanse(buf, sizeof(buf));

    if (secret_len < HOOKD_AUTH_KEY_MIN || secret_len > HOOKD_AUTH_KEY_MAX) {
        set_err(errstr, errstr_size,
                "auth key '%s': %s: secret is %zu bytes, must be %d..%d (32 recommended)", k->kid,
                path, secret_len, HOOKD_AUTH_KEY_MIN, HOOKD_AUTH_KEY_MAX);
        OPENSSL_cleanse(secret, secret_len);
        free(secret);
        return -1;
    }
    k->secret = secret;
    k->len = secret_len;
    return 0;

enomem:
    set_err(errstr, errstr_size, "auth key '%s': out of memory", k->kid);
error:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ---- create / destroy -------------------------------------------------- */

static bool is_list_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

hookd_auth_t *hookd_auth_create(const hookd_config_t *cfg, char *errstr, size_t errstr_size)
{
    hookd_auth_t *a;
    const char *p;
    size_t cap = 0;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        set_err(errstr, errstr_size, "auth: out of memory");
        return NULL;
    }
    a->verify = cfg->auth_require;
    a->sign = cfg->auth_sign_results;

    /* "KEYID:PATH" entries separated by commas, blanks or newlines */
    for (p = cfg->auth_keys != NULL ? cfg->auth_keys : ""; *p != '\0';) {
        const char *start, *colon, *end;
        char *path;
        size_t i;

        while (*p != '\0' && is_list_sep(*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && !is_list_sep(*p))
            p++;
        end = p;
        colon = memchr(start, ':', (size_t)(end - start));
        if (colon == NULL || colon == start || colon + 1 == end) {
            set_err(errstr, errstr_size, "auth_keys: entry '%.*s' is not KEYID:PATH",
                    (int)(end - start), start);
            goto error;
        }
        if (!kid_valid(start, (size_t)(colon - start))) {
            set_err(errstr, errstr_size,
                    "auth_keys: key id '%.*s' must be 1..%d characters of [A-Za-z0-9._-]",
                    (int)(colon - start), start, HOOKD_AUTH_KID_MAX);
            goto error;
        }
        if (a->key_count == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            hookd_auth_key_t *n = realloc(a->keys, ncap * sizeof(*n));
            if (n == NULL) {
                set_err(errstr, errstr_size, "auth: out of memory");
                goto error;
            }
            a->keys = n;
            cap = ncap;
        }
        hookd_auth_key_t *k = &a->keys[a->key_count];
        memset(k, 0, sizeof(*k));
        memcpy(k->kid, start, (size_t)(colon - start));
        for (i = 0; i < a->key_count; i++) {
            if (strcmp(a->keys[i].kid, k->kid) == 0) {
                set_err(errstr, errstr_size, "auth_keys: key id '%s' listed twice", k->kid);
                goto error;
            }
        }
        path = strndup(colon + 1, (size_t)(end - colon - 1));
        if (path == NULL) {
            set_err(errstr, errstr_size, "auth: out of memory");
            goto error;
        }
        if (key_load(k, path, errstr, errstr_size) != 0) {
            free(path);
            goto error;
        }
        free(path);
        a->key_count++;
    }

    if ((a->verify || a->sign) && a->key_count == 0) {
        set_err(errstr, errstr_size, "auth: %s is on but auth_keys lists no key",
                a->verify ? "auth_require" : "auth_sign_results");
        goto error;
    }
    /* Verifying workers sign too: the records they write to their retry
     * tier topics carry a new hookd.phases.done (tiers.h). */
    if (a->sign || a->verify) {
        const char *want = cfg->auth_signing_key_id;
        if (want == NULL || want[0] == '\0') {
            a->signing = &a->keys[0]; /* the first key listed */
        } else {
            size_t i;
            for (i = 0; i < a->key_count; i++)
                if (strcmp(a->keys[i].kid, want) == 0)
                    a->signing = &a->keys[i];
            if (a->signing == NULL) {
                set_err(errstr, errstr_size,
                        "auth_signing_key_id: '%s' is not a key id listed in auth_keys", want);
                goto error;
            }
        }
    }
    if (a->key_count > 0) {
        a->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (a->mac == NULL) {
            set_err(errstr, errstr_size, "auth: OpenSSL has no HMAC implementation");
            goto error;
        }
    }
    return a;

error:
    hookd_auth_destroy(a);
    return NULL;
}

void hookd_auth_destroy(hookd_auth_t *a)
{
    size_t i;
    if (a == NULL)
        return;
    for (i = 0; i < a->key_count; i++) {
        OPENSSL_cleanse(a->keys[i].secret, a->keys[i].len);
        free(a->keys[i].secret);
    }
    free(a->keys);
    EVP_MAC_free(a->mac);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

bool hookd_auth_verify_enabled(const hookd_auth_t *a)
{
    return a != NULL && a->verify;
}

bool hookd_auth_sign_enabled(const hookd_auth_t *a)
{
    return a != NULL && a->sign;
}

/* ---- canonical form and MAC -------------------------------------------- */

static bool header_is_signed(const char *name)
{
    /* The request headers decide where a reply goes and which flags decide
     * the verdict: with [worker] trust_event_flags they are as much a part
     * of the event as its value. hookd.phases.done decides which chains
     * run at all (skipping pre skips a policy gate), so it is signed too. */
    return name != NULL &&
           (strncasecmp(name, "ce_", 3) == 0 || strcasecmp(name, "content-type") == 0 ||
            strcasecmp(name, "hookd.flags") == 0 || strcasecmp(name, "hookd.phases.done") == 0 ||
            strncasecmp(name, "kafka_reply", 11) == 0 ||
            strcasecmp(name, "kafka_correlationId") == 0);
}

static int cmp_header_ptr(const void *a, const void *b)
{
    const hookd_header_t *x = *(const hookd_header_t *const *)a;
    const hookd_header_t *y = *(const hookd_header_t *const *)b;
    return strcmp(x->name, y->name);
}

static int mac_len_field(EVP_MAC_CTX *ctx, const void *data, size_t len)
{
    unsigned char be[4];
    uint32_t n;
    if (data == NULL) {
        n = HOOKD_AUTH_NULL_LEN;
    } else {
        if (len >= HOOKD_AUTH_NULL_LEN)
            return -1;
        n = (uint32_t)len;
    }
    be[0] = (unsigned char)(n >> 24);
    be[1] = (unsigned char)(n >> 16);
    be[2] = (unsigned char)(n >> 8);
    be[3] = (unsigned char)n;
    if (!EVP_MAC_update(ctx, be, 4))
        return -1;
    if (data != NULL && len > 0 && !EVP_MAC_update(ctx, data, len))
        return -1;
    return 0;
}

/*
 * Collect the signed headers (by pointer), sorted by name; fail on a
 * duplicate name (compared without case, as selection is).
 */
static int signed_headers(const hookd_header_t *const *all, size_t count,
                          const hookd_header_t **out, size_t *out_count, char *errstr,
                          size_t errstr_size)
{
    size_t i, n = 0;
    for (i = 0; i < count; i++) {
        if (!header_is_signed(all[i]->name))
            continue;
        if (n == HOOKD_AUTH_SIGNED_MAX) {
            set_err(errstr, errstr_size, "more than %d signed headers", HOOKD_AUTH_SIGNED_MAX);
            return -1;
        }
        out[n++] = all[i];
    }
    qsort(out, n, sizeof(*out), cmp_header_ptr);
    for (i = 0; i < n; i++) {
        size_t j;
        for (j = i + 1; j < n; j++) {
            if (strcasecmp(out[i]->name, out[j]->name) == 0) {
                set_err(errstr, errstr_size, "signed header '%.64s' appears more than once",
                        out[i]->name);
                return -1;
            }
        }
    }
    *out_count = n;
    return 0;
}

static int compute_mac(const hookd_auth_t *a, const hookd_auth_key_t *k, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       const hookd_header_t *const *sorted, size_t n,
                       unsigned char mac[HOOKD_AUTH_MAC_LEN])
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx;
    unsigned char be[4];
    size_t i, out_len = 0;
    int rc = -1;

    ctx = EVP_MAC_CTX_new(a->mac);
    if (ctx == NULL)
        return -1;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, k->secret, k->len, params))
        goto done;
    if (!EVP_MAC_update(ctx, (const unsigned char *)HOOKD_AUTH_CONTEXT,
                        sizeof(HOOKD_AUTH_CONTEXT) - 1))
        goto done;
    if (mac_len_field(ctx, key, key_len) != 0 || mac_len_field(ctx, value, value_len) != 0)
        goto done;
    be[0] = (unsigned char)(n >> 24);
    be[1] = (unsigned char)(n >> 16);
    be[2] = (unsigned char)(n >> 8);
    be[3] = (unsigned char)n;
    if (!EVP_MAC_update(ctx, be, 4))
        goto done;
    for (i = 0; i < n; i++) {
        if (mac_len_field(ctx, sorted[i]->name, strlen(sorted[i]->name)) != 0 ||
            mac_len_field(ctx, sorted[i]->value, sorted[i]->len) != 0)
            goto done;
    }
    if (!EVP_MAC_final(ctx, mac, &out_len, HOOKD_AUTH_MAC_LEN) || out_len != HOOKD_AUTH_MAC_LEN)
        goto done;
    rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/*
 * Parse "v1;kid=<id>;sig=<base64>". On success *kid and *kid_len point into
 * `v` and `mac` holds the decoded MAC.
 */
static int parse_signature(const char *v, size_t len, const char **kid, size_t *kid_len,
                           unsigned char mac[HOOKD_AUTH_MAC_LEN])
{
    const char *p = v, *end = v + len, *semi, *sig;
    unsigned char *raw;
    size_t raw_len;

    if (len < 3 || memcmp(p, "v1;", 3) != 0)
        return -1;
    p += 3;
    if ((size_t)(end - p) < 4 || memcmp(p, "kid=", 4) != 0)
        return -1;
    p += 4;
    semi = memchr(p, ';', (size_t)(end - p));
    if (semi == NULL || !kid_valid(p, (size_t)(semi - p)))
        return -1;
    *kid = p;
    *kid_len = (size_t)(semi - p);
    p = semi + 1;
    if ((size_t)(end - p) < 4 || memcmp(p, "sig=", 4) != 0)
        return -1;
    sig = p + 4;
    if (end - sig > 64) /* a 32-byte MAC is 44 characters */
        return -1;
    raw = b64_decode(sig, (size_t)(end - sig), false, &raw_len);
    if (raw == NULL)
        return -1;
    if (raw_len != HOOKD_AUTH_MAC_LEN) {
        free(raw);
        return -1;
    }
    memcpy(mac, raw, HOOKD_AUTH_MAC_LEN);
    free(raw);
    return 0;
}

int hookd_auth_verify(const hookd_auth_t *a, const void *key, size_t key_len, const void *value,
                      size_t value_len, const hookd_header_t *headers, size_t header_count,
                      char *errstr, size_t errstr_size)
{
    const hookd_header_t *sorted[HOOKD_AUTH_SIGNED_MAX];
    const hookd_header_t **all = NULL;
    size_t n = 0, i, sig_headers = 0;
    bool unknown_kid = false, malformed = false, mismatch = false;
    char unknown[HOOKD_AUTH_KID_MAX + 1] = "";
    int rc = -1;

    if (a == NULL || a->key_count == 0) {
        set_err(errstr, errstr_size, "no authentication keys loaded");
        return -1;
    }
    if (header_count > 0 && headers == NULL) {
        set_err(errstr, errstr_size, "headers missing");
        return -1;
    }
    all = calloc(header_count > 0 ? header_count : 1, sizeof(*all));
    if (all == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (i = 0; i < header_count; i++) {
        if (headers[i].name == NULL) {
            set_err(errstr, errstr_size, "header without a name");
            goto done;
        }
        all[i] = &headers[i];
    }
    if (signed_headers(all, header_count, sorted, &n, errstr, errstr_size) != 0)
        goto done;

    for (i = 0; i < header_count; i++) {
        unsigned char got[HOOKD_AUTH_MAC_LEN], want[HOOKD_AUTH_MAC_LEN];
        const hookd_auth_key_t *k = NULL;
        const char *kid;
        size_t kid_len, j;

        if (strcasecmp(headers[i].name, HOOKD_AUTH_HEADER) != 0)
            continue;
        sig_headers++;
        if (headers[i].value == NULL ||
            parse_signature(headers[i].value, headers[i].len, &kid, &kid_len, got) != 0) {
            malformed = true;
            continue;
        }
        for (j = 0; j < a->key_count; j++) {
            if (strlen(a->keys[j].kid) == kid_len && memcmp(a->keys[j].kid, kid, kid_len) == 0) {
                k = &a->keys[j];
                break;
            }
        }
        if (k == NULL) {
            unknown_kid = true;
            /* kid_valid() held: a short string of safe characters, fine to show */
            memcpy(unknown, kid, kid_len);
            unknown[kid_len] = '\0';
            continue;
        }
        if (compute_mac(a, k, key, key_len, value, value_len, sorted, n, want) != 0) {
            set_err(errstr, errstr_size, "HMAC computation failed");
            goto done;
        }
        /* constant time: the comparison leaks nothing about where bytes differ */
        if (CRYPTO_memcmp(got, want, HOOKD_AUTH_MAC_LEN) == 0) {
            OPENSSL_cleanse(want, sizeof(want));
            rc = 0;
            goto done;
        }
        OPENSSL_cleanse(want, sizeof(want));
        set_err(errstr, errstr_size, "signature by key '%s' does not match the message", k->kid);
        /* go on: another signature header (another key) may verify */
        mismatch = true;
    }

    /* the mismatch message, when there was one, is already set */
    if (sig_headers == 0)
        set_err(errstr, errstr_size, "message is not signed (no %s header)", HOOKD_AUTH_HEADER);
    else if (!mismatch && unknown_kid)
        set_err(errstr, errstr_size, "signature by unknown key id '%s'", unknown);
    else if (!mismatch && malformed)
        set_err(errstr, errstr_size, "malformed %s header (want v1;kid=<id>;sig=<base64>)",
                HOOKD_AUTH_HEADER);
done:
    free(all);
    return rc;
}

int hookd_auth_sign(const hookd_auth_t *a, const void *key, size_t key_len, const void *value,
                    size_t value_len, hookd_headers_t *headers, char *errstr, size_t errstr_size)
{
    const hookd_header_t *sorted[HOOKD_AUTH_SIGNED_MAX];
    const hookd_header_t **all = NULL;
    unsigned char mac[HOOKD_AUTH_MAC_LEN];
    char b64[((HOOKD_AUTH_MAC_LEN + 2) / 3) * 4 + 1];
    char hdr[sizeof("v1;kid=;sig=") + HOOKD_AUTH_KID_MAX + sizeof(b64)];
    size_t count, n = 0, i;
    int rc = -1;

    if (a == NULL || a->signing == NULL) {
        set_err(errstr, errstr_size, "no signing key");
        return -1;
    }
    count = hookd_headers_count(headers);
    all = calloc(count > 0 ? count : 1, sizeof(*all));
    if (all == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (i = 0; i < count; i++)
        all[i] = hookd_headers_get(headers, i);
    if (signed_headers(all, count, sorted, &n, errstr, errstr_size) != 0)
        goto done;
    if (compute_mac(a, a->signing, key, key_len, value, value_len, sorted, n, mac) != 0) {
        set_err(errstr, errstr_size, "HMAC computation failed");
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)b64, mac, HOOKD_AUTH_MAC_LEN);
    snprintf(hdr, sizeof(hdr), "v1;kid=%s;sig=%s", a->signing->kid, b64);
    if (hookd_headers_add_str(headers, HOOKD_AUTH_HEADER, hdr) != 0) {
        set_err(errstr, errstr_size, "out of memory");
        goto done;
    }
    rc = 0;
done:
    OPENSSL_cleanse(mac, sizeof(mac));
    free(all);
    return rc;
}

/* ---- X.509 checks ------------------------------------------------------ */

int hookd_x509_check_event(const hookd_event_t *ev, char *errstr, size_t errstr_size)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t der_len = 0;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    EVP_PKEY *req_key, *cert_key;
    int rc = -1, r;

    if (ev->csr == NULL) {
        /* a failed enrollment may come without a CSR: nothing to check */
        if (ev->type == HOOKD_EVENT_FAILED)
            return 0;
        set_err(errstr, errstr_size, "csr: missing");
        return -1;
    }
    der = b64_decode(ev->csr, strlen(ev->csr), true, &der_len);
    if (der == NULL || der_len == 0 || der_len > LONG_MAX) {
        set_err(errstr, errstr_size, "csr: not base64");
        goto done;
    }
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)der_len);
    if (req == NULL || p != der + der_len) {
        set_err(errstr, errstr_size, "csr: not a DER certificate signing request");
        goto done;
    }
    req_key = X509_REQ_get0_pubkey(req);
    if (req_key == NULL) {
        set_err(errstr, errstr_size, "csr: public key unreadable");
        goto done;
    }
    r = X509_REQ_verify(req, req_key);
    if (r != 1) {
        set_err(errstr, errstr_size, "csr: self-signature does not verify");
        goto done;
    }

    if (ev->type == HOOKD_EVENT_ISSUED) {
        if (ev->certificate == NULL) {
            set_err(errstr, errstr_size, "certificate: missing");
            goto done;
        }
        bio = BIO_new_mem_buf(ev->certificate, -1);
        if (bio == NULL) {
            set_err(errstr, errstr_size, "certificate: out of memory");
            goto done;
        }
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert == NULL) {
            set_err(errstr, errstr_size, "certificate: no PEM certificate in the chain");
            goto done;
        }
        cert_key = X509_get0_pubkey(cert);
        if (cert_key == NULL) {
            set_err(errstr, errstr_size, "certificate: public key unreadable");
            goto done;
        }
        if (EVP_PKEY_eq(cert_key, req_key) != 1) {
            set_err(errstr, errstr_size,
                    "certificate: public key differs from the CSR's public key");
            goto done;
        }
    }
    rc = 0;
done:
    /* OpenSSL leaves reasons on the thread's error queue; they are not ours to keep */
    ERR_clear_error();
    BIO_free(bio);
    X509_free(cert);
    X509_REQ_free(req);
    free(der);
    return rc;
}
