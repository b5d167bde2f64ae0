/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading: defaults, both separators, booleans, both spellings
 * of the flags, librdkafka pass-through, environment overrides (always
 * through an explicit envp array, never the process environment), every
 * broken file of tests/config/broken (each states the message it must
 * produce in its `# expect:` lines), unknown keys, and secrets in the dump.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tiers.h"
#include "engine.h"

#define CONFIG_DIR HOOKD_SOURCE_DIR "/tests/config"
#define BROKEN_DIR CONFIG_DIR "/broken"
#define EXAMPLE HOOKD_SOURCE_DIR "/deploy/acme-hookd.ini"

static char errbuf[8192];
static char tmp_path[64];

/* Write `text` to a fresh temporary file; its path is in tmp_path. */
static const char *write_tmp(const char *text)
{
    int fd;
    FILE *f;

    snprintf(tmp_path, sizeof(tmp_path), "/tmp/hookd-test-config-XXXXXX");
    fd = mkstemp(tmp_path);
    cr_assert(fd >= 0, "mkstemp failed");
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    return tmp_path;
}

/* Load `text` as a config file (and `envp`); the temporary file is removed. */
static hookd_config_t *load_text(const char *text, char *const *envp)
{
    hookd_config_t *cfg;
    write_tmp(text);
    errbuf[0] = '\0';
    cfg = hookd_config_load(tmp_path, envp, errbuf, sizeof(errbuf));
    unlink(tmp_path);
    return cfg;
}

static hookd_config_t *must_load(const char *text, char *const *envp)
{
    hookd_config_t *cfg = load_text(text, envp);
    cr_assert_not_null(cfg, "load failed: %s", errbuf);
    return cfg;
}

static void must_fail(const char *text, char *const *envp, const char *fragment)
{
    hookd_config_t *cfg = load_text(text, envp);
    cr_assert_null(cfg, "load succeeded, expected an error with \"%s\"", fragment);
    cr_assert_not_null(strstr(errbuf, fragment), "error \"%s\" lacks \"%s\"", errbuf, fragment);
}

static const char *kv_get(const hookd_kv_list_t *l, const char *key)
{
    size_t i;
    for (i = 0; i < l->count; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

/* ---- defaults ------------------------------------------------------------ */

Test(config, defaults)
{
    hookd_policy_t p;
    char pid[32];
    hookd_config_t *cfg = hookd_config_load(NULL, NULL, errbuf, sizeof(errbuf));

    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_null(cfg->path);
    cr_assert_null(cfg->hooks_file);
    hookd_policy_defaults(&p);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], false);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], false);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], true);
    /* the config's defaults are the engine's defaults */
    cr_assert_eq(memcmp(cfg->policy.allow_failure, p.allow_failure, sizeof(p.allow_failure)), 0);
    cr_assert_eq(cfg->policy.retry_max_attempts, p.retry_max_attempts);
    cr_assert_eq(cfg->policy.retry_initial_ms, p.retry_initial_ms);
    cr_assert_eq(cfg->policy.retry_max_ms, p.retry_max_ms);
    cr_assert_eq(cfg->allow_unsafe_hooks_file, false);
    cr_assert_eq(cfg->hook_keys.count, 0);

    cr_assert_null(cfg->bootstrap_servers);
    cr_assert_str_eq(cfg->group_id, "acme-hookd");
    cr_assert_str_eq(cfg->input_topic, "acme.enrollment");
    cr_assert_str_eq(cfg->result_topic, "acme.enrollment.result");
    cr_assert_str_eq(cfg->dead_letter_topic, "acme.enrollment.dlq");
    cr_assert_eq(cfg->rdkafka.count + cfg->rdkafka_consumer.count + cfg->rdkafka_producer.count, 0);
    cr_assert_eq(cfg->delivery, HOOKD_DELIVERY_AT_LEAST_ONCE);
    cr_assert_eq(cfg->transaction_interval_ms, 100);
    cr_assert_eq(cfg->transaction_max_events, 10000);
    cr_assert_null(cfg->transactional_id);

    snprintf(pid, sizeof(pid), "-%ld", (long)getpid());
    cr_assert_not_null(cfg->worker_id);
    cr_assert(strlen(cfg->worker_id) > strlen(pid));
    cr_assert_str_eq(cfg->worker_id + strlen(cfg->worker_id) - strlen(pid), pid);
    cr_assert_eq(cfg->threads, 4);
    cr_assert_eq(cfg->shutdown_timeout_ms, 25000);
    cr_assert_eq(cfg->revoke_timeout_ms, 10000);
    cr_assert_eq(cfg->publish_retry_backoff_ms, 1000);
    cr_assert_eq(cfg->partition_queue_max, 1000);
    cr_assert_eq(cfg->ordering, HOOKD_ORDERING_KEY);
    cr_assert_eq(cfg->max_in_flight, 40000);
    cr_assert_eq(cfg->max_in_flight_per_partition, 5000);
    cr_assert_eq(cfg->commit_interval_ms, 200);
    cr_assert_eq(cfg->limits.max_event_bytes, HOOKD_DEFAULT_MAX_EVENT_BYTES);
    cr_assert_eq(cfg->limits.max_field_bytes, HOOKD_DEFAULT_MAX_FIELD_BYTES);
    cr_assert_eq(cfg->max_error_bytes, 1024);
    cr_assert_eq(cfg->isolation, HOOKD_ISOLATION_NONE);
    cr_assert_eq(cfg->hook_timeout_ms, 20000);
    cr_assert_eq(cfg->hook_rlimit_as_mb, 512);
    cr_assert_eq(cfg->hook_rlimit_cpu_s, 60);
    cr_assert_eq(cfg->hook_rlimit_nofile, 64);

    cr_assert_null(cfg->http_listen);
    cr_assert_eq(cfg->log_level, HOOKD_LOG_INFO);
    cr_assert_eq(cfg->log_format, HOOKD_LOGFMT_JSON);

    cr_assert_eq(cfg->auth_require, false);
    cr_assert_eq(cfg->auth_sign_results, false);
    cr_assert_null(cfg->auth_keys);
    cr_assert_null(cfg->auth_signing_key_id);
    cr_assert_eq(cfg->verify_csr, false);
    hookd_config_destroy(cfg);
}

/* The example states every default: loading it must give the defaults. */
Test(config, example_states_the_defaults)
{
    hookd_config_t *dflt = hookd_config_load(NULL, NULL, errbuf, sizeof(errbuf));
    hookd_config_t *ex = hookd_config_load(EXAMPLE, NULL, errbuf, sizeof(errbuf));
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    FILE *fa, *fb;

    cr_assert_not_null(dflt);
    cr_assert_not_null(ex, "%s: %s", EXAMPLE, errbuf);
    /* what the example sets on purpose */
    cr_assert_str_eq(ex->hooks_file, "cn_dump");
    cr_assert_str_eq(hookd_config_hook_value(ex, "save_path"), "/tmp");
    cr_assert_eq(ex->hook_keys.count, 1);

    /* everything else: compare the dumps, minus the first line and [Hooks] */
    free(ex->hooks_file);
    ex->hooks_file = NULL;
    free(ex->path);
    ex->path = NULL;
    free(ex->hook_keys.items[0].key);
    free(ex->hook_keys.items[0].value);
    free(ex->hook_keys.items);
    ex->hook_keys.items = NULL;
    ex->hook_keys.count = 0;
    fa = open_memstream(&a, &alen);
    fb = open_memstream(&b, &blen);
    hookd_config_dump(dflt, fa);
    hookd_config_dump(ex, fb);
    fclose(fa);
    fclose(fb);
    cr_assert_str_eq(b, a, "the example's values differ from the defaults:\n%s\n---\n%s", b, a);
    free(a);
    free(b);
    hookd_config_destroy(dflt);
    hookd_config_destroy(ex);
}

/* ---- syntax ---------------------------------------------------------------- */

Test(config, both_separators_and_section_case)
{
    hookd_config_t *cfg = must_load("[HOOKS]\n"
                                    "hooks_file: skeleton\n"
                                    "save_path = /var/tmp\n"
                                    "[Worker]\n"
                                    "threads: 7\n"
                                    "shutdown_timeout_ms = 1234\n"
                                    "[kafka]\n"
                                    "rdkafka.linger.ms: 3\n"
                                    "Group_ID = upper\n",
                                    NULL);
    cr_assert_str_eq(cfg->hooks_file, "skeleton");
    cr_assert_str_eq(hookd_config_hook_value(cfg, "save_path"), "/var/tmp");
    cr_assert_eq(cfg->threads, 7);
    cr_assert_eq(cfg->shutdown_timeout_ms, 1234);
    cr_assert_str_eq(kv_get(&cfg->rdkafka, "linger.ms"), "3");
    cr_assert_str_eq(cfg->group_id, "upper"); /* keys are case-insensitive, as in ConfigParser */
    hookd_config_destroy(cfg);
}

Test(config, comments_and_continuation_lines)
{
    hookd_config_t *cfg = must_load("# comment\n"
                                    "; comment\n"
                                    "[Hooks]\n"
                                    "hooks_file = skeleton ; inline comment\n"
                                    "motd = first\n"
                                    "  second\n"
                                    "\tthird\n"
                                    "pattern = a;b#c\n"
                                    "[kafka]\n"
                                    "bootstrap_servers = k1:9092,\n"
                                    "    k2:9092\n"
                                    "    k3:9092 , k4:9092\n",
                                    NULL);
    cr_assert_str_eq(cfg->hooks_file, "skeleton");
    cr_assert_str_eq(hookd_config_hook_value(cfg, "motd"), "first\nsecond\nthird");
    cr_assert_str_eq(hookd_config_hook_value(cfg, "pattern"), "a;b#c");
    cr_assert_str_eq(cfg->bootstrap_servers, "k1:9092,k2:9092,k3:9092,k4:9092");
    hookd_config_destroy(cfg);
}

/* inih keeps only 50 characters of a key for continuations: we do not rely on it */
Test(config, continuation_of_a_long_key)
{
    const char *key = "a_handler_key_whose_name_is_longer_than_fifty_characters_x";
    char text[256];
    hookd_config_t *cfg;

    snprintf(text, sizeof(text), "[Hooks]\n%s = one\n  two\nother = 3\n", key);
    cfg = must_load(text, NULL);
    cr_assert_str_eq(hookd_config_hook_value(cfg, key), "one\ntwo");
    cr_assert_str_eq(hookd_config_hook_value(cfg, "other"), "3");
    cr_assert_eq(cfg->hook_keys.count, 2);
    hookd_config_destroy(cfg);
}

/* A refused line does not stop the parse: the lines after it still count. */
Test(config, errors_do_not_stop_the_parse)
{
    char text[512] = "[worker]\nthreads = 2\nbootstrap = ";
    hookd_config_t *cfg;

    memset(text + strlen(text), 'x', 250);
    strcat(text, "\nthreads = 3\nbogus line\n[log]\nlevel = loud\n");
    cfg = load_text(text, NULL);
    cr_assert_null(cfg);
    cr_assert_not_null(strstr(errbuf, ":3: line too long"), "%s", errbuf);
    cr_assert_not_null(strstr(errbuf, ":4: [worker] duplicate key 'threads' (first set on line 2)"),
                       "%s", errbuf);
    cr_assert_not_null(strstr(errbuf, ":5: expected 'key = value'"), "%s", errbuf);
    cr_assert_not_null(strstr(errbuf, ":7: [log] key 'level': 'loud'"), "%s", errbuf);
}

Test(config, crlf_and_bom)
{
    hookd_config_t *cfg = must_load("\xEF\xBB\xBF[worker]\r\nthreads = 3\r\n", NULL);
    cr_assert_eq(cfg->threads, 3);
    hookd_config_destroy(cfg);
}

Test(config, booleans)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"True", true},   {"true", true},   {"TRUE", true},   {"yes", true},
                 {"Yes", true},    {"on", true},     {"ON", true},     {"1", true},
                 {"False", false}, {"false", false}, {"FALSE", false}, {"no", false},
                 {"No", false},    {"off", false},   {"Off", false},   {"0", false}};
    static const char *const bad[] = {"2", "y", "n", "enabled", "truee", "-1"};
    size_t i;
    char text[128];

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hookd_config_t *cfg;
        /* flip the default of every boolean tested so a no-op cannot pass */
        snprintf(text, sizeof(text),
                 "[auth]\nverify_csr = %s\n[Hooks]\nallow_post_hook_failure = %s\n", cases[i].text,
                 cases[i].text);
        cfg = must_load(text, NULL);
        cr_assert_eq(cfg->verify_csr, cases[i].value, "'%s'", cases[i].text);
        cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], cases[i].value, "'%s'",
                     cases[i].text);
        hookd_config_destroy(cfg);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char frag[128];
        snprintf(text, sizeof(text), "[auth]\nverify_csr = %s\n", bad[i]);
        snprintf(frag, sizeof(frag), ":2: [auth] key 'verify_csr': '%s' is not a boolean", bad[i]);
        must_fail(text, NULL, frag);
    }
}

Test(config, integers_are_range_checked)
{
    hookd_config_t *cfg = must_load("[worker]\nthreads = 256\nhook_rlimit_as_mb = 1048576\n"
                                    "max_error_bytes = 64\n",
                                    NULL);
    cr_assert_eq(cfg->threads, 256);
    cr_assert_eq(cfg->hook_rlimit_as_mb, 1048576L);
    cr_assert_eq(cfg->max_error_bytes, 64);
    hookd_config_destroy(cfg);
    must_fail("[worker]\nthreads = 257\n", NULL, "key 'threads': 257 is out of range (1 to 256)");
    must_fail("[worker]\nthreads = 4x\n", NULL, "key 'threads': '4x' is not an integer");
    must_fail("[worker]\nthreads =\n", NULL, "key 'threads': '' is not an integer");
    must_fail("[worker]\nthreads = 99999999999999999999\n", NULL, "is not an integer");
    must_fail("[worker]\nmax_error_bytes = 4096\n", NULL, "4096 is out of range (64 to 1024)");
}

/* ---- the flags ------------------------------------------------------------ */

Test(config, flags_both_spellings)
{
    hookd_config_t *cfg;

    /* acme2certifier's spelling, the opposite of every default */
    cfg = must_load("[Hooks]\nignore_pre_hook_failure = True\nignore_success_hook_failure: yes\n"
                    "ignore_post_hook_failure = False\n",
                    NULL);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], false);
    cr_assert_eq(cfg->hook_keys.count, 0, "flags must not be handler keys");
    hookd_config_destroy(cfg);

    /* the wiki's spelling */
    cfg = must_load("[Hooks]\nallow_pre_hook_failure = on\nallow_post_hook_failure = off\n", NULL);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], false);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], false);
    hookd_config_destroy(cfg);

    /* both spellings agreeing: fine */
    cfg = must_load("[Hooks]\nallow_success_hook_failure = true\nignore_success_hook_failure = 1\n",
                    NULL);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], true);
    hookd_config_destroy(cfg);
}

Test(config, flags_conflict_names_both_keys)
{
    must_fail("[Hooks]\nallow_post_hook_failure = true\nhooks_file = skeleton\n"
              "ignore_post_hook_failure = false\n",
              NULL,
              ":2: [Hooks] 'allow_post_hook_failure' = true conflicts with "
              "'ignore_post_hook_failure' = false (");
    cr_assert_not_null(strstr(errbuf, ":4)"), "%s", errbuf);
}

Test(config, flags_environment_overrides_both_spellings)
{
    char *env[] = {"ACME_HOOKD_HOOKS_IGNORE_PRE_HOOK_FAILURE=false", NULL};
    char *env2[] = {"ACME_HOOKD_HOOKS_ALLOW_PRE_HOOK_FAILURE=true",
                    "ACME_HOOKD_HOOKS_IGNORE_PRE_HOOK_FAILURE=false", NULL};
    /* the file's two spellings disagree, but the environment decides */
    hookd_config_t *cfg =
        must_load("[Hooks]\nallow_pre_hook_failure = true\nignore_pre_hook_failure = true\n", env);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], false);
    hookd_config_destroy(cfg);
    /* two environment variables that disagree are a conflict too */
    must_fail("[Hooks]\n", env2,
              "environment ACME_HOOKD_HOOKS_ALLOW_PRE_HOOK_FAILURE: [Hooks] "
              "'allow_pre_hook_failure' = true conflicts with 'ignore_pre_hook_failure' = false");
}

/* ---- [kafka] pass-through ------------------------------------------------ */

Test(config, rdkafka_lists)
{
    hookd_config_t *cfg = must_load("[kafka]\n"
                                    "rdkafka.client.id = a\n"
                                    "consumer.rdkafka.session.timeout.ms = 45000\n"
                                    "rdkafka.socket.timeout.ms = 20000\n"
                                    "producer.rdkafka.linger.ms = 7\n"
                                    "consumer.rdkafka.fetch.wait.max.ms = 50\n",
                                    NULL);
    cr_assert_eq(cfg->rdkafka.count, 2);
    cr_assert_str_eq(cfg->rdkafka.items[0].key, "client.id");
    cr_assert_str_eq(cfg->rdkafka.items[0].value, "a");
    cr_assert_eq(cfg->rdkafka.items[0].line, 2);
    cr_assert_str_eq(cfg->rdkafka.items[1].key, "socket.timeout.ms");
    cr_assert_eq(cfg->rdkafka.items[1].line, 4);
    cr_assert_eq(cfg->rdkafka_consumer.count, 2);
    cr_assert_str_eq(cfg->rdkafka_consumer.items[0].key, "session.timeout.ms");
    cr_assert_str_eq(cfg->rdkafka_consumer.items[1].key, "fetch.wait.max.ms");
    cr_assert_str_eq(cfg->rdkafka_consumer.items[1].value, "50");
    cr_assert_eq(cfg->rdkafka_producer.count, 1);
    cr_assert_str_eq(cfg->rdkafka_producer.items[0].key, "linger.ms");
    cr_assert_str_eq(cfg->rdkafka_producer.items[0].value, "7");
    cr_assert_eq(cfg->rdkafka_producer.items[0].line, 5);
    hookd_config_destroy(cfg);
}

/* ---- environment --------------------------------------------------------- */

Test(config, environment_overrides)
{
    char *env[] = {"PATH=/usr/bin",
                   "ACME_HOOKD_WORKER_THREADS=8",
                   "ACME_HOOKD_HOOKS_SAVE_PATH=/srv/dump",
                   "ACME_HOOKD_HOOKS_HOOKS_FILE=cn_dump",
                   "ACME_HOOKD_KAFKA_BOOTSTRAP_SERVERS= kafka-0:9092 ",
                   "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD=pw-from-env",
                   "ACME_HOOKD_KAFKA_CONSUMER__RDKAFKA__SESSION__TIMEOUT__MS=30000",
                   "ACME_HOOKD_LOG_LEVEL=debug",
                   "ACME_HOOKD_HTTP_LISTEN=:0",
                   NULL};
    hookd_config_t *cfg = must_load("[Hooks]\nhooks_file = skeleton\nsave_path = /tmp\n"
                                    "[worker]\nthreads = 2\n"
                                    "[kafka]\nrdkafka.sasl.password = pw-from-file\n",
                                    env);
    cr_assert_eq(cfg->threads, 8);
    cr_assert_str_eq(cfg->hooks_file, "cn_dump");
    cr_assert_str_eq(hookd_config_hook_value(cfg, "save_path"), "/srv/dump");
    cr_assert_eq(cfg->hook_keys.count, 1);
    cr_assert_eq(cfg->hook_keys.items[0].line, 0, "an environment value has no line");
    cr_assert_str_eq(cfg->bootstrap_servers, "kafka-0:9092");
    cr_assert_eq(cfg->rdkafka.count, 1);
    cr_assert_str_eq(cfg->rdkafka.items[0].key, "sasl.password");
    cr_assert_str_eq(cfg->rdkafka.items[0].value, "pw-from-env");
    cr_assert_str_eq(kv_get(&cfg->rdkafka_consumer, "session.timeout.ms"), "30000");
    cr_assert_eq(cfg->log_level, HOOKD_LOG_DEBUG);
    cr_assert_str_eq(cfg->http_listen, ":0");
    hookd_config_destroy(cfg);
}

Test(config, environment_without_file)
{
    char *env[] = {"ACME_HOOKD_KAFKA_GROUP_ID=from-env", "ACME_HOOKD_WORKER_WORKER_ID=pod-7", NULL};
    hookd_config_t *cfg = hookd_config_load(NULL, env, errbuf, sizeof(errbuf));
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_str_eq(cfg->group_id, "from-env");
    cr_assert_str_eq(cfg->worker_id, "pod-7");
    hookd_config_destroy(cfg);
}

Test(config, environment_file_suffix)
{
    char secret_path[64], env_pw[160], env_hooks[160];
    char *env[] = {env_pw, env_hooks, NULL};
    hookd_config_t *cfg;

    write_tmp("s3cr3t from a file\n");
    snprintf(secret_path, sizeof(secret_path), "%s", tmp_path);
    snprintf(env_pw, sizeof(env_pw), "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD__FILE=%s",
             secret_path);
    /* a key ending in _file is not a file reference: only __FILE is */
    snprintf(env_hooks, sizeof(env_hooks), "ACME_HOOKD_HOOKS_HOOKS_FILE=exec");
    cfg = hookd_config_load(NULL, env, errbuf, sizeof(errbuf));
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_str_eq(kv_get(&cfg->rdkafka, "sasl.password"), "s3cr3t from a file");
    cr_assert_str_eq(cfg->hooks_file, "exec");
    hookd_config_destroy(cfg);

    /* hooks_file itself read from a file */
    snprintf(env_hooks, sizeof(env_hooks), "ACME_HOOKD_HOOKS_HOOKS_FILE__FILE=%s", secret_path);
    env[0] = env_hooks;
    env[1] = NULL;
    cfg = hookd_config_load(NULL, env, errbuf, sizeof(errbuf));
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_str_eq(cfg->hooks_file, "s3cr3t from a file");
    hookd_config_destroy(cfg);
    unlink(secret_path);

    /* an unreadable file is an error naming the variable and the file */
    cfg = hookd_config_load(NULL, env, errbuf, sizeof(errbuf));
    cr_assert_null(cfg);
    cr_assert_not_null(strstr(errbuf, "environment ACME_HOOKD_HOOKS_HOOKS_FILE__FILE: cannot open"),
                       "%s", errbuf);
    cr_assert_not_null(strstr(errbuf, secret_path), "%s", errbuf);
}

Test(config, environment_errors)
{
    char *unknown_section[] = {"ACME_HOOKD_KAKFA_GROUP_ID=x", NULL};
    char *unknown_key[] = {"ACME_HOOKD_WORKER_THREAD=8", NULL};
    char *bad_value[] = {"ACME_HOOKD_WORKER_THREADS=many", NULL};
    char *twice[] = {"ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD=a",
                     "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD__FILE=/dev/null", NULL};

    must_fail("[worker]\n", unknown_section,
              "environment ACME_HOOKD_KAKFA_GROUP_ID: unknown section");
    must_fail("[worker]\n", unknown_key,
              "environment ACME_HOOKD_WORKER_THREAD: [worker] unknown key 'thread'");
    must_fail("[worker]\n", bad_value,
              "environment ACME_HOOKD_WORKER_THREADS: [worker] key 'threads': 'many' is not an "
              "integer");
    must_fail("[worker]\n", twice,
              "[kafka] key 'rdkafka.sasl.password' is also set by "
              "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD");
}

/* ---- errors ---------------------------------------------------------------- */

Test(config, unknown_key_names_key_and_line)
{
    char expect[128];
    hookd_config_t *cfg = load_text("[log]\nlevel = info\n\n; x\nformt = json\n", NULL);
    cr_assert_null(cfg);
    snprintf(expect, sizeof(expect), "%s:5: [log] unknown key 'formt'", tmp_path);
    cr_assert_str_eq(errbuf, expect);
}

Test(config, missing_file)
{
    hookd_config_t *cfg =
        hookd_config_load("/nonexistent/acme-hookd.ini", NULL, errbuf, sizeof(errbuf));
    cr_assert_null(cfg);
    cr_assert_str_eq(errbuf, "/nonexistent/acme-hookd.ini: cannot open: No such file or directory");
}

Test(config, all_errors_are_collected_and_truncated_gracefully)
{
    char text[4096] = "[worker]\n";
    char small[200];
    hookd_config_t *cfg;
    int i, lines = 1;
    const char *p;

    for (i = 0; i < 40; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "unknown_%02d = 1\n", i);
    cfg = load_text(text, NULL);
    cr_assert_null(cfg);
    for (p = errbuf; *p != '\0'; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 40, "%s", errbuf);
    cr_assert_not_null(strstr(errbuf, "unknown key 'unknown_00'"));
    cr_assert_not_null(strstr(errbuf, "unknown key 'unknown_39'"));

    write_tmp(text);
    cfg = hookd_config_load(tmp_path, NULL, small, sizeof(small));
    unlink(tmp_path);
    cr_assert_null(cfg);
    cr_assert(strlen(small) < sizeof(small));
    cr_assert_not_null(strstr(small, "unknown key 'unknown_00'"), "%s", small);
    cr_assert_not_null(strstr(small, "more error(s)"), "%s", small);
    cr_assert_eq(small[strlen(small) - 1], ')', "the summary line is complete: %s", small);
}

/* Every file of tests/config/broken states the messages it must produce. */
static bool declares_cn_dump_keys(const char *key, void *opaque)
{
    (void)opaque;
    return strcmp(key, "save_path") == 0;
}

Test(config, broken_files)
{
    DIR *d = opendir(BROKEN_DIR);
    struct dirent *de;
    int files = 0;

    cr_assert_not_null(d, "cannot open %s", BROKEN_DIR);
    while ((de = readdir(d)) != NULL) {
        char path[512], line[512];
        const char *ext = strrchr(de->d_name, '.');
        hookd_config_t *cfg;
        FILE *f;
        int expects = 0;

        if (ext == NULL || strcmp(ext, ".ini") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", BROKEN_DIR, de->d_name);
        cfg = hookd_config_load(path, NULL, errbuf, sizeof(errbuf));
        if (cfg != NULL) {
            /* valid as configuration: then the handlers' keys must fail */
            int rc = hookd_config_check_hook_keys(cfg, declares_cn_dump_keys, NULL, errbuf,
                                                  sizeof(errbuf));
            hookd_config_destroy(cfg);
            cr_assert_neq(rc, 0, "%s: accepted", de->d_name);
        }
        f = fopen(path, "r");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f) != NULL && strncmp(line, "# expect: ", 10) == 0) {
            line[strcspn(line, "\n")] = '\0';
            cr_expect_not_null(strstr(errbuf, line + 10), "%s: \"%s\" not in:\n%s", de->d_name,
                               line + 10, errbuf);
            /* the message names this file */
            cr_expect_not_null(strstr(errbuf, path), "%s: path not in: %s", de->d_name, errbuf);
            expects++;
        }
        fclose(f);
        cr_assert(expects > 0, "%s has no '# expect: ' line", de->d_name);
        files++;
    }
    closedir(d);
    cr_assert(files >= 20, "only %d broken files found", files);
}

/* Every example under tests/config loads. */
Test(config, example_files_load)
{
    static const char *const files[] = {"acme2certifier.ini", "full.ini", "secrets.ini",
                                        "missing-hooks-file.ini", "acme_srv.cfg"};
    size_t i;
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512];
        hookd_config_t *cfg;
        snprintf(path, sizeof(path), "%s/%s", CONFIG_DIR, files[i]);
        cfg = hookd_config_load(path, NULL, errbuf, sizeof(errbuf));
        cr_assert_not_null(cfg, "%s: %s", files[i], errbuf);
        hookd_config_destroy(cfg);
    }
}

Test(config, full_example_values)
{
    hookd_config_t *cfg = hookd_config_load(CONFIG_DIR "/full.ini", NULL, errbuf, sizeof(errbuf));
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_str_eq(cfg->hooks_file, "skeleton, exception_test");
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], false);
    cr_assert_eq(cfg->allow_unsafe_hooks_file, true);
    cr_assert_str_eq(hookd_config_hook_value(cfg, "raise_pre_hook_exception"), "true");
    cr_assert_str_eq(cfg->bootstrap_servers, "kafka-1:9092,kafka-2:9092");
    cr_assert_str_eq(cfg->group_id, "enrollment-hooks");
    cr_assert_str_eq(cfg->input_topic, "in");
    cr_assert_str_eq(cfg->result_topic, "out");
    cr_assert_str_eq(cfg->dead_letter_topic, "dlq");
    cr_assert_eq(cfg->rdkafka.count, 2);
    cr_assert_str_eq(kv_get(&cfg->rdkafka_consumer, "session.timeout.ms"), "45000");
    cr_assert_str_eq(kv_get(&cfg->rdkafka_producer, "linger.ms"), "20");
    cr_assert_str_eq(cfg->worker_id, "worker-a");
    cr_assert_eq(cfg->threads, 8);
    cr_assert_eq(cfg->shutdown_timeout_ms, 5000);
    cr_assert_eq(cfg->revoke_timeout_ms, 2000);
    cr_assert_eq(cfg->publish_retry_backoff_ms, 250);
    cr_assert_eq(cfg->partition_queue_max, 500);
    cr_assert_eq(cfg->commit_interval_ms, 50);
    cr_assert_eq(cfg->ordering, HOOKD_ORDERING_PARTITION);
    cr_assert_eq(cfg->max_in_flight, 3000);
    cr_assert_eq(cfg->max_in_flight_per_partition, 700);
    cr_assert_eq(cfg->policy.retry_max_attempts, 5);
    cr_assert_eq(cfg->policy.retry_initial_ms, 100);
    cr_assert_eq(cfg->policy.retry_max_ms, 1000);
    cr_assert_eq(cfg->limits.max_event_bytes, 2097152);
    cr_assert_eq(cfg->limits.max_field_bytes, 65536);
    cr_assert_eq(cfg->max_error_bytes, 512);
    cr_assert_eq(cfg->isolation, HOOKD_ISOLATION_PROCESS);
    cr_assert_eq(cfg->hook_timeout_ms, 1500);
    cr_assert_eq(cfg->hook_rlimit_as_mb, 256);
    cr_assert_eq(cfg->hook_rlimit_cpu_s, 10);
    cr_assert_eq(cfg->hook_rlimit_nofile, 32);
    cr_assert_str_eq(cfg->http_listen, "127.0.0.1:9090");
    cr_assert_eq(cfg->log_level, HOOKD_LOG_DEBUG);
    cr_assert_eq(cfg->log_format, HOOKD_LOGFMT_TEXT);
    cr_assert_eq(cfg->auth_require, true);
    cr_assert_eq(cfg->auth_sign_results, true);
    cr_assert_str_eq(cfg->auth_keys, "k1:/etc/acme-hookd/k1, k2:/etc/acme-hookd/k2");
    cr_assert_str_eq(cfg->auth_signing_key_id, "k2");
    cr_assert_eq(cfg->verify_csr, true);
    hookd_config_destroy(cfg);
}

Test(config, acme2certifier_style_file)
{
    hookd_config_t *cfg =
        hookd_config_load(CONFIG_DIR "/acme2certifier.ini", NULL, errbuf, sizeof(errbuf));
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], false);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], false);
    cr_assert_str_eq(cfg->bootstrap_servers, "broker1:9092,broker2:9092,broker3:9092");
    cr_assert_eq(hookd_config_check_hook_keys(cfg, declares_cn_dump_keys, NULL, errbuf,
                                              sizeof(errbuf)),
                 0, "%s", errbuf);
    hookd_config_destroy(cfg);
}

/*
 * acme2certifier's own acme_srv.cfg, shared: its sections are skipped (and
 * said so), the bridge's hookd_* keys are not handler keys, hookd_handlers
 * is the chain, and its flags and hook_error_details_forward are read.
 */
Test(config, acme_srv_cfg_shared_with_acme2certifier)
{
    static const char *const skipped[] = {"[DEFAULT]",
                                          "[Nonce]",
                                          "[CAhandler]",
                                          "[DBhandler]",
                                          "[Certificate]",
                                          "[Challenge]",
                                          "[Account]",
                                          "[Order]",
                                          "[Hooks] hookd_bootstrap_servers",
                                          "[Hooks] hookd_verdict_timeout",
                                          "[Hooks] hookd_rdkafka.security.protocol"};
    hookd_config_t *cfg =
        hookd_config_load(CONFIG_DIR "/acme_srv.cfg", NULL, errbuf, sizeof(errbuf));
    size_t i, k;

    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_str_eq(cfg->hooks_file, "cn_dump, exception_test");
    cr_assert_str_eq(cfg->hooks_module, "acme_hookd_a2c");
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_PRE], false);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS], true);
    cr_assert_eq(cfg->policy.allow_failure[HOOKD_PHASE_POST], true); /* the default */
    cr_assert_eq(cfg->hook_error_details_forward, true);
    cr_assert_eq(cfg->trust_event_flags, true);
    cr_assert_str_eq(cfg->reply_topics, "acme.enrollment.reply");
    for (k = 0; k < sizeof(skipped) / sizeof(skipped[0]); k++) {
        for (i = 0; i < cfg->ignored.count; i++)
            if (strcmp(cfg->ignored.items[i].key, skipped[k]) == 0)
                break;
        cr_expect_lt(i, cfg->ignored.count, "%s not reported as skipped", skipped[k]);
    }
    /* hookd_handlers is the worker's key, not the bridge's: not skipped */
    for (i = 0; i < cfg->ignored.count; i++)
        cr_expect_null(strstr(cfg->ignored.items[i].key, "hookd_handlers"));
    /* the handler keys remain, and no bridge key is among them */
    for (i = 0; i < cfg->hook_keys.count; i++)
        cr_expect_neq(strncmp(cfg->hook_keys.items[i].key, "hookd_", 6), 0, "%s",
                      cfg->hook_keys.items[i].key);
    cr_assert_str_eq(hookd_config_hook_value(cfg, "save_path"), "/tmp");
    hookd_config_destroy(cfg);
}

/* hooks_module is hooks_file's newer spelling, and wins over it as in acme2certifier. */
Test(config, hooks_module_spelling)
{
    hookd_config_t *cfg = must_load("[Hooks]\nhooks_module = skeleton\n", NULL);
    cr_assert_str_eq(cfg->hooks_file, "skeleton");
    hookd_config_destroy(cfg);
    cfg = must_load("[Hooks]\nhooks_file = cn_dump\nhooks_module = skeleton\n", NULL);
    cr_assert_str_eq(cfg->hooks_file, "skeleton");
    hookd_config_destroy(cfg);
    cfg = must_load("[Hooks]\nhooks_module = acme_hookd_a2c\nhookd_handlers = cn_dump\n", NULL);
    cr_assert_str_eq(cfg->hooks_file, "cn_dump");
    hookd_config_destroy(cfg);
    must_fail("[Hooks]\nhooks_file = /usr/lib/python3/dist-packages/acme_hookd_a2c.py\n", NULL,
              "is acme2certifier's bridge to acme-hookd");
}

/* A section close to one of ours is a typo and refused; others are skipped. */
Test(config, section_typos_refused_foreign_sections_skipped)
{
    hookd_config_t *cfg;
    must_fail("[Hooks]\n[kafak]\nbootstrap_servers = x:1\n", NULL,
              "unknown section [kafak] (did you mean [kafka]?");
    must_fail("[Hook]\nhooks_file = skeleton\n", NULL, "did you mean [Hooks]?");
    must_fail("[htp]\nlisten = :8080\n", NULL, "did you mean [http]?");
    cfg = must_load("[Hooks]\n[Zerossl]\nanything = 1\n[Order]\nx = 1\n", NULL);
    cr_assert_eq(cfg->ignored.count, 2);
    cr_assert_str_eq(cfg->ignored.items[0].key, "[Zerossl]");
    cr_assert_str_eq(cfg->ignored.items[1].key, "[Order]");
    hookd_config_destroy(cfg);
}

/* ---- handler keys ------------------------------------------------------------ */

static bool declares_nothing(const char *key, void *opaque)
{
    (void)key;
    (void)opaque;
    return false;
}

Test(config, hook_keys_checked_against_handlers)
{
    char *env[] = {"ACME_HOOKD_HOOKS_RAISE__LEVEL=3", NULL};
    char expect[1024];
    hookd_config_t *cfg = must_load("[Hooks]\nhooks_file = cn_dump\nsave_path = /tmp\n"
                                    "\nsave_pth = /tmp\n",
                                    env);
    const char *path = cfg->path;

    cr_assert_eq(cfg->hook_keys.count, 3);
    cr_assert_eq(hookd_config_check_hook_keys(cfg, declares_nothing, NULL, errbuf, sizeof(errbuf)),
                 -1);
    snprintf(expect, sizeof(expect),
             "%s:3: [Hooks] unknown key 'save_path' (no loaded handler declares it)\n"
             "%s:5: [Hooks] unknown key 'save_pth' (no loaded handler declares it)\n"
             "environment ACME_HOOKD_HOOKS_RAISE__LEVEL: [Hooks] unknown key 'raise.level' (no "
             "loaded handler declares it)",
             path, path);
    cr_assert_str_eq(errbuf, expect);
    hookd_config_destroy(cfg);
}

/* ---- secrets ------------------------------------------------------------------ */

Test(config, secret_keys)
{
    static const char *const secret[] = {"sasl.password",
                                         "ssl.key.password",
                                         "ssl.key.pem",
                                         "ssl.keystore.password",
                                         "sasl.oauthbearer.config",
                                         "sasl.oauthbearer.client.secret",
                                         "rdkafka.sasl.password",
                                         "keys",
                                         "api_key",
                                         "api_token",
                                         "hmac_key",
                                         "ssl_key",
                                         "client_secret",
                                         "SASL.PASSWORD"};
    static const char *const open_keys[] = {"save_path",         "bootstrap_servers",
                                            "sasl.username",     "sasl.mechanism",
                                            "ssl.ca.location",   "ssl.certificate.pem",
                                            "signing_key_id",    "hooks_file",
                                            "group_id",          "client.id",
                                            "security.protocol", "threads"};
    size_t i;
    for (i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        cr_expect(hookd_config_is_secret_key(secret[i]), "%s should be secret", secret[i]);
    for (i = 0; i < sizeof(open_keys) / sizeof(open_keys[0]); i++)
        cr_expect(!hookd_config_is_secret_key(open_keys[i]), "%s should not be secret",
                  open_keys[i]);
    cr_expect(!hookd_config_is_secret_key(NULL));
}

Test(config, dump_masks_secrets)
{
    char *env[] = {"ACME_HOOKD_KAFKA_PRODUCER__RDKAFKA__SSL__KEY__PASSWORD=env-secret-91ab", NULL};
    hookd_config_t *cfg = must_load("[Hooks]\nhooks_file = skeleton\napi_token = tok-5c1d\n"
                                    "save_path = /srv/visible\n"
                                    "[kafka]\nrdkafka.sasl.username = user-visible\n"
                                    "rdkafka.sasl.password = file-secret-77f2\n"
                                    "[auth]\nkeys = k1:/etc/hmac-k1-path\n",
                                    env);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    hookd_config_dump(cfg, f);
    fclose(f);
    cr_assert_null(strstr(out, "tok-5c1d"), "%s", out);
    cr_assert_null(strstr(out, "file-secret-77f2"), "%s", out);
    cr_assert_null(strstr(out, "env-secret-91ab"), "%s", out);
    cr_assert_null(strstr(out, "hmac-k1-path"), "%s", out);
    cr_assert_not_null(strstr(out, "rdkafka.sasl.password = ********\n"), "%s", out);
    cr_assert_not_null(strstr(out, "producer.rdkafka.ssl.key.password = ********\n"), "%s", out);
    cr_assert_not_null(strstr(out, "api_token = ********\n"), "%s", out);
    cr_assert_not_null(strstr(out, "keys = ********\n"), "%s", out);
    cr_assert_not_null(strstr(out, "save_path = /srv/visible\n"), "%s", out);
    cr_assert_not_null(strstr(out, "rdkafka.sasl.username = user-visible\n"), "%s", out);
    cr_assert_not_null(strstr(out, "[worker]\n"), "%s", out);
    cr_assert_not_null(strstr(out, "threads = 4\n"), "%s", out);
    free(out);
    hookd_config_destroy(cfg);
}

/* A secret's invalid value never appears in an error message. */
Test(config, errors_do_not_echo_secrets)
{
    char *env[] = {"ACME_HOOKD_AUTH_KEYS=", NULL};
    /* an empty override unsets */
    must_fail("[auth]\nrequire = yes\nkeys = k1:/etc/k1\n", env,
              "[auth] require = true needs keys");
    must_fail("[kafka]\nrdkafka.sasl.oauthbearer.method = leaky-value-3e\n", NULL,
              "key 'rdkafka.sasl.oauthbearer.method': invalid value (secret, not shown)");
    cr_assert_null(strstr(errbuf, "leaky-value-3e"), "%s", errbuf);
}

/* ---- delivery ------------------------------------------------------------ */

Test(config, exactly_once_keys)
{
    hookd_config_t *cfg = load_text("[kafka]\nbootstrap_servers = k:9092\ndelivery = Exactly_Once\n"
                                    "transaction_interval_ms = 1000\ntransaction_max_events = 50\n"
                                    "transactional_id = tx-a\n",
                                    NULL);
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_eq(cfg->delivery, HOOKD_DELIVERY_EXACTLY_ONCE);
    cr_assert_eq(cfg->transaction_interval_ms, 1000);
    cr_assert_eq(cfg->transaction_max_events, 50);
    cr_assert_str_eq(cfg->transactional_id, "tx-a");
    hookd_config_destroy(cfg);
}

Test(config, exactly_once_refusals)
{
    must_fail("[kafka]\ndelivery = exactly_once\n", NULL,
              "delivery = exactly_once needs bootstrap_servers");
    must_fail("[kafka]\nbootstrap_servers = k:9092\ndelivery = twice\n", NULL,
              "is not one of at_least_once, exactly_once");
    must_fail("[kafka]\nbootstrap_servers = k:9092\ntransaction_interval_ms = 5\n", NULL,
              "transaction_interval_ms");
    must_fail("[kafka]\nbootstrap_servers = k:9092\ntransaction_max_events = 0\n", NULL,
              "transaction_max_events");
}

/* Exactly-once keeps partition order: key ordering would let a transaction
 * carry outcomes past the offsets it commits (see cross_check()). */
Test(config, exactly_once_ordering)
{
    /* Exactly-once publishes outcomes in offset order per partition
     * (outseq.h), so it combines with either ordering; the default stays
     * the project's, key. */
    char *env[] = {"ACME_HOOKD_WORKER_ORDERING=partition", NULL};
    hookd_config_t *cfg =
        load_text("[kafka]\nbootstrap_servers = k:9092\ndelivery = exactly_once\n", NULL);
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_eq(cfg->ordering, HOOKD_ORDERING_KEY, "exactly_once keeps the key default");
    hookd_config_destroy(cfg);
    cfg = load_text("[kafka]\nbootstrap_servers = k:9092\ndelivery = exactly_once\n"
                    "[worker]\nordering = key\n",
                    NULL);
    cr_assert_not_null(cfg, "an explicit key ordering is accepted: %s", errbuf);
    cr_assert_eq(cfg->ordering, HOOKD_ORDERING_KEY);
    cr_assert_eq(cfg->delivery, HOOKD_DELIVERY_EXACTLY_ONCE);
    hookd_config_destroy(cfg);
    cfg = load_text("[kafka]\nbootstrap_servers = k:9092\ndelivery = exactly_once\n", env);
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_eq(cfg->ordering, HOOKD_ORDERING_PARTITION, "partition ordering still chosen");
    hookd_config_destroy(cfg);
}

/* [worker] retry_topics / retry_topic_names: parsed into the tier table,
 * from the file or the environment; unset is no tiers. */
Test(config, retry_tiers)
{
    hookd_config_t *cfg = load_text("[kafka]\ninput_topic = in\n", NULL);
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_null(cfg->retry_tiers, "no retry_topics, no tiers");
    hookd_config_destroy(cfg);

    cfg = load_text("[kafka]\ninput_topic = in\n[worker]\nretry_topics = 10s, 1m,10m\n", NULL);
    cr_assert_not_null(cfg, "%s", errbuf);
    cr_assert_not_null(cfg->retry_tiers);
    cr_assert_eq(cfg->retry_tiers->count, 3);
    cr_assert_str_eq(cfg->retry_tiers->topics[0], "in.retry.10s");
    cr_assert_str_eq(cfg->retry_tiers->topics[2], "in.retry.10m");
    cr_assert_eq(cfg->retry_tiers->delays_ms[1], 60000);
    hookd_config_destroy(cfg);

    {
        char *env[] = {"ACME_HOOKD_WORKER_RETRY_TOPICS=5s",
                       "ACME_HOOKD_WORKER_RETRY_TOPIC_NAMES=r5", NULL};
        cfg = load_text("[worker]\nretry_topics = 10s,1m\n", env);
        cr_assert_not_null(cfg, "%s", errbuf);
        cr_assert_eq(cfg->retry_tiers->count, 1, "the environment wins");
        cr_assert_str_eq(cfg->retry_tiers->topics[0], "r5");
        cr_assert_eq(cfg->retry_tiers->delays_ms[0], 5000);
        hookd_config_destroy(cfg);
    }
}
