/* SPDX-License-Identifier: MIT */
/*
 * cn_dump: acme2certifier's cn_dump_hooks in C. Every phase appends one
 * JSON line with the subject alternative names of the enrollment to a file
 * under `save_path`:
 *
 *   pre_hook      SANs of the CSR          -> <save_path>/pre_hook.txt
 *   success_hook  SANs of the certificate  -> <save_path>/success_hook.txt
 *   post_hook     SANs of the CSR          -> <save_path>/post_hook.txt
 *
 * A line is {"event_id":..,"phase":..,"certificate_name":..,"order_name":..,
 * "san":["DNS:example.com","IP:192.0.2.1"]} (post adds "error"); with
 * cn_dump_san_only = true it is the bare SAN array, exactly as the Python
 * handler writes it (json.dumps: ["DNS:example.com", "IP:192.0.2.1"]). SANs
 * are rendered as acme2certifier 0.46 does: the DNS names, then the IP
 * addresses, then the e-mail addresses (EMAIL:), each group in the order
 * of the extension; other name types are left out.
 *
 * Unlike the Python handler, which dumps whatever it is given, a CSR that
 * does not parse or whose signature does not verify, or a certificate that
 * does not parse, fails the hook with the reason: it is the first place
 * in the chain where a broken request shows.
 *
 * Appends are one write() on an O_APPEND descriptor, so lines from several
 * threads and several worker processes never interleave (on a local file
 * system). Delivery is at-least-once, so a line can appear twice; its
 * event_id tells duplicates apart.
 *
 * Keys: save_path (required: an existing directory), cn_dump_san_only
 * (boolean, default false).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <acme_hookd/hook.h>

static const char *const cn_dump_config_keys[] = {"save_path", "cn_dump_san_only", NULL};

typedef struct cn_dump {
    char *save_path;
    int san_only;
} cn_dump_t;

/* ---- decoding ------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-') /* standard and URL-safe alphabets, as b64_url_recode */
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/*
 * Decode base64 or base64url, padded or not, ignoring whitespace (PEM-style
 * line breaks). Returns a malloc'd buffer and its length, or NULL.
 */
static unsigned char *b64_decode(const char *in, size_t *out_len)
{
    size_t len = strlen(in), n = 0, i;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    unsigned int acc = 0;
    int bits = 0, pad = 0;

    if (!out)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad) /* a foreign byte, or data after the padding */
            goto error;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits: 2 or 4 are padding bits of a short final group; 6
     * means a lone character, which no encoder produces. */
    if (bits >= 6 || pad > 2 || n == 0)
        goto error;
    *out_len = n;
    return out;

error:
    free(out);
    return NULL;
}

/* The first OpenSSL error of this thread as text (or `dflt`), queue cleared. */
static const char *ossl_reason(char *buf, size_t bufsz, const char *dflt)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, bufsz);
    else
        snprintf(buf, bufsz, "%s", dflt);
    ERR_clear_error();
    return buf;
}

static X509_REQ *csr_load(hookd_ctx_t *ctx, const char *csr)
{
    char why[256];
    X509_REQ *req = NULL;

    if (strncmp(csr, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(csr, -1);
        if (bio)
            req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        size_t len;
        unsigned char *der = b64_decode(csr, &len);
        const unsigned char *p = der;
        if (!der) {
            hookd_set_error(ctx, "cn_dump: CSR is not valid base64");
            return NULL;
        }
        req = d2i_X509_REQ(NULL, &p, (long)len);
        if (req && p != der + len) {
            size_t trailing = (size_t)(der + len - p);
            X509_REQ_free(req);
            free(der);
            hookd_set_error(ctx, "cn_dump: CSR has %zu trailing bytes after the DER structure",
                            trailing);
            return NULL;
        }
        free(der);
    }
    if (!req) {
        hookd_set_error(ctx, "cn_dump: CSR does not parse: %s",
                        ossl_reason(why, sizeof(why), "not a PKCS#10 request"));
        return NULL;
    }

    /* A CSR whose signature does not verify was altered after signing, or
     * was never signed by the key it carries. */
    {
        EVP_PKEY *key = X509_REQ_get0_pubkey(req);
        int ok = key ? X509_REQ_verify(req, key) : -1;
        if (ok == 0) {
            /* OpenSSL's own text for a plain mismatch ("EVP lib") says less. */
            ERR_clear_error();
            hookd_set_error(ctx, "cn_dump: CSR signature does not verify (altered, or not "
                                 "signed by the key it carries)");
        } else if (ok != 1) {
            hookd_set_error(ctx, "cn_dump: CSR signature does not verify: %s",
                            ossl_reason(why, sizeof(why),
                                        key ? "verification error" : "unusable public key"));
        }
        if (ok != 1) {
            X509_REQ_free(req);
            return NULL;
        }
    }
    return req;
}

/*
 * The certificate of a success event: the leaf of the PEM chain and, when
 * present, the base64 DER copy. Each one given must parse; the SANs come
 * from certificate_raw as in acme2certifier, else from the PEM leaf.
 */
static X509 *cert_load(hookd_ctx_t *ctx, const char *pem, const char *raw)
{
    char why[256];
    X509 *leaf = NULL, *der_cert = NULL, *extra;
    BIO *bio;

    if (pem && pem[0]) {
        bio = BIO_new_mem_buf(pem, -1);
        leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        if (!leaf) {
            BIO_free(bio);
            hookd_set_error(ctx, "cn_dump: certificate (PEM chain) does not parse: %s",
                            ossl_reason(why, sizeof(why), "no certificate found"));
            return NULL;
        }
        /* The rest of the chain must parse too: stop at a clean end. */
        while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
            X509_free(extra);
        {
            unsigned long e = ERR_peek_last_error();
            if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
                BIO_free(bio);
                X509_free(leaf);
                hookd_set_error(ctx, "cn_dump: certificate chain does not parse: %s",
                                ossl_reason(why, sizeof(why), "bad PEM block"));
                return NULL;
            }
        }
        ERR_clear_error();
        BIO_free(bio);
    }
    if (raw && raw[0]) {
        size_t len;
        unsigned char *der = b64_decode(raw, &len);
        const unsigned char *p = der;
        if (!der) {
            X509_free(leaf);
            hookd_set_error(ctx, "cn_dump: certificate_raw is not valid base64");
            return NULL;
        }
        der_cert = d2i_X509(NULL, &p, (long)len);
        if (!der_cert || p != der + len) {
            X509_free(der_cert);
            X509_free(leaf);
            free(der);
            hookd_set_error(ctx, "cn_dump: certificate_raw does not parse: %s",
                            ossl_reason(why, sizeof(why), "trailing bytes after the certificate"));
            return NULL;
        }
        free(der);
        if (leaf && X509_cmp(leaf, der_cert) != 0)
            hookd_log(ctx, HOOKD_LOG_WARNING,
                      "cn_dump: certificate_raw differs from the first certificate of the chain");
    }
    if (der_cert) {
        X509_free(leaf);
        return der_cert;
    }
    if (!leaf)
        hookd_set_error(ctx, "cn_dump: the event carries no certificate");
    return leaf;
}

/* ---- SAN rendering ------------------------------------------------------- */

/* DNS and e-mail names are IA5 (ASCII); anything else is shown escaped, never raw. */
static void san_ia5(char *out, size_t outsz, const char *prefix, const ASN1_STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s), i;
    size_t n = (size_t)snprintf(out, outsz, "%s", prefix);

    for (i = 0; i < len && n + 5 < outsz; i++) {
        if (d[i] >= 0x20 && d[i] < 0x7f)
            out[n++] = (char)d[i];
        else
            n += (size_t)snprintf(out + n, outsz - n, "\\x%02x", d[i]);
    }
    out[n] = '\0';
}

static int san_ip(char *out, size_t outsz, const ASN1_OCTET_STRING *s)
{
    char ip[INET6_ADDRSTRLEN];
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);

    if (len == 4)
        inet_ntop(AF_INET, d, ip, sizeof(ip));
    else if (len == 16)
        inet_ntop(AF_INET6, d, ip, sizeof(ip));
    else
        return -1;
    snprintf(out, outsz, "IP:%s", ip);
    return 0;
}

/*
 * Fill `arr` from a GENERAL_NAMES (NULL: no SAN extension, an empty list),
 * in acme2certifier's order: the DNS names, then the IP addresses, then the
 * e-mail addresses, each in the order of the extension.
 */
static int sans_to_json(hookd_ctx_t *ctx, GENERAL_NAMES *gens, cJSON *arr)
{
    static const int order[] = {GEN_DNS, GEN_IPADD, GEN_EMAIL};
    size_t pass;
    int i;
    char buf[1100];

    for (pass = 0; pass < sizeof(order) / sizeof(order[0]); pass++) {
        for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type != order[pass])
                continue;
            if (g->type == GEN_DNS) {
                san_ia5(buf, sizeof(buf), "DNS:", g->d.dNSName);
            } else if (g->type == GEN_EMAIL) {
                san_ia5(buf, sizeof(buf), "EMAIL:", g->d.rfc822Name);
            } else if (san_ip(buf, sizeof(buf), g->d.iPAddress) != 0) {
                hookd_set_error(ctx, "cn_dump: subjectAltName has an IP address of %d bytes",
                                ASN1_STRING_length(g->d.iPAddress));
                return -1;
            }
            if (!cJSON_AddItemToArray(arr, cJSON_CreateString(buf))) {
                hookd_set_error(ctx, "cn_dump: out of memory");
                return -1;
            }
        }
    }
    return 0;
}

/*
 * The SAN array as Python's json.dumps() writes it (", " between items),
 * the line acme2certifier's cn_dump_hooks appends. malloc'd, or NULL.
 */
static char *san_array_text(const cJSON *arr)
{
    const cJSON *item;
    size_t len = 2, used = 0;
    char *out, *one;

    cJSON_ArrayForEach(item, arr)
    {
        if (!(one = cJSON_PrintUnformatted(item)))
            return NULL;
        len += strlen(one) + 2;
        cJSON_free(one);
    }
    if (!(out = malloc(len + 1)))
        return NULL;
    out[used++] = '[';
    cJSON_ArrayForEach(item, arr)
    {
        if (!(one = cJSON_PrintUnformatted(item))) {
            free(out);
            return NULL;
        }
        if (used > 1) {
            memcpy(out + used, ", ", 2);
            used += 2;
        }
        memcpy(out + used, one, strlen(one));
        used += strlen(one);
        cJSON_free(one);
    }
    out[used++] = ']';
    out[used] = '\0';
    return out;
}

/* crit from X509V3_get_d2i: -1 absent, -2 duplicated, >= 0 found (NULL: broken). */
static int san_check(hookd_ctx_t *ctx, const char *what, void *gens, int crit)
{
    if (crit == -2) {
        hookd_set_error(ctx, "cn_dump: %s has more than one subjectAltName extension", what);
        return -1;
    }
    if (crit >= 0 && !gens) {
        char why[256];
        hookd_set_error(ctx, "cn_dump: %s has a malformed subjectAltName extension: %s", what,
                        ossl_reason(why, sizeof(why), "cannot decode"));
        return -1;
    }
    return 0;
}

static int csr_sans(hookd_ctx_t *ctx, const char *csr, cJSON *arr)
{
    X509_REQ *req = csr_load(ctx, csr);
    STACK_OF(X509_EXTENSION) * exts;
    GENERAL_NAMES *gens = NULL;
    int crit = -1, rc;

    if (!req)
        return -1;
    exts = X509_REQ_get_extensions(req);
    if (exts)
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    rc = san_check(ctx, "CSR", gens, crit);
    if (rc == 0)
        rc = sans_to_json(ctx, gens, arr);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

static int cert_sans(hookd_ctx_t *ctx, const char *pem, const char *raw, cJSON *arr)
{
    X509 *cert = cert_load(ctx, pem, raw);
    GENERAL_NAMES *gens;
    int crit = -1, rc;

    if (!cert)
        return -1;
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    rc = san_check(ctx, "certificate", gens, crit);
    if (rc == 0)
        rc = sans_to_json(ctx, gens, arr);
    GENERAL_NAMES_free(gens);
    X509_free(cert);
    return rc;
}

/* ---- output -------------------------------------------------------------- */

static void add_string_or_null(cJSON *obj, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

/*
 * Append one line to <save_path>/<file> with a single write() on an
 * O_APPEND descriptor: concurrent writers (threads, processes) each land a
 * whole line. A failed or short write is reported as a retry: a full disk
 * or an I/O error may clear up.
 */
static hookd_outcome_t append_line(hookd_ctx_t *ctx, const cn_dump_t *cd, const char *file,
                                   const char *line)
{
    char path[4096];
    size_t len = strlen(line);
    ssize_t w;
    int fd;

    if (snprintf(path, sizeof(path), "%s/%s", cd->save_path, file) >= (int)sizeof(path)) {
        hookd_set_error(ctx, "cn_dump: save_path too long");
        return HOOKD_FAIL;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        hookd_set_error(ctx, "cn_dump: cannot open %s: %s", path, strerror(errno));
        return HOOKD_RETRY;
    }
    do
        w = write(fd, line, len);
    while (w < 0 && errno == EINTR);
    if (w < 0 || (size_t)w != len) {
        int e = w < 0 ? errno : ENOSPC;
        close(fd);
        hookd_set_error(ctx, "cn_dump: cannot append to %s: %s", path, strerror(e));
        return HOOKD_RETRY;
    }
    if (close(fd) != 0) {
        hookd_set_error(ctx, "cn_dump: cannot write %s: %s", path, strerror(errno));
        return HOOKD_RETRY;
    }
    return HOOKD_OK;
}

/*
 * Build the line of one phase and append it. `arr` (the SANs) is consumed.
 */
static hookd_outcome_t dump(hookd_ctx_t *ctx, const cn_dump_t *cd, const char *phase,
                            const char *certificate_name, const char *order_name, cJSON *arr,
                            int with_error, const char *error)
{
    char file[32];
    cJSON *root = arr;
    char *text, *line;
    size_t len;
    hookd_outcome_t rc;

    if (!cd->san_only) {
        root = cJSON_CreateObject();
        if (!root) {
            cJSON_Delete(arr);
            hookd_set_error(ctx, "cn_dump: out of memory");
            return HOOKD_FAIL;
        }
        add_string_or_null(root, "event_id", hookd_event_id(ctx));
        cJSON_AddStringToObject(root, "phase", phase);
        add_string_or_null(root, "certificate_name", certificate_name);
        add_string_or_null(root, "order_name", order_name);
        cJSON_AddItemToObject(root, "san", arr);
        if (with_error)
            add_string_or_null(root, "error", error);
    }
    text = cd->san_only ? san_array_text(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    len = strlen(text);
    line = malloc(len + 2);
    if (!line) {
        free(text);
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    memcpy(line, text, len);
    line[len] = '\n';
    line[len + 1] = '\0';
    free(text);

    snprintf(file, sizeof(file), "%s_hook.txt", phase);
    rc = append_line(ctx, cd, file, line);
    free(line);
    if (rc == HOOKD_OK)
        hookd_log(ctx, HOOKD_LOG_DEBUG, "cn_dump: %s_hook line appended to %s/%s", phase,
                  cd->save_path, file);
    return rc;
}

/* ---- the handler --------------------------------------------------------- */

static hookd_outcome_t cn_dump_init(hookd_ctx_t *ctx, void **state)
{
    const char *path = hookd_config_get(ctx, "save_path");
    const char *raw_bool = hookd_config_get(ctx, "cn_dump_san_only");
    cn_dump_t *cd;
    struct stat st;

    if (!path || !path[0]) {
        hookd_set_error(ctx, "cn_dump: save_path is not set ([Hooks] save_path = DIRECTORY)");
        return HOOKD_FAIL;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        hookd_set_error(ctx, "cn_dump: save_path '%s' is not a directory", path);
        return HOOKD_FAIL;
    }
    cd = calloc(1, sizeof(*cd));
    if (!cd || !(cd->save_path = strdup(path))) {
        free(cd);
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    cd->san_only = hookd_config_get_bool(ctx, "cn_dump_san_only", -1);
    if (cd->san_only < 0) {
        if (raw_bool) {
            hookd_set_error(ctx, "cn_dump: cn_dump_san_only: '%s' is not a boolean", raw_bool);
            free(cd->save_path);
            free(cd);
            return HOOKD_FAIL;
        }
        cd->san_only = 0;
    }
    *state = cd;
    return HOOKD_OK;
}

static void cn_dump_fini(hookd_ctx_t *ctx, void *state)
{
    cn_dump_t *cd = state;
    (void)ctx;
    if (cd)
        free(cd->save_path);
    free(cd);
}

static hookd_outcome_t cn_dump_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                   const char *order_name, const char *csr)
{
    cJSON *arr;

    hookd_log(ctx, HOOKD_LOG_DEBUG, "cn_dump: pre_hook()");
    if (!csr || !csr[0]) {
        hookd_set_error(ctx, "cn_dump: the event carries no CSR");
        return HOOKD_FAIL;
    }
    if (!(arr = cJSON_CreateArray())) {
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    ERR_clear_error();
    if (csr_sans(ctx, csr, arr) != 0) {
        cJSON_Delete(arr);
        return HOOKD_FAIL;
    }
    return dump(ctx, state, "pre", certificate_name, order_name, arr, 0, NULL);
}

static hookd_outcome_t cn_dump_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                       const char *order_name, const char *csr,
                                       const char *certificate, const char *certificate_raw,
                                       const char *poll_identifier)
{
    cJSON *arr;

    hookd_log(ctx, HOOKD_LOG_DEBUG, "cn_dump: success_hook()");
    if (!(arr = cJSON_CreateArray())) {
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    ERR_clear_error();
    if (cert_sans(ctx, certificate, certificate_raw, arr) != 0) {
        cJSON_Delete(arr);
        return HOOKD_FAIL;
    }
    return dump(ctx, state, "success", certificate_name, order_name, arr, 0, NULL);
}

/*
 * post_hook also runs after failed enrollments, which may have come
 * without a usable request: no CSR gives an empty list (as the Python
 * handler's), a CSR that is there must still parse.
 */
static hookd_outcome_t cn_dump_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr, const char *error)
{
    cJSON *arr;

    hookd_log(ctx, HOOKD_LOG_DEBUG, "cn_dump: post_hook()");
    if (!(arr = cJSON_CreateArray())) {
        hookd_set_error(ctx, "cn_dump: out of memory");
        return HOOKD_FAIL;
    }
    ERR_clear_error();
    if (csr && csr[0] && csr_sans(ctx, csr, arr) != 0) {
        cJSON_Delete(arr);
        return HOOKD_FAIL;
    }
    return dump(ctx, state, "post", certificate_name, order_name, arr, 1, error);
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "cn_dump",
    .description = "appends the SANs of each enrollment as JSON lines under save_path",
    .config_keys = cn_dump_config_keys,
    .init = cn_dump_init,
    .fini = cn_dump_fini,
    .pre_hook = cn_dump_pre,
    .success_hook = cn_dump_success,
    .post_hook = cn_dump_post,
};
