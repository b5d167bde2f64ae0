/* SPDX-License-Identifier: MIT */
/*
 * acme-hookd: the daemon's command line and lifecycle.
 *
 *   acme-hookd [--config FILE]         run the worker
 *   acme-hookd --check-config FILE     validate everything, run nothing
 *   acme-hookd replay -c FILE ...      send dead letters back (replay.h)
 *
 * Startup fails closed: a configuration error, a handler that cannot be
 * loaded or initialised, or a [Hooks] key no handler declares stops the
 * worker before it touches Kafka, with every message on stderr. The only
 * way out of the process is the return at the end of main(), after the one
 * cleanup path has released everything that was created.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <acme_hookd/hook.h>
#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "config.h"
#include "event.h"
#include "http.h"
#include "invoke.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "replay.h"
#include "runtime.h"

#ifndef HOOKD_VERSION
#define HOOKD_VERSION "0.0.0"
#endif

#define PROG "acme-hookd"
#define ERRSTR_SIZE 16384

/*
 * Exit status, one meaning each (--help, docs/configuration.md and the
 * systemd unit's RestartPreventExitStatus= say the same).
 */
#define EXIT_CLEAN 0    /* clean stop; --check-config: valid */
#define EXIT_STARTUP 1  /* configuration, handlers or Kafka clients refused */
#define EXIT_USAGE 2    /* bad command line */
#define EXIT_FATAL 3    /* fatal runtime error (the consumer cannot go on) */
#define EXIT_DEADLINE 4 /* shutdown deadline passed: uncommitted work is redone */

extern char **environ;

/*
 * Set by SIGTERM/SIGINT; the runtime polls it between short waits. An
 * atomic rather than a volatile sig_atomic_t because the runtime reads it
 * on the consumer thread, not necessarily the one the signal interrupts;
 * a lock-free atomic is async-signal-safe (C11 7.14.1.1). Relaxed: it
 * publishes no data.
 */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "atomic_int must be lock-free to be set from a signal handler");
static atomic_int stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    atomic_store_explicit(&stop_requested, 1, memory_order_relaxed);
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a blocking call returns EINTR and the loop sees the flag */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    /*
     * A peer closing a socket or a pipe (the HTTP endpoint, an exec
     * handler's child) must give EPIPE on that write, not kill the worker.
     */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

static void usage(FILE *out)
{
    const char *const *names = hookd_registry_builtin_names();

    fprintf(out,
            "Usage: " PROG " [--config FILE]\n"
            "       " PROG " --check-config FILE [--print-config]\n"
            "       " PROG " replay -c FILE [options]   (see " PROG " replay --help)\n"
            "       " PROG " --version | --help\n"
            "\n"
            "Runs enrollment hooks (acme2certifier's pre/success/post hooks) for events\n"
            "consumed from Kafka, publishes a result per event, dead-letters failures.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE        run the worker with this configuration file\n"
            "                           (without it: built-in defaults and the environment)\n"
            "  -C, --check-config FILE  validate the configuration, load the handlers, run\n"
            "                           their init and fini, print a summary and exit:\n"
            "                           0 when everything is valid, 1 with every error on\n"
            "                           stderr otherwise\n"
            "  -p, --print-config       with --check-config: also print the effective\n"
            "                           configuration (secrets masked)\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Environment overrides (applied over the file, see docs/configuration.md):\n"
            "  ACME_HOOKD_<SECTION>_<KEY>=VALUE   SECTION: HOOKS, KAFKA, WORKER, HTTP, LOG,\n"
            "                                     AUTH; KEY upper-cased, '.' written \"__\"\n"
            "  ACME_HOOKD_<SECTION>_<KEY>__FILE=PATH   the value is read from PATH\n"
            "  e.g. ACME_HOOKD_WORKER_THREADS=8\n"
            "       ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD__FILE=/run/secrets/kafka-password\n"
            "\n"
            "Signals: SIGTERM or SIGINT stops the worker gracefully within\n"
            "[worker] shutdown_timeout_ms.\n"
            "Exit status: 0 clean stop (--check-config: valid), 1 startup refused\n"
            "(configuration, handlers or Kafka clients; --check-config: invalid),\n"
            "2 usage error, 3 fatal runtime error, 4 shutdown deadline passed\n"
            "(uncommitted work is redone by the next owner).\n"
            "\n"
            "Built-in handlers:");
    for (; names != NULL && *names != NULL; names++)
        fprintf(out, " %s", *names);
    fprintf(out, "\n");
}

static void version(void)
{
    printf(PROG " %s (handler ABI %u.%u, librdkafka %s)\n", HOOKD_VERSION,
           (unsigned)HOOKD_ABI_MAJOR, (unsigned)HOOKD_ABI_MINOR, rd_kafka_version_str());
}

/* An errstr holds one problem per line: print each as its own line. */
static void print_lines(const char *what, const char *errstr)
{
    const char *p = errstr;

    if (p == NULL || *p == '\0') {
        fprintf(stderr, PROG ": %s\n", what);
        return;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        fprintf(stderr, PROG ": %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

/* The same, through the logger, once it is set up (run mode). */
static void log_lines(const char *errstr)
{
    const char *p = errstr;

    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, "\n");
        hookd_log_error("%.*s", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static void print_summary(const char *path, const hookd_config_t *cfg, const hookd_registry_t *reg)
{
    const hookd_chain_t *chain = hookd_registry_chain(reg);
    size_t i, n = hookd_registry_count(reg);

    printf("configuration OK: %s\n", path);
    if (n == 0)
        printf("handlers: none (hooks_file is empty: events complete without any hook)\n");
    else
        printf("handlers, in chain order:\n");
    for (i = 0; i < n; i++) {
        const hookd_chain_entry_t *e = &chain->entries[i];
        printf("  %zu. %-16s %-40s phases:%s%s%s\n", i + 1, e->name, hookd_registry_origin(reg, i),
               e->has_phase[HOOKD_PHASE_PRE] ? " pre" : "",
               e->has_phase[HOOKD_PHASE_SUCCESS] ? " success" : "",
               e->has_phase[HOOKD_PHASE_POST] ? " post" : "");
    }
    printf("failures allowed: pre=%s success=%s post=%s; retries: %u attempts, %u..%u ms\n",
           cfg->policy.allow_failure[HOOKD_PHASE_PRE] ? "yes" : "no",
           cfg->policy.allow_failure[HOOKD_PHASE_SUCCESS] ? "yes" : "no",
           cfg->policy.allow_failure[HOOKD_PHASE_POST] ? "yes" : "no",
           (unsigned)cfg->policy.retry_max_attempts, (unsigned)cfg->policy.retry_initial_ms,
           (unsigned)cfg->policy.retry_max_ms);
    if (cfg->bootstrap_servers != NULL)
        printf("kafka: %s, group %s\n", cfg->bootstrap_servers, cfg->group_id);
    else
        printf("kafka: embedded mock cluster (no bootstrap_servers), group %s\n", cfg->group_id);
    printf("topics: input %s, results %s, dead letters %s\n", cfg->input_topic, cfg->result_topic,
           cfg->dead_letter_topic);
    printf("worker: %s, %d thread(s), isolation %s, http %s\n", cfg->worker_id, cfg->threads,
           cfg->isolation == HOOKD_ISOLATION_PROCESS ? "process" : "none",
           cfg->http_listen != NULL ? cfg->http_listen : "off");
}

/*
 * --check-config: everything the worker checks at startup, without Kafka.
 * Keeps going after a failed step when the next one can still run, so that
 * one invocation reports as much as possible.
 */
static int check_config(const char *path, bool print_config)
{
    char *errstr = malloc(ERRSTR_SIZE);
    hookd_config_t *cfg = NULL;
    hookd_registry_t *reg = NULL;
    hookd_invoke_t *inv = NULL;
    hookd_auth_t *auth = NULL;
    int rc = EXIT_STARTUP;
    bool ok = true;

    if (errstr == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_STARTUP;
    }
    cfg = hookd_config_load(path, environ, errstr, ERRSTR_SIZE);
    if (cfg == NULL) {
        print_lines("invalid configuration", errstr);
        goto out;
    }
    hookd_log_setup(cfg->log_level, cfg->log_format);

    reg = hookd_registry_load(cfg, NULL, errstr, ERRSTR_SIZE);
    if (reg == NULL) {
        print_lines("cannot load the handlers", errstr);
        goto out;
    }
    if (hookd_config_check_hook_keys(cfg, hookd_registry_declares_key, reg, errstr, ERRSTR_SIZE) !=
        0) {
        print_lines("unknown [Hooks] keys", errstr);
        ok = false;
    }
    /* every handler's init and fini, once, as a worker thread would */
    inv = hookd_invoke_create(reg, cfg, NULL, errstr, ERRSTR_SIZE);
    if (inv == NULL) {
        print_lines("a handler failed to initialise", errstr);
        ok = false;
    }
    auth = hookd_auth_create(cfg, errstr, ERRSTR_SIZE);
    if (auth == NULL) {
        print_lines("cannot load the [auth] keys", errstr);
        ok = false;
    }
    if (!ok)
        goto out;

    print_summary(path, cfg, reg);
    if (print_config) {
        printf("\n");
        hookd_config_dump(cfg, stdout);
    }
    rc = fflush(stdout) == 0 ? EXIT_CLEAN : EXIT_STARTUP;

out:
    if (auth != NULL)
        hookd_auth_destroy(auth);
    if (inv != NULL)
        hookd_invoke_destroy(inv);
    if (reg != NULL)
        hookd_registry_destroy(reg);
    hookd_config_destroy(cfg);
    free(errstr);
    return rc;
}

/* Run the worker until SIGTERM/SIGINT (or a fatal error). */
static int run(const char *path)
{
    char *errstr = malloc(ERRSTR_SIZE);
    hookd_config_t *cfg = NULL;
    hookd_registry_t *reg = NULL;
    hookd_http_t *http = NULL;
    hookd_runtime_t *rt = NULL;
    int rc = EXIT_STARTUP;

    if (errstr == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_STARTUP;
    }
    /* first, so that a stop requested during startup is not lost */
    if (install_signals() != 0) {
        fprintf(stderr, PROG ": sigaction: %s\n", strerror(errno));
        goto out;
    }
    cfg = hookd_config_load(path, environ, errstr, ERRSTR_SIZE);
    if (cfg == NULL) {
        print_lines("invalid configuration", errstr);
        goto out;
    }
    hookd_log_setup(cfg->log_level, cfg->log_format);
    hookd_metrics_reset();
    {
        /* an acme_srv.cfg shared with acme2certifier holds its sections too */
        size_t i;
        for (i = 0; i < cfg->ignored.count; i++)
            hookd_logf(HOOKD_LOG_DEBUG, NULL, "config: %s (line %d) ignored: %s",
                       cfg->ignored.items[i].key, cfg->ignored.items[i].line,
                       cfg->ignored.items[i].value);
    }

    /* fail closed: no handlers, no Kafka */
    reg = hookd_registry_load(cfg, NULL, errstr, ERRSTR_SIZE);
    if (reg == NULL) {
        hookd_log_error("cannot load the handlers: %s", errstr);
        goto out;
    }
    if (hookd_config_check_hook_keys(cfg, hookd_registry_declares_key, reg, errstr, ERRSTR_SIZE) !=
        0) {
        log_lines(errstr);
        goto out;
    }
    if (hookd_registry_count(reg) == 0)
        hookd_log_warn("no handlers configured ([Hooks] hooks_file is empty): events complete "
                       "without running any hook");
    hookd_status_set(HOOKD_STATUS_HOOKS_LOADED, true);

    if (cfg->http_listen != NULL) {
        http = hookd_http_start(cfg->http_listen, errstr, ERRSTR_SIZE);
        if (http == NULL) {
            hookd_log_error("cannot start the HTTP endpoint on %s: %s", cfg->http_listen, errstr);
            goto out;
        }
        hookd_log_info("HTTP endpoint listening on port %d (/healthz /readyz /metrics)",
                       hookd_http_port(http));
    }

    rt = hookd_runtime_create(cfg, reg, errstr, ERRSTR_SIZE);
    if (rt == NULL) {
        hookd_log_error("cannot start: %s", errstr);
        goto out;
    }
    hookd_log_info(PROG " %s started: worker %s, %zu handler(s), group %s, input %s", HOOKD_VERSION,
                   cfg->worker_id, hookd_registry_count(reg), cfg->group_id, cfg->input_topic);
    switch (hookd_runtime_run(rt, &stop_requested)) {
    case 0:
        rc = EXIT_CLEAN;
        hookd_log_info("stopped cleanly");
        break;
    case 1:
        rc = EXIT_DEADLINE;
        hookd_log_error("stopped with status %d (shutdown deadline passed: uncommitted work is "
                        "redone by the next owner)",
                        rc);
        break;
    default:
        rc = EXIT_FATAL;
        hookd_log_error("stopped with status %d (fatal runtime error)", rc);
        break;
    }

out:
    /* reverse order of creation; the runtime uses cfg and reg until destroyed */
    if (rt != NULL)
        hookd_runtime_destroy(rt);
    if (http != NULL)
        hookd_http_stop(http);
    if (reg != NULL)
        hookd_registry_destroy(reg);
    hookd_config_destroy(cfg);
    free(errstr);
    return rc;
}

#ifdef HOOKD_JEMALLOC
/*
 * jemalloc reads its options from this symbol when it starts. Two arenas:
 * the worker's threads share them instead of one arena per thread each
 * keeping its own free pages, and freed pages go back to the system after
 * a second instead of ten: measured on a 200,000-event backlog, about 10%
 * less peak RSS for the same CPU per event. MALLOC_CONF in the environment
 * still overrides it.
 */
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", required_argument, NULL, 'C'},
        {"print-config", no_argument, NULL, 'p'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *check = NULL;
    bool print_config = false;
    int opt;

    hookd_event_global_init(); /* before any thread: see event.h */
    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return hookd_replay_main(argc - 1, argv + 1, environ);
    while ((opt = getopt_long(argc, argv, "c:C:pVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            check = optarg;
            break;
        case 'p':
            print_config = true;
            break;
        case 'V':
            version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\nTry '" PROG " --help'.\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (config != NULL && check != NULL) {
        fprintf(stderr, PROG ": use either --config or --check-config\n");
        return EXIT_USAGE;
    }
    if (print_config && check == NULL) {
        fprintf(stderr, PROG ": --print-config goes with --check-config\n");
        return EXIT_USAGE;
    }
    if (check != NULL)
        return check_config(check, print_config);
    return run(config);
}
