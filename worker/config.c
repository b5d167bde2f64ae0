/* SPDX-License-Identifier: MIT */
/*
 * Configuration: INI file -> environment overrides -> typed, validated
 * hookd_config_t.
 *
 * The file is parsed by libinih. inih reports only the first malformed line
 * (as a line number) and calls its handler without one, so lines are fed to
 * it through our own reader, which counts them, classifies each line the
 * way inih will (to report every malformed one) and rejects lines longer
 * than inih's line buffer instead of letting inih split them into bogus
 * keys. `key = value` and `key: value` are both inih's native syntax.
 *
 * Loading is done in layers so that the environment can override the file
 * deterministically: every raw key/value (file, then environment) is first
 * collected as an entry; an environment entry kills the file entry of the
 * same key; the surviving entries are then applied through the key table
 * below (Fluent Bit style: keys declared as data, defaults as strings parsed
 * by the same code as file values, so documented and effective defaults
 * cannot differ). Every problem is collected, not just the first one.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>
#include <librdkafka/rdkafka.h>

#include "log.h"
#include "tiers.h"

#define ENV_PREFIX "ACME_HOOKD_"
#define ENV_FILE_SUFFIX "__FILE"
#define CONFIG_FILE_MAX (4u * 1024u * 1024u) /* a config file is never this big */
#define SECRET_FILE_MAX (64u * 1024u)        /* a *__FILE secret is never this big */
#define MASK "********"

/* ---- sections ---------------------------------------------------------- */

typedef enum cfg_section {
    SEC_HOOKS = 0,
    SEC_KAFKA,
    SEC_WORKER,
    SEC_HTTP,
    SEC_LOG,
    SEC_AUTH,
    SEC_COUNT,
    SEC_NONE = -1,   /* before the first section header */
    SEC_UNKNOWN = -2 /* inside a section we do not know (already reported) */
} cfg_section_t;

/* Canonical spelling, used in messages and in the dump; matched ignoring case. */
static const char *const section_names[SEC_COUNT] = {"Hooks", "kafka", "worker",
                                                     "http",  "log",   "auth"};

/* ---- the key table ----------------------------------------------------- */

typedef enum cfg_type {
    T_STR,       /* char * */
    T_INT,       /* int */
    T_LONG,      /* long */
    T_SIZE,      /* size_t */
    T_U32,       /* uint32_t */
    T_BOOL,      /* bool */
    T_LEVEL,     /* int, hookd_log_level_t */
    T_LOGFMT,    /* hookd_log_format_t */
    T_ISOLATION, /* hookd_isolation_t */
    T_ORDERING,  /* hookd_ordering_t */
    T_DELIVERY   /* hookd_delivery_t */
} cfg_type_t;

/* key flags */
#define KF_NONEMPTY 0x01u /* T_STR: must not be empty */
#define KF_OPTIONAL 0x02u /* T_STR: empty means unset (NULL) */
#define KF_COMMAS 0x04u   /* T_STR: a list, normalised to comma-separated */
#define KF_ALIAS 0x08u    /* another spelling of the previous key: not dumped */
#define KF_LISTEN 0x10u   /* T_STR: ADDR:PORT or :PORT */

typedef struct cfg_key {
    cfg_section_t section;
    const char *name;
    cfg_type_t type;
    size_t offset;
    long long min, max; /* integers */
    unsigned flags;
    const char *dflt; /* parsed like a file value; NULL: unset or computed */
} cfg_key_t;

#define OFF(field) offsetof(hookd_config_t, field)
#define ALLOW(ph) OFF(policy.allow_failure[ph])

static const cfg_key_t cfg_keys[] = {
    /* [Hooks]: acme2certifier's keys; every other key belongs to a handler. */
    {SEC_HOOKS, "hooks_file", T_STR, OFF(hooks_file), 0, 0, KF_OPTIONAL, NULL},
    /* acme2certifier 0.46's spelling of hooks_file; it wins when both are set, as there */
    {SEC_HOOKS, "hooks_module", T_STR, OFF(hooks_module), 0, 0, KF_OPTIONAL, NULL},
    /* the worker's chain when the file is shared with acme2certifier, whose
     * hooks_module then names the bridge: see resolve_chain() */
    {SEC_HOOKS, "hookd_handlers", T_STR, OFF(hookd_handlers), 0, 0, KF_OPTIONAL, NULL},
    {SEC_HOOKS, "hook_error_details_forward", T_BOOL, OFF(hook_error_details_forward), 0, 0, 0,
     "false"},
    {SEC_HOOKS, "allow_pre_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_PRE), 0, 0, 0, "false"},
    {SEC_HOOKS, "ignore_pre_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_PRE), 0, 0, KF_ALIAS, NULL},
    {SEC_HOOKS, "allow_success_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_SUCCESS), 0, 0, 0, "false"},
    {SEC_HOOKS, "ignore_success_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_SUCCESS), 0, 0, KF_ALIAS,
     NULL},
    {SEC_HOOKS, "allow_post_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_POST), 0, 0, 0, "true"},
    {SEC_HOOKS, "ignore_post_hook_failure", T_BOOL, ALLOW(HOOKD_PHASE_POST), 0, 0, KF_ALIAS, NULL},
    {SEC_HOOKS, "allow_unsafe_hooks_file", T_BOOL, OFF(allow_unsafe_hooks_file), 0, 0, 0, "false"},

    /* [kafka]; rdkafka.* pass-through is handled apart */
    {SEC_KAFKA, "bootstrap_servers", T_STR, OFF(bootstrap_servers), 0, 0, KF_OPTIONAL | KF_COMMAS,
     NULL},
    {SEC_KAFKA, "group_id", T_STR, OFF(group_id), 0, 0, KF_NONEMPTY, "acme-hookd"},
    {SEC_KAFKA, "input_topic", T_STR, OFF(input_topic), 0, 0, KF_NONEMPTY, "acme.enrollment"},
    {SEC_KAFKA, "result_topic", T_STR, OFF(result_topic), 0, 0, KF_NONEMPTY,
     "acme.enrollment.result"},
    {SEC_KAFKA, "dead_letter_topic", T_STR, OFF(dead_letter_topic), 0, 0, KF_NONEMPTY,
     "acme.enrollment.dlq"},
    {SEC_KAFKA, "reply_topics", T_STR, OFF(reply_topics), 0, 0, KF_OPTIONAL | KF_COMMAS, NULL},
    {SEC_KAFKA, "delivery", T_DELIVERY, OFF(delivery), 0, 0, 0, "at_least_once"},
    {SEC_KAFKA, "transaction_interval_ms", T_INT, OFF(transaction_interval_ms), 10, 60000, 0,
     "100"},
    {SEC_KAFKA, "transaction_max_events", T_INT, OFF(transaction_max_events), 1, 1000000, 0,
     "10000"},
    {SEC_KAFKA, "transactional_id", T_STR, OFF(transactional_id), 0, 0, KF_OPTIONAL, NULL},

    /* [worker] */
    {SEC_WORKER, "worker_id", T_STR, OFF(worker_id), 0, 0, KF_NONEMPTY, NULL},
    {SEC_WORKER, "threads", T_INT, OFF(threads), 1, 256, 0, "4"},
    {SEC_WORKER, "shutdown_timeout_ms", T_INT, OFF(shutdown_timeout_ms), 100, 3600000, 0, "25000"},
    {SEC_WORKER, "revoke_timeout_ms", T_INT, OFF(revoke_timeout_ms), 0, 3600000, 0, "10000"},
    {SEC_WORKER, "publish_retry_backoff_ms", T_INT, OFF(publish_retry_backoff_ms), 10, 600000, 0,
     "1000"},
    {SEC_WORKER, "partition_queue_max", T_INT, OFF(partition_queue_max), 1, 1000000, 0, "1000"},
    {SEC_WORKER, "commit_interval_ms", T_INT, OFF(commit_interval_ms), 10, 600000, 0, "200"},
    {SEC_WORKER, "ordering", T_ORDERING, OFF(ordering), 0, 0, 0, "key"},
    {SEC_WORKER, "max_in_flight", T_INT, OFF(max_in_flight), 1, 10000000, 0, "40000"},
    {SEC_WORKER, "max_in_flight_per_partition", T_INT, OFF(max_in_flight_per_partition), 1,
     10000000, 0, "5000"},
    {SEC_WORKER, "retry_topics", T_STR, OFF(retry_topics), 0, 0, KF_OPTIONAL | KF_COMMAS, NULL},
    {SEC_WORKER, "retry_topic_names", T_STR, OFF(retry_topic_names), 0, 0, KF_OPTIONAL | KF_COMMAS,
     NULL},
    {SEC_WORKER, "retry_max_attempts", T_U32, OFF(policy.retry_max_attempts), 1, 100, 0, "3"},
    {SEC_WORKER, "retry_initial_backoff_ms", T_U32, OFF(policy.retry_initial_ms), 0, 3600000, 0,
     "200"},
    {SEC_WORKER, "retry_max_backoff_ms", T_U32, OFF(policy.retry_max_ms), 0, 3600000, 0, "5000"},
    {SEC_WORKER, "max_event_bytes", T_SIZE, OFF(limits.max_event_bytes), 1024, 104857600, 0,
     "983040"},
    {SEC_WORKER, "max_field_bytes", T_SIZE, OFF(limits.max_field_bytes), 64, 104857600, 0,
     "262144"},
    {SEC_WORKER, "max_error_bytes", T_SIZE, OFF(max_error_bytes), 64, HOOKD_ERROR_MAX, 0, "1024"},
    {SEC_WORKER, "trust_event_flags", T_BOOL, OFF(trust_event_flags), 0, 0, 0, "false"},
    {SEC_WORKER, "dead_letter_max_value_bytes", T_SIZE, OFF(dead_letter_max_value_bytes), 0,
     104857600, 0, "0"},
    {SEC_WORKER, "isolation", T_ISOLATION, OFF(isolation), 0, 0, 0, "none"},
    {SEC_WORKER, "hook_timeout_ms", T_INT, OFF(hook_timeout_ms), 1, 86400000, 0, "20000"},
    {SEC_WORKER, "hook_rlimit_as_mb", T_LONG, OFF(hook_rlimit_as_mb), 16, 1048576, 0, "512"},
    {SEC_WORKER, "hook_rlimit_cpu_s", T_LONG, OFF(hook_rlimit_cpu_s), 1, 86400, 0, "60"},
    {SEC_WORKER, "hook_rlimit_nofile", T_LONG, OFF(hook_rlimit_nofile), 8, 1048576, 0, "64"},

    /* [http] */
    {SEC_HTTP, "listen", T_STR, OFF(http_listen), 0, 0, KF_OPTIONAL | KF_LISTEN, NULL},

    /* [log] */
    {SEC_LOG, "level", T_LEVEL, OFF(log_level), 0, 0, 0, "info"},
    {SEC_LOG, "format", T_LOGFMT, OFF(log_format), 0, 0, 0, "json"},

    /* [auth] */
    {SEC_AUTH, "require", T_BOOL, OFF(auth_require), 0, 0, 0, "false"},
    {SEC_AUTH, "sign_results", T_BOOL, OFF(auth_sign_results), 0, 0, 0, "false"},
    {SEC_AUTH, "keys", T_STR, OFF(auth_keys), 0, 0, KF_OPTIONAL, NULL},
    {SEC_AUTH, "signing_key_id", T_STR, OFF(auth_signing_key_id), 0, 0, KF_OPTIONAL, NULL},
    {SEC_AUTH, "verify_csr", T_BOOL, OFF(verify_csr), 0, 0, 0, "false"},
};

#define CFG_KEY_COUNT (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* The two spellings of each phase's flag, for the conflict check. */
static const char *const flag_allow[HOOKD_PHASE_COUNT] = {"allow_pre_hook_failure",
                                                          "allow_success_hook_failure",
                                                          "allow_post_hook_failure"};
static const char *const flag_ignore[HOOKD_PHASE_COUNT] = {"ignore_pre_hook_failure",
                                                           "ignore_success_hook_failure",
                                                           "ignore_post_hook_failure"};

/* The librdkafka pass-through lists of [kafka], longest prefix first. */
typedef struct rk_prefix {
    const char *prefix;
    size_t offset; /* of the hookd_kv_list_t */
} rk_prefix_t;

static const rk_prefix_t rk_prefixes[] = {
    {"consumer.rdkafka.", OFF(rdkafka_consumer)},
    {"producer.rdkafka.", OFF(rdkafka_producer)},
    {"rdkafka.", OFF(rdkafka)},
};

/*
 * librdkafka properties that have a [kafka] key of their own, or on which
 * the delivery guarantee rests: setting them through the pass-through would
 * either be ambiguous or silently overridden by the worker.
 */
static const struct {
    const char *prop;
    const char *why;
} rk_reserved[] = {
    {"bootstrap.servers", "set [kafka] bootstrap_servers instead"},
    {"metadata.broker.list", "set [kafka] bootstrap_servers instead"},
    {"group.id", "set [kafka] group_id instead"},
    {"enable.auto.offset.store", "offsets are stored by the worker only (at-least-once)"},
    {"enable.idempotence", "the worker's producer is always idempotent"},
};

/* ---- error collection -------------------------------------------------- */

/*
 * Every problem is one line of errstr. When the buffer is too small the
 * lines that do not fit are counted and a last line says how many were
 * left out; room for that line is reserved from the start.
 */
#define ERR_RESERVE 48

typedef struct errbuf {
    char *buf;
    size_t size;
    size_t len;
    unsigned count;
    unsigned dropped;
} errbuf_t;

static void err_init(errbuf_t *e, char *buf, size_t size)
{
    memset(e, 0, sizeof(*e));
    e->buf = buf;
    e->size = buf != NULL ? size : 0;
    if (e->size > 0)
        e->buf[0] = '\0';
}

static void err_add(errbuf_t *e, const char *fmt, ...) HOOKD_PRINTF(2, 3);
static void err_add(errbuf_t *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    size_t n, need, limit;
    char *p;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* one problem, one line: a value with a newline must not split it */
    for (p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    e->count++;
    if (e->size == 0)
        return;
    if (e->dropped > 0) {
        /* keep the order: once a line is left out, so are the later ones */
        e->dropped++;
        return;
    }
    n = strlen(line);
    need = n + (e->len > 0 ? 1 : 0);
    limit = e->size > 4 * ERR_RESERVE ? e->size - ERR_RESERVE : e->size;
    if (e->len + need + 1 > limit) {
        if (e->len == 0) {
            /* not even one line fits: keep what does */
            snprintf(e->buf, e->size, "%s", line);
            e->len = strlen(e->buf);
        } else {
            e->dropped++;
        }
        return;
    }
    if (e->len > 0)
        e->buf[e->len++] = '\n';
    memcpy(e->buf + e->len, line, n + 1);
    e->len += n;
}

static void err_finish(errbuf_t *e)
{
    if (e->dropped > 0 && e->size > e->len + 1)
        snprintf(e->buf + e->len, e->size - e->len, "\n... and %u more error(s)", e->dropped);
}

/* ---- small helpers ----------------------------------------------------- */

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

static const char *skip_space(const char *s)
{
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    return s;
}

/*
 * acme2certifier's own sections: acme-hookd reads its acme_srv.cfg as it is
 * (the [Hooks] section is shared), so these are skipped, not refused. A
 * CA handler may also have a section of any name; see foreign_section().
 */
static const char *const a2c_sections[] = {
    "DEFAULT",   "Account",   "Authorization", "CAhandler", "Certificate",  "Challenge",
    "DBhandler", "Directory", "EABhandler",    "Helper",    "Housekeeping", "Message",
    "Nonce",     "Order",     "Renewalinfo",   "Trigger",   "Logging",      "Profiles",
};

/* Levenshtein distance of two short names, ignoring case; capped at 9. */
static int name_distance(const char *a, size_t la, const char *b, size_t lb)
{
    int row[65], i, j;
    if (la > 64 || lb > 64)
        return 9;
    for (j = 0; j <= (int)lb; j++)
        row[j] = j;
    for (i = 1; i <= (int)la; i++) {
        int diag = row[0], up;
        row[0] = i;
        for (j = 1; j <= (int)lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            up = row[j];
            row[j] = diag + cost;
            if (up + 1 < row[j])
                row[j] = up + 1;
            if (row[j - 1] + 1 < row[j])
                row[j] = row[j - 1] + 1;
            diag = up;
        }
    }
    return row[lb] > 9 ? 9 : row[lb];
}

/*
 * A section that is not ours: NULL when it is someone else's (skipped), or
 * the name of ours it is a likely typo of (refused: a misspelt [wroker]
 * must not silently drop the settings under it).
 */
static const char *foreign_section(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof(a2c_sections) / sizeof(a2c_sections[0]); i++)
        if (strlen(a2c_sections[i]) == len && strncasecmp(a2c_sections[i], name, len) == 0)
            return NULL;
    for (i = 0; i < SEC_COUNT; i++) {
        size_t l = strlen(section_names[i]);
        int d = name_distance(name, len, section_names[i], l);
        /* one edit in a short name, two in a longer one */
        if (d <= (l <= 4 ? 1 : 2))
            return section_names[i];
    }
    return NULL;
}

static int section_lookup(const char *name, size_t len)
{
    int i;
    for (i = 0; i < SEC_COUNT; i++)
        if (strlen(section_names[i]) == len && strncasecmp(section_names[i], name, len) == 0)
            return i;
    return SEC_UNKNOWN;
}

static const cfg_key_t *key_lookup(cfg_section_t sec, const char *name)
{
    size_t i;
    for (i = 0; i < CFG_KEY_COUNT; i++)
        if (cfg_keys[i].section == sec && strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/*
 * The environment variable naming a key: ACME_HOOKD_<SECTION>_<KEY>, the
 * key upper-cased with every '.' written as "__".
 */
static void env_name_of(cfg_section_t sec, const char *key, char *out, size_t out_size)
{
    size_t n = 0;
    const char *p;

#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 < out_size)                                                                      \
            out[n++] = (c);                                                                        \
    } while (0)
    for (p = ENV_PREFIX; *p != '\0'; p++)
        PUT(*p);
    for (p = section_names[sec]; *p != '\0'; p++)
        PUT((char)toupper((unsigned char)*p));
    PUT('_');
    for (p = key; *p != '\0'; p++) {
        if (*p == '.') {
            PUT('_');
            PUT('_');
        } else {
            PUT((char)toupper((unsigned char)*p));
        }
    }
#undef PUT
    if (out_size > 0)
        out[n] = '\0';
}

/* ---- raw entries -------------------------------------------------------- */

typedef struct entry {
    cfg_section_t section;
    char *key; /* lower case */
    char *value;
    int line;  /* 0: from the environment */
    char *env; /* the variable that set it, NULL when from the file */
    bool dead; /* overridden by the environment */
} entry_t;

typedef enum line_kind { LK_OTHER = 0, LK_KV, LK_CONT } line_kind_t;

typedef struct loader {
    const char *path;
    errbuf_t *err;
    bool oom;

    /* the file, read whole, and the reader's position in it */
    char *data;
    size_t len;
    size_t pos;
    int lineno;

    /* inih's state mirrored by our reader (see classify()) */
    cfg_section_t section;
    bool have_prev;   /* inih has a previous key to continue */
    line_kind_t kind; /* of the line just handed to inih */
    long last;        /* entry continued by an indented line, -1 if none */

    entry_t *entries;
    size_t count;

    hookd_kv_list_t ignored; /* what was skipped and why: handed to the config */
} loader_t;

static int kv_add(hookd_kv_list_t *l, const char *key, const char *value, int line);
static void kv_free(hookd_kv_list_t *l);

/* Record something read and deliberately skipped (logged at debug by the daemon). */
static void note_ignored(loader_t *ld, const char *what, const char *why)
{
    if (kv_add(&ld->ignored, what, why, ld->lineno) != 0)
        ld->oom = true;
}

static void where(const loader_t *ld, const entry_t *e, char *out, size_t out_size)
{
    if (e->env != NULL)
        snprintf(out, out_size, "environment %s", e->env);
    else
        snprintf(out, out_size, "%s:%d", ld->path != NULL ? ld->path : "(none)", e->line);
}

static entry_t *entry_add(loader_t *ld, cfg_section_t sec, const char *key, const char *value,
                          int line, const char *env)
{
    entry_t *grown, *e;

    grown = realloc(ld->entries, (ld->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        ld->oom = true;
        return NULL;
    }
    ld->entries = grown;
    e = &ld->entries[ld->count];
    memset(e, 0, sizeof(*e));
    e->section = sec;
    e->line = line;
    e->key = strdup(key);
    e->value = strdup(value);
    e->env = env != NULL ? strdup(env) : NULL;
    if (e->key == NULL || e->value == NULL || (env != NULL && e->env == NULL)) {
        free(e->key);
        free(e->value);
        free(e->env);
        ld->oom = true;
        return NULL;
    }
    lower(e->key);
    ld->count++;
    return e;
}

static entry_t *entry_find(loader_t *ld, cfg_section_t sec, const char *key, bool from_env)
{
    size_t i;
    for (i = 0; i < ld->count; i++) {
        entry_t *e = &ld->entries[i];
        if (!e->dead && e->section == sec && (e->env != NULL) == from_env &&
            strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static void loader_free(loader_t *ld)
{
    size_t i;
    /* values and the file's text may hold secrets: wipe before freeing */
    for (i = 0; i < ld->count; i++) {
        free(ld->entries[i].key);
        memset(ld->entries[i].value, 0, strlen(ld->entries[i].value));
        free(ld->entries[i].value);
        free(ld->entries[i].env);
    }
    free(ld->entries);
    kv_free(&ld->ignored);
    if (ld->data != NULL)
        memset(ld->data, 0, ld->len);
    free(ld->data);
}

/* ---- the file layer ------------------------------------------------------ */

/*
 * inih's find_chars_or_comment(): the first of `chars`, or an inline ';'
 * comment (a ';' after whitespace), whichever comes first.
 */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;
    while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
           !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s) != 0;
        s++;
    }
    return s;
}

/*
 * Decide what inih will make of `line` (already free of its newline) and
 * report what it would only count: malformed lines, unknown sections. The
 * rules are inih's, in its order; Python's ConfigParser agrees with them.
 */
static void classify(loader_t *ld, const char *line)
{
    const char *s = line, *end;

    ld->kind = LK_OTHER;
    if (ld->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 BOM */
    s = skip_space(s);
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (ld->have_prev && s > line) {
        ld->kind = LK_CONT;
        return;
    }
    if (*s == '[') {
        end = find_chars_or_comment(s + 1, "]");
        if (*end != ']') {
            err_add(ld->err, "%s:%d: section header without closing ']'", ld->path, ld->lineno);
            return;
        }
        {
            const char *name = skip_space(s + 1), *name_end = end;
            while (name_end > name && isspace((unsigned char)name_end[-1]))
                name_end--;
            size_t nlen = (size_t)(name_end - name);
            ld->section = (cfg_section_t)section_lookup(name, nlen);
            if (ld->section == SEC_UNKNOWN) {
                const char *like = foreign_section(name, nlen);
                if (like != NULL) {
                    err_add(ld->err,
                            "%s:%d: unknown section [%.*s] (did you mean [%s]? sections: "
                            "[Hooks] [kafka] [worker] [http] [log] [auth])",
                            ld->path, ld->lineno, (int)(nlen > 64 ? 64 : nlen), name, like);
                } else {
                    char label[80];
                    snprintf(label, sizeof(label), "[%.*s]", (int)(nlen > 64 ? 64 : nlen), name);
                    note_ignored(
                        ld, label,
                        "not a section of acme-hookd (acme2certifier's, or another program's)");
                }
            }
        }
        ld->have_prev = false;
        ld->last = -1;
        return;
    }
    end = find_chars_or_comment(s, "=:");
    if (*end != '=' && *end != ':') {
        err_add(ld->err, "%s:%d: expected 'key = value', 'key: value' or '[section]'", ld->path,
                ld->lineno);
        return;
    }
    ld->kind = LK_KV;
    ld->have_prev = true;
    ld->last = -1;
}

/* inih's reader callback: the next line of the file, or NULL at its end. */
static char *read_line(char *str, int num, void *stream)
{
    loader_t *ld = stream;
    const char *start, *nl;
    size_t linelen, content;

    if (ld->pos >= ld->len)
        return NULL;
    start = ld->data + ld->pos;
    nl = memchr(start, '\n', ld->len - ld->pos);
    linelen = nl != NULL ? (size_t)(nl - start) : ld->len - ld->pos;
    ld->pos += linelen + (nl != NULL ? 1 : 0);
    ld->lineno++;
    content = linelen;
    if (content > 0 && start[content - 1] == '\r')
        content--;

    /* Anything we refuse reaches inih as an empty line, which it ignores. */
    ld->kind = LK_OTHER;
    if (num < 3)
        return NULL;
    if (memchr(start, '\0', content) != NULL) {
        err_add(ld->err, "%s:%d: NUL byte in line", ld->path, ld->lineno);
        str[0] = '\0';
        return str;
    }
    if (content + 2 > (size_t)num) {
        /* inih would cut it and parse the rest as another line */
        err_add(ld->err,
                "%s:%d: line too long (%zu characters, at most %d): continue the value on "
                "indented lines",
                ld->path, ld->lineno, content, num - 2);
        ld->last = -1;
        str[0] = '\0';
        return str;
    }
    memcpy(str, start, content);
    str[content] = '\0';
    classify(ld, str);
    str[content] = '\n';
    str[content + 1] = '\0';
    return str;
}

static bool key_name_valid(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k != '\0'; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.' && *k != '-')
            return false;
    return true;
}

/* inih's handler: one key (or one continuation line) of the current section. */
static int on_value(void *user, const char *section, const char *name, const char *value)
{
    loader_t *ld = user;
    char key[256];
    entry_t *e;

    (void)section; /* ld->section is ours, resolved case-insensitively */
    if (ld->oom)
        return 1;
    if (ld->kind == LK_CONT) {
        /* ConfigParser joins continuation lines with newlines */
        char *joined;
        size_t a, b;
        if (ld->last < 0)
            return 1;
        e = &ld->entries[ld->last];
        a = strlen(e->value);
        b = strlen(value);
        joined = realloc(e->value, a + b + 2);
        if (joined == NULL) {
            ld->oom = true;
            return 1;
        }
        joined[a] = '\n';
        memcpy(joined + a + 1, value, b + 1);
        e->value = joined;
        return 1;
    }
    if (ld->kind != LK_KV)
        return 1; /* a line we already refused */
    ld->last = -1;
    if (ld->section == SEC_UNKNOWN)
        return 1; /* reported once, at the section header */
    snprintf(key, sizeof(key), "%s", name);
    lower(key);
    if (ld->section == SEC_NONE) {
        err_add(ld->err, "%s:%d: key '%.64s' is outside of any [section]", ld->path, ld->lineno,
                key);
        return 1;
    }
    if (!key_name_valid(key)) {
        err_add(ld->err, "%s:%d: [%s] invalid key name '%.64s' (letters, digits, '_', '.', '-')",
                ld->path, ld->lineno, section_names[ld->section], key);
        return 1;
    }
    e = entry_find(ld, ld->section, key, false);
    if (e != NULL) {
        err_add(ld->err, "%s:%d: [%s] duplicate key '%s' (first set on line %d)", ld->path,
                ld->lineno, section_names[ld->section], key, e->line);
        return 1;
    }
    if (entry_add(ld, ld->section, key, value, ld->lineno, NULL) != NULL)
        ld->last = (long)ld->count - 1;
    return 1;
}

static int read_file(loader_t *ld)
{
    FILE *f = fopen(ld->path, "rb");
    size_t cap = 0;

    if (f == NULL) {
        err_add(ld->err, "%s: cannot open: %s", ld->path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;
        if (ld->len == cap) {
            char *grown;
            if (cap >= CONFIG_FILE_MAX) {
                err_add(ld->err, "%s: file too large (more than %u bytes)", ld->path,
                        CONFIG_FILE_MAX);
                fclose(f);
                return -1;
            }
            cap = cap != 0 ? cap * 2 : 8192;
            grown = realloc(ld->data, cap + 1);
            if (grown == NULL) {
                ld->oom = true;
                fclose(f);
                return -1;
            }
            ld->data = grown;
        }
        got = fread(ld->data + ld->len, 1, cap - ld->len, f);
        ld->len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        err_add(ld->err, "%s: cannot read: %s", ld->path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    if (ld->data == NULL) {
        ld->data = strdup("");
        if (ld->data == NULL) {
            ld->oom = true;
            return -1;
        }
    }
    ld->data[ld->len] = '\0';
    return 0;
}

static void parse_file(loader_t *ld)
{
    int rc;

    if (read_file(ld) != 0)
        return;
    ld->section = SEC_NONE;
    ld->last = -1;
    rc = ini_parse_stream(read_line, ld, on_value, ld);
    if (rc == -2)
        ld->oom = true;
    /* rc > 0 (first bad line) was reported line by line by classify() */
}

/* ---- the environment layer ---------------------------------------------- */

/* Read a *__FILE secret: the whole file, trailing newlines dropped. */
static char *read_secret_file(const char *var, const char *path, errbuf_t *err)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        err_add(err, "environment %s: cannot open %s: %s", var, path, strerror(errno));
        return NULL;
    }
    buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        err_add(err, "environment %s: out of memory", var);
        return NULL;
    }
    n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    if (ferror(f) || n > SECRET_FILE_MAX) {
        err_add(err, "environment %s: cannot read %s: %s", var, path,
                ferror(f) ? strerror(errno) : "larger than 64 KiB");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        err_add(err, "environment %s: %s holds a NUL byte", var, path);
        free(buf);
        return NULL;
    }
    return buf;
}

/*
 * ACME_HOOKD_<SECTION>_<KEY>[__FILE]=VALUE. The section is one word; in the
 * key "__" stands for '.', everything else is lower-cased. With the __FILE
 * suffix the value names a file holding the value (Kubernetes/Docker
 * secrets). An override of either spelling of a phase's flag replaces both
 * spellings from the file.
 */
static void apply_env_var(loader_t *ld, const char *var)
{
    const char *eq = strchr(var, '='), *rest, *us;
    char name[256], key[256];
    char *fromfile = NULL, *trimmed = NULL;
    const char *value;
    size_t name_len, klen, i, k, vlen;
    int sec;
    entry_t *e;
    int ph;

    if (eq == NULL)
        return;
    name_len = (size_t)(eq - var);
    if (name_len >= sizeof(name)) {
        err_add(ld->err, "environment %.64s...: name too long", var);
        return;
    }
    memcpy(name, var, name_len);
    name[name_len] = '\0';
    /* trimmed like a value from the file (inih trims those) */
    value = skip_space(eq + 1);
    vlen = strlen(value);
    while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
        vlen--;
    trimmed = xstrndup(value, vlen);
    if (trimmed == NULL) {
        ld->oom = true;
        return;
    }
    value = trimmed;

    rest = name + strlen(ENV_PREFIX);
    us = strchr(rest, '_');
    sec = us != NULL ? section_lookup(rest, (size_t)(us - rest)) : SEC_UNKNOWN;
    if (sec < 0) {
        err_add(ld->err,
                "environment %s: unknown section (expected ACME_HOOKD_<SECTION>_<KEY> with "
                "SECTION one of HOOKS, KAFKA, WORKER, HTTP, LOG, AUTH)",
                name);
        goto out;
    }
    rest = us + 1;
    klen = strlen(rest);
    if (klen > strlen(ENV_FILE_SUFFIX) &&
        strcmp(rest + klen - strlen(ENV_FILE_SUFFIX), ENV_FILE_SUFFIX) == 0) {
        klen -= strlen(ENV_FILE_SUFFIX);
        fromfile = read_secret_file(name, value, ld->err);
        if (fromfile == NULL)
            goto out;
        value = fromfile;
    }
    for (i = 0, k = 0; i < klen && k + 1 < sizeof(key); i++) {
        if (rest[i] == '_' && i + 1 < klen && rest[i + 1] == '_') {
            key[k++] = '.';
            i++;
        } else {
            key[k++] = (char)tolower((unsigned char)rest[i]);
        }
    }
    key[k] = '\0';
    if (!key_name_valid(key)) {
        err_add(ld->err, "environment %s: [%s] invalid key name '%s'", name, section_names[sec],
                key);
        goto out;
    }
    e = entry_find(ld, (cfg_section_t)sec, key, true);
    if (e != NULL) {
        err_add(ld->err, "environment %s: [%s] key '%s' is also set by %s", name,
                section_names[sec], key, e->env);
        goto out;
    }
    e = entry_find(ld, (cfg_section_t)sec, key, false);
    if (e != NULL)
        e->dead = true;
    if (sec == SEC_HOOKS)
        for (ph = 0; ph < HOOKD_PHASE_COUNT; ph++)
            if (strcmp(key, flag_allow[ph]) == 0 || strcmp(key, flag_ignore[ph]) == 0) {
                if ((e = entry_find(ld, SEC_HOOKS, flag_allow[ph], false)) != NULL)
                    e->dead = true;
                if ((e = entry_find(ld, SEC_HOOKS, flag_ignore[ph], false)) != NULL)
                    e->dead = true;
            }
    entry_add(ld, (cfg_section_t)sec, key, value, 0, name);
out:
    if (trimmed != NULL) {
        memset(trimmed, 0, strlen(trimmed));
        free(trimmed);
    }
    if (fromfile != NULL) {
        /* it may be a secret: do not leave it in freed memory */
        memset(fromfile, 0, strlen(fromfile));
        free(fromfile);
    }
}

static void parse_env(loader_t *ld, char *const *envp)
{
    size_t plen = strlen(ENV_PREFIX);
    for (; *envp != NULL; envp++)
        if (strncmp(*envp, ENV_PREFIX, plen) == 0)
            apply_env_var(ld, *envp);
}

/* ---- typed values --------------------------------------------------------- */

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;
    for (i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_integer(const char *v, long long *out)
{
    char *end;
    long long n;
    if (*v == '\0' || isspace((unsigned char)*v))
        return -1;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* ADDR:PORT, :PORT or [IPV6]:PORT, port 0..65535 */
static bool listen_valid(const char *v)
{
    const char *colon = strrchr(v, ':'), *p;
    long long port;

    if (colon == NULL || parse_integer(colon + 1, &port) != 0 || port < 0 || port > 65535 ||
        colon[1] == '+' || colon[1] == '-')
        return false;
    if (v[0] == '[')
        return colon > v + 1 && colon[-1] == ']';
    for (p = v; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return false;
    return true;
}

/* "a, b\n c" -> "a,b,c" */
static char *normalise_commas(const char *v)
{
    char *out = malloc(strlen(v) + 1);
    size_t n = 0;
    bool sep = false;

    if (out == NULL)
        return NULL;
    for (; *v != '\0'; v++) {
        if (*v == ',' || isspace((unsigned char)*v)) {
            sep = n > 0;
            continue;
        }
        if (sep)
            out[n++] = ',';
        sep = false;
        out[n++] = *v;
    }
    out[n] = '\0';
    return out;
}

/* How a value is shown in a message: quoted, cut, never when secret. */
static void show(const char *key, const char *v, char *out, size_t out_size)
{
    size_t i, n;
    if (hookd_config_is_secret_key(key)) {
        snprintf(out, out_size, "the value (secret, not shown)");
        return;
    }
    snprintf(out, out_size, "'%.60s%s'", v, strlen(v) > 60 ? "..." : "");
    n = strlen(out);
    for (i = 0; i < n; i++)
        if (!isprint((unsigned char)out[i]))
            out[i] = '?';
}

/*
 * Store `v` into the field of `k`. Returns 0, or -1 with a reason (without
 * location) in `why`.
 */
static int set_value(hookd_config_t *cfg, const cfg_key_t *k, const char *v, char *why,
                     size_t why_size)
{
    char *field = (char *)cfg + k->offset;
    char shown[96];
    long long n;
    bool b;
    int lv;

    show(k->name, v, shown, sizeof(shown));
    switch (k->type) {
    case T_STR: {
        char **dst = (char **)(void *)field;
        char *copy;
        const char *t = skip_space(v);
        if (*t == '\0' && (k->flags & KF_NONEMPTY)) {
            snprintf(why, why_size, "must not be empty");
            return -1;
        }
        if ((k->flags & KF_LISTEN) && *t != '\0' && !listen_valid(t)) {
            snprintf(why, why_size, "%s is not ADDR:PORT, :PORT or [ADDR6]:PORT (port 0-65535)",
                     shown);
            return -1;
        }
        if (*t == '\0' && (k->flags & KF_OPTIONAL))
            copy = NULL;
        else if (k->flags & KF_COMMAS)
            copy = normalise_commas(v);
        else
            copy = strdup(v);
        if (copy == NULL && !(*t == '\0' && (k->flags & KF_OPTIONAL))) {
            snprintf(why, why_size, "out of memory");
            return -1;
        }
        free(*dst);
        *dst = copy;
        return 0;
    }
    case T_INT:
    case T_LONG:
    case T_SIZE:
    case T_U32:
        if (parse_integer(v, &n) != 0) {
            snprintf(why, why_size, "%s is not an integer", shown);
            return -1;
        }
        if (n < k->min || n > k->max) {
            snprintf(why, why_size, "%lld is out of range (%lld to %lld)", n, k->min, k->max);
            return -1;
        }
        if (k->type == T_INT)
            *(int *)(void *)field = (int)n;
        else if (k->type == T_LONG)
            *(long *)(void *)field = (long)n;
        else if (k->type == T_SIZE)
            *(size_t *)(void *)field = (size_t)n;
        else
            *(uint32_t *)(void *)field = (uint32_t)n;
        return 0;
    case T_BOOL:
        if (parse_bool(v, &b) != 0) {
            snprintf(why, why_size, "%s is not a boolean (true/false, yes/no, on/off, 1/0)", shown);
            return -1;
        }
        *(bool *)(void *)field = b;
        return 0;
    case T_LEVEL:
        lv = hookd_log_level_parse(v);
        if (lv < 0) {
            snprintf(why, why_size, "%s is not one of error, warning, info, debug", shown);
            return -1;
        }
        *(int *)(void *)field = lv;
        return 0;
    case T_LOGFMT:
        if (strcasecmp(v, "json") == 0)
            *(hookd_log_format_t *)(void *)field = HOOKD_LOGFMT_JSON;
        else if (strcasecmp(v, "text") == 0)
            *(hookd_log_format_t *)(void *)field = HOOKD_LOGFMT_TEXT;
        else {
            snprintf(why, why_size, "%s is not one of json, text", shown);
            return -1;
        }
        return 0;
    case T_ISOLATION:
        if (strcasecmp(v, "none") == 0)
            *(hookd_isolation_t *)(void *)field = HOOKD_ISOLATION_NONE;
        else if (strcasecmp(v, "process") == 0)
            *(hookd_isolation_t *)(void *)field = HOOKD_ISOLATION_PROCESS;
        else {
            snprintf(why, why_size, "%s is not one of none, process", shown);
            return -1;
        }
        return 0;
    case T_ORDERING:
        if (strcasecmp(v, "key") == 0)
            *(hookd_ordering_t *)(void *)field = HOOKD_ORDERING_KEY;
        else if (strcasecmp(v, "partition") == 0)
            *(hookd_ordering_t *)(void *)field = HOOKD_ORDERING_PARTITION;
        else {
            snprintf(why, why_size, "%s is not one of key, partition", shown);
            return -1;
        }
        return 0;
    case T_DELIVERY:
        if (strcasecmp(v, "at_least_once") == 0)
            *(hookd_delivery_t *)(void *)field = HOOKD_DELIVERY_AT_LEAST_ONCE;
        else if (strcasecmp(v, "exactly_once") == 0)
            *(hookd_delivery_t *)(void *)field = HOOKD_DELIVERY_EXACTLY_ONCE;
        else {
            snprintf(why, why_size, "%s is not one of at_least_once, exactly_once", shown);
            return -1;
        }
        return 0;
    }
    snprintf(why, why_size, "internal error: unknown type");
    return -1;
}

static int kv_add(hookd_kv_list_t *l, const char *key, const char *value, int line)
{
    hookd_kv_t *grown = realloc(l->items, (l->count + 1) * sizeof(*grown));
    hookd_kv_t *kv;
    if (grown == NULL)
        return -1;
    l->items = grown;
    kv = &l->items[l->count];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = line;
    if (kv->key == NULL || kv->value == NULL) {
        free(kv->key);
        free(kv->value);
        return -1;
    }
    l->count++;
    return 0;
}

static void kv_free(hookd_kv_list_t *l)
{
    size_t i;
    for (i = 0; i < l->count; i++) {
        free(l->items[i].key);
        if (l->items[i].value != NULL) {
            memset(l->items[i].value, 0, strlen(l->items[i].value));
            free(l->items[i].value);
        }
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* ---- applying the entries ------------------------------------------------- */

static void apply_defaults(hookd_config_t *cfg, errbuf_t *err)
{
    char why[256], host[128];
    size_t i;

    for (i = 0; i < CFG_KEY_COUNT; i++)
        if (cfg_keys[i].dflt != NULL &&
            set_value(cfg, &cfg_keys[i], cfg_keys[i].dflt, why, sizeof(why)) != 0)
            err_add(err, "default of [%s] %s: %s", section_names[cfg_keys[i].section],
                    cfg_keys[i].name, why);

    /* worker_id: unique per process in a fleet, stable enough to read in logs */
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "acme-hookd");
    host[sizeof(host) - 1] = '\0';
    {
        char id[160];
        snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
        cfg->worker_id = strdup(id);
        if (cfg->worker_id == NULL)
            err_add(err, "out of memory");
    }
}

/* Both spellings of a phase's flag, given with different values, are an error. */
static void check_flag_conflicts(loader_t *ld)
{
    int ph;
    for (ph = 0; ph < HOOKD_PHASE_COUNT; ph++) {
        entry_t *a = entry_find(ld, SEC_HOOKS, flag_allow[ph], false);
        entry_t *ig = entry_find(ld, SEC_HOOKS, flag_ignore[ph], false);
        bool va, vi;
        char wa[300], wi[300];
        if (a == NULL)
            a = entry_find(ld, SEC_HOOKS, flag_allow[ph], true);
        if (ig == NULL)
            ig = entry_find(ld, SEC_HOOKS, flag_ignore[ph], true);
        if (a == NULL || ig == NULL || parse_bool(a->value, &va) != 0 ||
            parse_bool(ig->value, &vi) != 0 || va == vi)
            continue;
        where(ld, a, wa, sizeof(wa));
        where(ld, ig, wi, sizeof(wi));
        err_add(ld->err,
                "%s: [Hooks] '%s' = %s conflicts with '%s' = %s (%s): both spell the same flag, "
                "set only one",
                wa, flag_allow[ph], va ? "true" : "false", flag_ignore[ph], vi ? "true" : "false",
                wi);
        /* keep the messages to one per conflict */
        a->dead = true;
        ig->dead = true;
    }
}

static void apply_rdkafka(loader_t *ld, hookd_config_t *cfg, rd_kafka_conf_t *scratch,
                          const entry_t *e, const rk_prefix_t *pfx, const char *loc)
{
    const char *prop = e->key + strlen(pfx->prefix);
    hookd_kv_list_t *list = (hookd_kv_list_t *)(void *)((char *)cfg + pfx->offset);
    char why[512];
    size_t i;

    if (*prop == '\0') {
        err_add(ld->err, "%s: [kafka] key '%s' names no librdkafka property", loc, e->key);
        return;
    }
    for (i = 0; i < sizeof(rk_reserved) / sizeof(rk_reserved[0]); i++)
        if (strcmp(prop, rk_reserved[i].prop) == 0) {
            err_add(ld->err, "%s: [kafka] key '%s' is not allowed: %s", loc, e->key,
                    rk_reserved[i].why);
            return;
        }
    /* librdkafka knows its properties best: ask it now, not at startup */
    if (scratch != NULL) {
        rd_kafka_conf_res_t res = rd_kafka_conf_set(scratch, prop, e->value, why, sizeof(why));
        if (res != RD_KAFKA_CONF_OK) {
            if (res == RD_KAFKA_CONF_UNKNOWN)
                err_add(ld->err, "%s: [kafka] key '%s': unknown librdkafka property '%s'", loc,
                        e->key, prop);
            else if (hookd_config_is_secret_key(prop))
                err_add(ld->err, "%s: [kafka] key '%s': invalid value (secret, not shown)", loc,
                        e->key);
            else
                err_add(ld->err, "%s: [kafka] key '%s': %s", loc, e->key, why);
            return;
        }
    }
    if (kv_add(list, prop, e->value, e->line) != 0)
        ld->oom = true;
}

static void apply_entries(loader_t *ld, hookd_config_t *cfg)
{
    rd_kafka_conf_t *scratch = NULL;
    size_t i, p;

    for (i = 0; i < ld->count; i++) {
        const entry_t *e = &ld->entries[i];
        const cfg_key_t *k;
        char loc[320], why[512];

        if (e->dead)
            continue;
        where(ld, e, loc, sizeof(loc));
        k = key_lookup(e->section, e->key);
        if (k != NULL) {
            if (set_value(cfg, k, e->value, why, sizeof(why)) != 0)
                err_add(ld->err, "%s: [%s] key '%s': %s", loc, section_names[e->section], e->key,
                        why);
            continue;
        }
        if (e->section == SEC_HOOKS && strncmp(e->key, "hookd_", 6) == 0) {
            /* The acme2certifier bridge's own keys (hookd_bootstrap_servers,
             * ...) share the file; the worker does not use them. */
            char what[300];
            snprintf(what, sizeof(what), "[Hooks] %s", e->key);
            if (kv_add(&ld->ignored, what, "a setting of the acme2certifier bridge", e->line) != 0)
                ld->oom = true;
            continue;
        }
        if (e->section == SEC_HOOKS) {
            /* a handler's key: checked against the loaded handlers later */
            if (kv_add(&cfg->hook_keys, e->key, e->value, e->line) != 0)
                ld->oom = true;
            continue;
        }
        if (e->section == SEC_KAFKA) {
            for (p = 0; p < sizeof(rk_prefixes) / sizeof(rk_prefixes[0]); p++)
                if (strncmp(e->key, rk_prefixes[p].prefix, strlen(rk_prefixes[p].prefix)) == 0)
                    break;
            if (p < sizeof(rk_prefixes) / sizeof(rk_prefixes[0])) {
                if (scratch == NULL)
                    scratch = rd_kafka_conf_new();
                apply_rdkafka(ld, cfg, scratch, e, &rk_prefixes[p], loc);
                continue;
            }
        }
        err_add(ld->err, "%s: [%s] unknown key '%s'", loc, section_names[e->section], e->key);
    }
    if (scratch != NULL)
        rd_kafka_conf_destroy(scratch);
}

/* Does a hooks_module / hooks_file value name the acme2certifier bridge? */
static bool names_bridge(const char *v)
{
    const char *base;
    size_t n;
    if (v == NULL)
        return false;
    if (strcmp(v, "acme_hookd_a2c") == 0)
        return true;
    base = strrchr(v, '/');
    base = base != NULL ? base + 1 : v;
    n = strlen(base);
    return strcmp(base, "acme_hookd_a2c.py") == 0 ||
           (strcmp(base, "__init__.py") == 0 && n < strlen(v) &&
            strstr(v, "acme_hookd_a2c/__init__.py") != NULL);
}

/*
 * The worker's chain. In a file of its own that is hooks_file (or
 * hooks_module, acme2certifier 0.46's spelling, which wins when both are set,
 * as it does there). In an acme_srv.cfg shared with acme2certifier,
 * hooks_module names the bridge that sends the events here, so the worker's
 * handlers are listed in hookd_handlers, which acme2certifier ignores.
 */
static void resolve_chain(loader_t *ld, hookd_config_t *cfg)
{
    const char *src = ld->path != NULL ? ld->path : "configuration";
    const char *chosen = NULL;
    char *copy;

    if (cfg->hookd_handlers != NULL)
        chosen = cfg->hookd_handlers;
    else if (cfg->hooks_module != NULL)
        chosen = cfg->hooks_module;
    else
        chosen = cfg->hooks_file;
    if (cfg->hookd_handlers == NULL && names_bridge(chosen)) {
        err_add(ld->err,
                "%s: [Hooks] %s = %s is acme2certifier's bridge to acme-hookd, not a handler of "
                "the worker: list the worker's handlers in [Hooks] hookd_handlers",
                src, cfg->hooks_module != NULL ? "hooks_module" : "hooks_file", chosen);
        return;
    }
    if (chosen == cfg->hooks_file)
        return;
    if ((copy = strdup(chosen)) == NULL) {
        ld->oom = true;
        return;
    }
    free(cfg->hooks_file);
    cfg->hooks_file = copy;
}

/*
 * [worker] retry_topics / retry_topic_names: parsed into cfg->retry_tiers.
 * A tier topic must differ from every other topic the worker writes or
 * reads. Exactly-once is refused with tiers: a tier partition is paused
 * until its head record is due, and the transactional commit of the
 * pipelined flow has not been shown (on the real broker) to keep a tier
 * record and the input offset that it replaces in one transaction across
 * those pauses and its abort rewinds; until it is, the combination is an
 * error rather than a guess.
 */
static void tiers_check(loader_t *ld, hookd_config_t *cfg, const char *src)
{
    hookd_tiers_t *t;
    char why[512];
    size_t i;

    if (cfg->retry_topics == NULL) {
        if (cfg->retry_topic_names != NULL)
            err_add(ld->err, "%s: [worker] retry_topic_names is set without retry_topics", src);
        return;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        err_add(ld->err, "%s: out of memory", src);
        return;
    }
    if (hookd_tiers_parse(cfg->retry_topics, cfg->retry_topic_names, cfg->input_topic, t, why,
                          sizeof(why)) != 0) {
        err_add(ld->err, "%s: [worker] %s", src, why);
        free(t);
        return;
    }
    if (t->count == 0) {
        free(t);
        return;
    }
    for (i = 0; i < t->count; i++)
        if (strcmp(t->topics[i], cfg->result_topic) == 0 ||
            strcmp(t->topics[i], cfg->dead_letter_topic) == 0)
            err_add(ld->err, "%s: [worker] retry topic '%s' is the result or the dead-letter topic",
                    src, t->topics[i]);
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE)
        err_add(ld->err,
                "%s: [worker] retry_topics is not supported with [kafka] delivery = exactly_once "
                "(retried events would leave the transaction's all-or-nothing outcome); use "
                "in-line retries (retry_max_attempts) there",
                src);
    cfg->retry_tiers = t;
}

/* Rules between keys. */
static void cross_check(loader_t *ld, hookd_config_t *cfg)
{
    const char *src = ld->path != NULL ? ld->path : "configuration";

    if (cfg->limits.max_field_bytes > cfg->limits.max_event_bytes)
        err_add(ld->err, "%s: [worker] max_field_bytes (%zu) is larger than max_event_bytes (%zu)",
                src, cfg->limits.max_field_bytes, cfg->limits.max_event_bytes);
    if (cfg->policy.retry_max_ms < cfg->policy.retry_initial_ms)
        err_add(ld->err,
                "%s: [worker] retry_max_backoff_ms (%u) is smaller than retry_initial_backoff_ms "
                "(%u)",
                src, (unsigned)cfg->policy.retry_max_ms, (unsigned)cfg->policy.retry_initial_ms);
    /* a result or dead letter written to the input would be consumed again */
    if (strcmp(cfg->input_topic, cfg->result_topic) == 0)
        err_add(ld->err, "%s: [kafka] result_topic must differ from input_topic ('%s')", src,
                cfg->input_topic);
    if (strcmp(cfg->input_topic, cfg->dead_letter_topic) == 0)
        err_add(ld->err, "%s: [kafka] dead_letter_topic must differ from input_topic ('%s')", src,
                cfg->input_topic);
    if (cfg->auth_require && cfg->auth_keys == NULL)
        err_add(ld->err, "%s: [auth] require = true needs keys", src);
    if (cfg->auth_sign_results && (cfg->auth_keys == NULL || cfg->auth_signing_key_id == NULL))
        err_add(ld->err, "%s: [auth] sign_results = true needs keys and signing_key_id", src);
    /* The embedded mock cluster accepts the transactional calls but does
     * nothing with them (no transaction markers, offsets not committed
     * with the records): exactly-once could not be kept there. */
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE &&
        (cfg->bootstrap_servers == NULL || cfg->bootstrap_servers[0] == '\0'))
        err_add(ld->err,
                "%s: [kafka] delivery = exactly_once needs bootstrap_servers: the embedded "
                "mock cluster cannot keep transactions",
                src);
    tiers_check(ld, cfg, src);
}

hookd_config_t *hookd_config_load(const char *path, char *const *envp, char *errstr,
                                  size_t errstr_size)
{
    hookd_config_t *cfg;
    loader_t ld;
    errbuf_t err;

    err_init(&err, errstr, errstr_size);
    memset(&ld, 0, sizeof(ld));
    ld.err = &err;
    ld.path = path;
    ld.last = -1;

    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        err_add(&err, "out of memory");
        goto error;
    }
    apply_defaults(cfg, &err);
    if (path != NULL) {
        cfg->path = strdup(path);
        if (cfg->path == NULL)
            ld.oom = true;
        parse_file(&ld);
    }
    if (envp != NULL)
        parse_env(&ld, envp);
    if (!ld.oom) {
        check_flag_conflicts(&ld);
        apply_entries(&ld, cfg);
    }
    if (!ld.oom)
        resolve_chain(&ld, cfg);
    if (!ld.oom)
        cross_check(&ld, cfg);
    if (ld.oom)
        err_add(&err, "out of memory");
    if (err.count > 0)
        goto error;
    cfg->ignored = ld.ignored;
    memset(&ld.ignored, 0, sizeof(ld.ignored)); /* now owned by cfg */
    loader_free(&ld);
    return cfg;

error:
    err_finish(&err);
    loader_free(&ld);
    hookd_config_destroy(cfg);
    return NULL;
}

void hookd_config_destroy(hookd_config_t *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < CFG_KEY_COUNT; i++)
        if (cfg_keys[i].type == T_STR) {
            char **s = (char **)(void *)((char *)cfg + cfg_keys[i].offset);
            free(*s);
            *s = NULL;
        }
    if (cfg->retry_tiers != NULL) {
        hookd_tiers_clear(cfg->retry_tiers);
        free(cfg->retry_tiers);
    }
    kv_free(&cfg->hook_keys);
    kv_free(&cfg->ignored);
    kv_free(&cfg->rdkafka);
    kv_free(&cfg->rdkafka_consumer);
    kv_free(&cfg->rdkafka_producer);
    free(cfg->path);
    free(cfg);
}

int hookd_config_check_hook_keys(const hookd_config_t *cfg,
                                 bool (*declared)(const char *key, void *opaque), void *opaque,
                                 char *errstr, size_t errstr_size)
{
    errbuf_t err;
    size_t i;

    err_init(&err, errstr, errstr_size);
    for (i = 0; i < cfg->hook_keys.count; i++) {
        const hookd_kv_t *kv = &cfg->hook_keys.items[i];
        if (declared != NULL && declared(kv->key, opaque))
            continue;
        if (kv->line > 0) {
            err_add(&err, "%s:%d: [Hooks] unknown key '%s' (no loaded handler declares it)",
                    cfg->path != NULL ? cfg->path : "(none)", kv->line, kv->key);
        } else {
            char env[300];
            env_name_of(SEC_HOOKS, kv->key, env, sizeof(env));
            err_add(&err,
                    "environment %s: [Hooks] unknown key '%s' (no loaded handler declares it)", env,
                    kv->key);
        }
    }
    err_finish(&err);
    return err.count == 0 ? 0 : -1;
}

/* ---- dump ------------------------------------------------------------------ */

static void dump_value(FILE *out, const char *key, const char *v)
{
    const char *p;
    if (v == NULL || *v == '\0') {
        fputc('\n', out);
        return;
    }
    if (hookd_config_is_secret_key(key)) {
        fprintf(out, " %s\n", MASK);
        return;
    }
    /* continuation lines stay readable as INI */
    fputc(' ', out);
    for (p = v; *p != '\0'; p++) {
        fputc(*p, out);
        if (*p == '\n')
            fputs("    ", out);
    }
    fputc('\n', out);
}

static void dump_list(FILE *out, const char *prefix, const hookd_kv_list_t *l)
{
    size_t i;
    char key[300];
    for (i = 0; i < l->count; i++) {
        snprintf(key, sizeof(key), "%s%s", prefix, l->items[i].key);
        fprintf(out, "%s =", key);
        dump_value(out, key, l->items[i].value);
    }
}

void hookd_config_dump(const hookd_config_t *cfg, FILE *out)
{
    static const char *const levels[] = {"error", "warning", "info", "debug"};
    int sec;
    size_t i;

    fprintf(out, "# effective configuration of %s (secrets masked)\n",
            cfg->path != NULL ? cfg->path : "(defaults)");
    for (sec = 0; sec < SEC_COUNT; sec++) {
        fprintf(out, "\n[%s]\n", section_names[sec]);
        for (i = 0; i < CFG_KEY_COUNT; i++) {
            const cfg_key_t *k = &cfg_keys[i];
            const char *field = (const char *)cfg + k->offset;
            char num[64];
            const char *v = num;

            if (k->section != sec || (k->flags & KF_ALIAS))
                continue;
            switch (k->type) {
            case T_STR:
                v = *(char *const *)(const void *)field;
                break;
            case T_INT:
                snprintf(num, sizeof(num), "%d", *(const int *)(const void *)field);
                break;
            case T_LONG:
                snprintf(num, sizeof(num), "%ld", *(const long *)(const void *)field);
                break;
            case T_SIZE:
                snprintf(num, sizeof(num), "%zu", *(const size_t *)(const void *)field);
                break;
            case T_U32:
                snprintf(num, sizeof(num), "%u", (unsigned)*(const uint32_t *)(const void *)field);
                break;
            case T_BOOL:
                v = *(const bool *)(const void *)field ? "true" : "false";
                break;
            case T_LEVEL: {
                int lv = *(const int *)(const void *)field;
                v = lv >= 0 && lv < 4 ? levels[lv] : "?";
                break;
            }
            case T_LOGFMT:
                v = *(const hookd_log_format_t *)(const void *)field == HOOKD_LOGFMT_TEXT ? "text"
                                                                                          : "json";
                break;
            case T_ISOLATION:
                v = *(const hookd_isolation_t *)(const void *)field == HOOKD_ISOLATION_PROCESS
                        ? "process"
                        : "none";
                break;
            case T_ORDERING:
                v = *(const hookd_ordering_t *)(const void *)field == HOOKD_ORDERING_PARTITION
                        ? "partition"
                        : "key";
                break;
            case T_DELIVERY:
                v = *(const hookd_delivery_t *)(const void *)field == HOOKD_DELIVERY_EXACTLY_ONCE
                        ? "exactly_once"
                        : "at_least_once";
                break;
            }
            fprintf(out, "%s =", k->name);
            dump_value(out, k->name, v);
        }
        if (sec == SEC_HOOKS)
            dump_list(out, "", &cfg->hook_keys);
        if (sec == SEC_KAFKA) {
            dump_list(out, "rdkafka.", &cfg->rdkafka);
            dump_list(out, "consumer.rdkafka.", &cfg->rdkafka_consumer);
            dump_list(out, "producer.rdkafka.", &cfg->rdkafka_producer);
        }
    }
}

/* ---- secrets ------------------------------------------------------------------ */

/*
 * A key is secret when one of its words (split at '.', '_' and '-') says
 * so: password, secret, token, ...; or when a word is "key" (an API key,
 * ssl.key.pem, ssl.key.password) unless it is followed by "id" or "name"
 * (signing_key_id names a key, it is not one); or when it belongs to
 * sasl.oauthbearer (its config and client secret carry credentials). When
 * in doubt, mask: a masked path costs nothing, a leaked password a lot.
 */
bool hookd_config_is_secret_key(const char *key)
{
    static const char *const words[] = {"password",    "passwd",  "passphrase", "pass",
                                        "secret",      "secrets", "token",      "credential",
                                        "credentials", "private", "keytab",     "keys",
                                        "hmac",        "apikey",  "jaas",       NULL};
    char buf[256];
    char *tok, *save = NULL, *prev = NULL;
    size_t i;

    if (key == NULL)
        return false;
    snprintf(buf, sizeof(buf), "%s", key);
    lower(buf);
    if (strstr(buf, "sasl.oauthbearer") != NULL)
        return true;
    for (tok = strtok_r(buf, "._-", &save); tok != NULL; tok = strtok_r(NULL, "._-", &save)) {
        if (prev != NULL && strcmp(prev, "key") == 0 && strcmp(tok, "id") != 0 &&
            strcmp(tok, "name") != 0)
            return true;
        for (i = 0; words[i] != NULL; i++)
            if (strcmp(tok, words[i]) == 0)
                return true;
        prev = tok;
    }
    return prev != NULL && strcmp(prev, "key") == 0;
}
