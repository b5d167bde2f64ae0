/* SPDX-License-Identifier: MIT */
/*
 * Process isolation: each handler invocation runs in a child process forked
 * from the pre-initialised worker, under a deadline and resource limits.
 *
 * Why a persistent child rather than a fork per invocation: a fork of a
 * worker with librdkafka's threads and buffers costs far more than one
 * round trip over a socketpair (figures in docs/security.md). The child is
 * replaced whenever it dies, overruns, or has used half of its CPU budget,
 * and hookd_isolate_set_max_uses() can force a fresh child per event.
 *
 * Wire format (native byte order: both ends are the same binary):
 *   request : u32 length of what follows, u32 magic, u32 seq, u32 handler,
 *             u32 phase, u32 event type, u32 event format, then
 *             ISO_FIELDS strings, each u32 length (ISO_NULL = absent) + bytes
 *   response: u32 length, u32 magic, u32 seq, u32 outcome, u32 error class,
 *             u64 CPU microseconds used by the child so far, u32 error
 *             length + bytes
 * The parent treats the response as untrusted (the child runs foreign
 * code): every field is range-checked, a violation kills the child.
 *
 * What dies with what. The child leads its own session and process group
 * and has PR_SET_PDEATHSIG = SIGKILL. At a deadline, at a recycle and at
 * destroy, the parent SIGKILLs the child's group, which takes everything
 * the handler forked and left in it. When the worker dies, SIGKILL
 * included, the child gets its parent-death signal; what the handler left
 * in the group is then not killed by anyone here, which is why a handler
 * that starts processes must tie them to itself: the exec handler's guard
 * (a child with a catchable parent-death signal) kills its command's group
 * and reaps it when this child dies. The getppid() check after prctl()
 * closes the race with a worker that died between fork() and prctl(). A
 * descendant that calls setsid() leaves every group; only a cgroup holds
 * it (systemd's KillMode=control-group, the end of a Kubernetes pod).
 *
 * Forking from a multi-threaded process: the child has one thread, and a
 * lock another thread held at fork time stays held in the child. glibc
 * keeps malloc and stdio consistent across fork and the logger writes each
 * line with one write(2); a handler that takes some other library's lock
 * in the child and deadlocks is caught by the deadline like any hang.
 */
#include "isolate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define ISO_REQ_MAGIC 0x484b5251u /* "HKRQ" */
#define ISO_RSP_MAGIC 0x484b5253u /* "HKRS" */
#define ISO_NULL 0xffffffffu
#define ISO_FIELDS 10
#define ISO_REQ_MAX (64u * 1024u * 1024u) /* far above any event the codec accepts */
#define ISO_RSP_FIXED (4 + 4 + 4 + 4 + 4 + 8 + 4)
#define ISO_RSP_MAX (ISO_RSP_FIXED + HOOKD_ERROR_MAX)

/* Processes a child may add on top of those its user already runs (RLIMIT_NPROC). */
#define ISO_NPROC_EXTRA 64
/* Defaults when the configuration leaves a value at 0. */
#define ISO_DEFAULT_TIMEOUT_MS 30000

struct hookd_isolate {
    hookd_invoke_t *inv;
    int timeout_ms;
    long rlimit_as_mb;  /* <= 0: no limit */
    long rlimit_cpu_s;  /* <= 0: no limit */
    long rlimit_nofile; /* <= 0: no limit */
    uint32_t max_uses;

    pid_t pid;     /* current child, 0 when none */
    int sock;      /* our end of the socketpair, -1 when none */
    int pidfd;     /* readable when the child has exited; -1 if the kernel has none */
    uint32_t uses; /* invocations served by the current child */
    uint32_t seq;
    uint64_t last_cpu_us; /* CPU time of the last child reaped */
    long nproc_base;      /* tasks of our user at the last count */
    uint64_t nproc_at_ms; /* when that count was taken */
    hookd_isolate_stats_t stats;
};

/* ---- small helpers ------------------------------------------------------ */

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = hookd_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rusage_cpu_us(const struct rusage *ru)
{
    return (uint64_t)ru->ru_utime.tv_sec * 1000000u + (uint64_t)ru->ru_utime.tv_usec +
           (uint64_t)ru->ru_stime.tv_sec * 1000000u + (uint64_t)ru->ru_stime.tv_usec;
}

static int sys_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static void fill(hookd_invocation_t *out, hookd_outcome_t o, hookd_error_class_t c, const char *fmt,
                 ...) HOOKD_PRINTF(4, 5);
static void fill(hookd_invocation_t *out, hookd_outcome_t o, hookd_error_class_t c, const char *fmt,
                 ...)
{
    va_list ap;
    out->outcome = o;
    out->error_class = c;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof(out->error), fmt, ap);
    va_end(ap);
}

/* ---- the child ---------------------------------------------------------- */

/* Blocking full read; 0 at EOF before the first byte, 1 when done, -1 on error. */
static int child_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static int child_write_full(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/*
 * Close the descriptors the worker had open that the child must not keep:
 * sockets (broker connections, the HTTP listener, other threads' child
 * sockets, whose peers would otherwise never see EOF), pipes and anonymous
 * inodes. Regular files, directories and devices stay: a handler may have
 * opened them in init. Runs in the single-threaded child.
 */
static void child_sweep_fds(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int dfd;
    if (d == NULL)
        return;
    dfd = dirfd(d);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd < 3 || fd == keep || fd == dfd)
            continue;
        if (fstat((int)fd, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode) ||
            S_ISBLK(st.st_mode))
            continue;
        close((int)fd);
    }
    closedir(d);
}

/* Virtual memory size of this process in bytes, 0 if unknown. */
static uint64_t self_vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long pages = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) == 0) {
        /* never ask for more than the inherited hard limit: that would fail */
        if (rl.rlim_max != RLIM_INFINITY && hard > rl.rlim_max)
            hard = rl.rlim_max;
        if (soft > hard)
            soft = hard;
    }
    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    (void)setrlimit(resource, &rl);
}

static void child_limits(const hookd_isolate_t *iso, rlim_t nproc)
{
    set_limit(RLIMIT_CORE, 0, 0); /* a core would hold the worker's secrets */
    if (iso->rlimit_nofile > 0)
        set_limit(RLIMIT_NOFILE, (rlim_t)iso->rlimit_nofile, (rlim_t)iso->rlimit_nofile);
    if (iso->rlimit_cpu_s > 0)
        /* soft: SIGXCPU (reported as a timeout); hard one second later: SIGKILL */
        set_limit(RLIMIT_CPU, (rlim_t)iso->rlimit_cpu_s, (rlim_t)iso->rlimit_cpu_s + 1);
    if (nproc > 0)
        set_limit(RLIMIT_NPROC, nproc, nproc);
    if (iso->rlimit_as_mb > 0) {
        /*
         * The child inherits the worker's whole address space (other
         * threads' stacks, malloc arenas, librdkafka buffers), so the limit
         * is what the handler may add on top of it.
         */
        uint64_t vm = self_vm_bytes();
        rlim_t lim = (rlim_t)(vm + (uint64_t)iso->rlimit_as_mb * 1024u * 1024u);
        set_limit(RLIMIT_AS, lim, lim);
    }
}

static void child_signals(void)
{
    sigset_t all;
    int s;
    /*
     * The worker's handlers (stop flag, etc.) mean nothing here: a child
     * signalled to stop should simply die, so the parent sees it.
     */
    for (s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (sigaction(s, NULL, &sa) != 0)
            continue;
        if ((sa.sa_flags & SA_SIGINFO) || (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = SIG_DFL;
            (void)sigaction(s, &sa, NULL);
        }
    }
    /* the forking thread may block signals the child must feel (SIGXCPU, SIGTERM) */
    sigemptyset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, NULL);
}

/* Decode one request into `ev`; pointers refer into `buf`, which the call NUL-terminates. */
static int child_decode(unsigned char *buf, size_t len, uint32_t *seq, uint32_t *idx,
                        uint32_t *phase, hookd_event_t *ev)
{
    const char **fields[ISO_FIELDS] = {
        &ev->id,  &ev->time,        &ev->source,          &ev->certificate_name, &ev->order_name,
        &ev->csr, &ev->certificate, &ev->certificate_raw, &ev->poll_identifier,  &ev->error,
    };
    size_t off = 24;
    int i;

    if (len < off || get_u32(buf) != ISO_REQ_MAGIC)
        return -1;
    *seq = get_u32(buf + 4);
    *idx = get_u32(buf + 8);
    *phase = get_u32(buf + 12);
    memset(ev, 0, sizeof(*ev));
    ev->type = (hookd_event_type_t)get_u32(buf + 16);
    ev->format = (hookd_event_format_t)get_u32(buf + 20);
    for (i = 0; i < ISO_FIELDS; i++) {
        uint32_t n;
        if (len - off < 4)
            return -1;
        n = get_u32(buf + off);
        /* the length word itself becomes the previous string's NUL terminator */
        buf[off] = '\0';
        off += 4;
        if (n == ISO_NULL) {
            *fields[i] = NULL;
            continue;
        }
        if (len - off < n + 1u) /* +1: room for the terminator */
            return -1;
        *fields[i] = (const char *)buf + off;
        off += n;
    }
    if (off != len - 1)
        return -1;
    buf[off] = '\0';
    return 0;
}

static void child_serve(hookd_isolate_t *iso, int sock)
{
    hookd_invocation_t *out = malloc(sizeof(*out));
    if (out == NULL)
        return;
    for (;;) {
        unsigned char hdr[4];
        unsigned char *buf;
        uint32_t len, seq, idx, phase, err_len;
        unsigned char rsp[ISO_RSP_MAX + 4];
        struct rusage ru;
        uint64_t cpu_us;
        hookd_event_t ev;
        int r = child_read_full(sock, hdr, 4);

        if (r == 0)
            break; /* the parent closed: we are done */
        if (r < 0)
            break;
        len = get_u32(hdr);
        if (len < 24 || len > ISO_REQ_MAX)
            break;
        /* one spare byte so the last string gets a terminator */
        buf = malloc((size_t)len + 1);
        if (buf == NULL)
            break;
        if (child_read_full(sock, buf, len) != 1) {
            free(buf);
            break;
        }
        buf[len] = 0;
        if (child_decode(buf, (size_t)len + 1, &seq, &idx, &phase, &ev) != 0) {
            free(buf);
            break;
        }

        memset(out, 0, sizeof(*out));
        hookd_invoke_call_local(iso->inv, idx, (hookd_phase_t)phase, &ev, out);
        free(buf);

        getrusage(RUSAGE_SELF, &ru);
        cpu_us = rusage_cpu_us(&ru);
        out->error[sizeof(out->error) - 1] = '\0';
        err_len = (uint32_t)strlen(out->error);
        put_u32(rsp, ISO_RSP_FIXED + err_len);
        put_u32(rsp + 4, ISO_RSP_MAGIC);
        put_u32(rsp + 8, seq);
        put_u32(rsp + 12, (uint32_t)out->outcome);
        put_u32(rsp + 16, (uint32_t)out->error_class);
        memcpy(rsp + 20, &cpu_us, 8);
        put_u32(rsp + 28, err_len);
        memcpy(rsp + 32, out->error, err_len);
        if (child_write_full(sock, rsp, 4 + ISO_RSP_FIXED + err_len) != 0)
            break;
    }
    free(out);
}

static void child_main(hookd_isolate_t *iso, int sock, pid_t parent, rlim_t nproc)
{
    int fl;
    /*
     * A session (and process group) of our own: the parent kills the whole
     * group at a deadline, so whatever the handler forked goes too.
     */
    (void)setsid();
    /*
     * Die with the thread that forked us, SIGKILL of the worker included.
     * `parent` was taken before fork(): had the worker died before the
     * prctl, we were re-parented already and getppid() tells.
     */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return;
    (void)prctl(PR_SET_NAME, "hookd-isolate");
    child_signals();
    child_sweep_fds(sock);
    fl = fcntl(sock, F_GETFL);
    if (fl >= 0)
        (void)fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
    child_limits(iso, nproc);
    child_serve(iso, sock);
}

/* ---- the parent --------------------------------------------------------- */

/*
 * Tasks (threads included) the real user of this process runs now:
 * RLIMIT_NPROC counts them all, so the child's limit must start there.
 */
static long user_task_count(uid_t uid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long total = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], line[256];
        FILE *f;
        long threads = 0;
        bool mine = false;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            unsigned long ruid;
            if (sscanf(line, "Uid: %lu", &ruid) == 1)
                mine = (uid_t)ruid == uid;
            else if (sscanf(line, "Threads: %ld", &threads) == 1)
                break;
        }
        fclose(f);
        if (mine)
            total += threads > 0 ? threads : 1;
    }
    closedir(d);
    return total;
}

/* Close our ends of a child that is already reaped (or never started). */
static void forget_child(hookd_isolate_t *iso)
{
    iso->pid = 0;
    if (iso->sock >= 0)
        close(iso->sock);
    iso->sock = -1;
    if (iso->pidfd >= 0)
        close(iso->pidfd);
    iso->pidfd = -1;
    iso->uses = 0;
    iso->stats.pid = 0;
}

/*
 * Kill the child's process group (and, with `kill_child`, the child), reap
 * it; *status gets its wait status.
 */
static void reap_child(hookd_isolate_t *iso, bool kill_child, int *status)
{
    struct rusage ru;
    int st = 0;
    if (iso->pid <= 0)
        return;
    /*
     * The group is signalled before the reap: while the child is unreaped
     * (running or a zombie) its pid, which is the group id, cannot be
     * reused, so the signal cannot reach an unrelated process group.
     */
    (void)kill(-iso->pid, SIGKILL);
    if (kill_child)
        (void)kill(iso->pid, SIGKILL);
    memset(&ru, 0, sizeof(ru));
    while (wait4(iso->pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    iso->last_cpu_us = rusage_cpu_us(&ru);
    if (status != NULL)
        *status = st;
    forget_child(iso);
}

static int spawn_child(hookd_isolate_t *iso, char *errstr, size_t errstr_size)
{
    int sv[2];
    pid_t pid, parent = getpid();
    rlim_t nproc = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(errstr, errstr_size, "socketpair: %s", strerror(errno));
        return -1;
    }
    {
        /*
         * Scanning /proc costs about a millisecond; the count moves slowly
         * (threads, other workers), so one scan per second is plenty.
         */
        uint64_t t = hookd_now_ms();
        if (iso->nproc_base <= 0 || t - iso->nproc_at_ms >= 1000) {
            iso->nproc_base = user_task_count(getuid());
            iso->nproc_at_ms = t;
        }
        if (iso->nproc_base > 0)
            nproc = (rlim_t)iso->nproc_base + ISO_NPROC_EXTRA;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(errstr, errstr_size, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        child_main(iso, sv[1], parent, nproc);
        /*
         * _exit, not exit: this is a copy of the worker; its atexit handlers
         * and stdio buffers belong to the parent.
         */
        _exit(0);
    }
    close(sv[1]);
    iso->pid = pid;
    iso->sock = sv[0];
    iso->pidfd = sys_pidfd_open(pid);
    iso->uses = 0;
    iso->stats.spawned++;
    iso->stats.pid = pid;
    {
        int fl = fcntl(iso->sock, F_GETFL);
        if (fl >= 0)
            (void)fcntl(iso->sock, F_SETFL, fl | O_NONBLOCK);
    }
    return 0;
}

static pthread_once_t root_warning_once = PTHREAD_ONCE_INIT;

static void root_warning(void)
{
    hookd_log_warn("process isolation running as root: RLIMIT_NPROC does not bind root, so a "
                   "forking handler is stopped only by hook_timeout_ms; run as an "
                   "unprivileged user");
}

hookd_isolate_t *hookd_isolate_create(hookd_invoke_t *inv, const hookd_config_t *cfg, char *errstr,
                                      size_t errstr_size)
{
    hookd_isolate_t *iso = calloc(1, sizeof(*iso));
    char err[256];

    if (iso == NULL) {
        snprintf(errstr, errstr_size, "process isolation: out of memory");
        return NULL;
    }
    iso->inv = inv;
    iso->timeout_ms = cfg->hook_timeout_ms > 0 ? cfg->hook_timeout_ms : ISO_DEFAULT_TIMEOUT_MS;
    iso->rlimit_as_mb = cfg->hook_rlimit_as_mb;
    iso->rlimit_cpu_s = cfg->hook_rlimit_cpu_s;
    iso->rlimit_nofile = cfg->hook_rlimit_nofile;
    iso->sock = -1;
    iso->pidfd = -1;
    if (getuid() == 0 || geteuid() == 0)
        pthread_once(&root_warning_once, root_warning);
    if (spawn_child(iso, err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "process isolation: cannot start a child: %s", err);
        free(iso);
        return NULL;
    }
    return iso;
}

void hookd_isolate_destroy(hookd_isolate_t *iso)
{
    if (iso == NULL)
        return;
    reap_child(iso, true, NULL);
    free(iso);
}

void hookd_isolate_set_max_uses(hookd_isolate_t *iso, uint32_t max_uses)
{
    iso->max_uses = max_uses;
}

void hookd_isolate_stats(const hookd_isolate_t *iso, hookd_isolate_stats_t *st)
{
    *st = iso->stats;
}

/*
 * Has the child exited on its own (between invocations), or is it on its
 * way out? Reaps it if so.
 */
static bool child_gone(hookd_isolate_t *iso)
{
    siginfo_t si;
    struct pollfd p;
    int st = 0;
    if (iso->pid <= 0)
        return true;
    /* WNOWAIT: look without reaping, so reap_child() can still kill its group safely */
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)iso->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != iso->pid) {
        /*
         * Not reapable, but its end of the socket says something while no
         * request is outstanding: EOF, or bytes nobody asked for. A dying
         * process of several threads closes its descriptors a moment before
         * it becomes reapable; a live one broke the protocol between calls.
         * Either way it would not answer the next request, and that event
         * would be blamed: replace it now.
         */
        p.fd = iso->sock;
        p.events = POLLIN;
        p.revents = 0;
        if (iso->sock < 0 || poll(&p, 1, 0) != 1)
            return false;
        hookd_log_warn("isolated handler child %d closed its socket or wrote unasked between "
                       "invocations; starting a new one",
                       (int)iso->pid);
        reap_child(iso, true, &st);
        return true;
    }
    hookd_log_warn("isolated handler child %d ended between invocations (%s %d); starting a "
                   "new one",
                   (int)iso->pid, si.si_code == CLD_EXITED ? "exit status" : "signal",
                   si.si_status);
    reap_child(iso, false, &st);
    return true;
}

static unsigned char *encode_request(uint32_t seq, size_t idx, hookd_phase_t phase,
                                     const hookd_event_t *ev, size_t *len_out)
{
    const char *fields[ISO_FIELDS] = {
        ev->id,  ev->time,        ev->source,          ev->certificate_name, ev->order_name,
        ev->csr, ev->certificate, ev->certificate_raw, ev->poll_identifier,  ev->error,
    };
    size_t total = 4 + 24, off, i;
    unsigned char *buf;

    for (i = 0; i < ISO_FIELDS; i++) {
        size_t n = fields[i] ? strlen(fields[i]) : 0;
        if (n >= ISO_NULL)
            return NULL;
        total += 4 + n;
    }
    if (total - 4 > ISO_REQ_MAX)
        return NULL;
    buf = malloc(total);
    if (buf == NULL)
        return NULL;
    put_u32(buf, (uint32_t)(total - 4));
    put_u32(buf + 4, ISO_REQ_MAGIC);
    put_u32(buf + 8, seq);
    put_u32(buf + 12, (uint32_t)idx);
    put_u32(buf + 16, (uint32_t)phase);
    put_u32(buf + 20, (uint32_t)ev->type);
    put_u32(buf + 24, (uint32_t)ev->format);
    off = 28;
    for (i = 0; i < ISO_FIELDS; i++) {
        size_t n = fields[i] ? strlen(fields[i]) : 0;
        put_u32(buf + off, fields[i] ? (uint32_t)n : ISO_NULL);
        off += 4;
        if (n > 0)
            memcpy(buf + off, fields[i], n);
        off += n;
    }
    *len_out = total;
    return buf;
}

/* What a dead child's wait status means for the invocation. */
static void classify_death(const hookd_isolate_t *iso, int status, hookd_invocation_t *out)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        const char *desc = sigdescr_np(sig);
        /* SIGXCPU at the soft CPU limit, SIGKILL at the hard one (SIGXCPU ignored) */
        if (sig == SIGXCPU || (sig == SIGKILL && iso->rlimit_cpu_s > 0 &&
                               iso->last_cpu_us >= (uint64_t)iso->rlimit_cpu_s * 1000000u)) {
            fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_TIMEOUT,
                 "handler exceeded its CPU time limit (%ld s): killed by SIG%s", iso->rlimit_cpu_s,
                 abbrev ? abbrev : "?");
            return;
        }
        fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED, "handler crashed: killed by SIG%s (%s)",
             abbrev ? abbrev : "?", desc ? desc : "unknown signal");
        return;
    }
    if (WIFEXITED(status)) {
        fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED,
             "handler exited the isolated process with status %d", WEXITSTATUS(status));
        return;
    }
    fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED, "isolated process ended (status 0x%x)",
         (unsigned)status);
}

/* Wait (until `deadline`) for the child to become reapable after it closed its socket. */
static bool wait_exit(hookd_isolate_t *iso, uint64_t deadline)
{
    for (;;) {
        int left = remaining_ms(deadline);
        if (iso->pidfd >= 0) {
            struct pollfd p = {iso->pidfd, POLLIN, 0};
            int r = poll(&p, 1, left);
            if (r > 0)
                return true;
            if (r < 0 && errno == EINTR)
                continue;
            return false;
        } else {
            /* no pidfd: look every 10 ms */
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)iso->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == iso->pid)
                return true;
            if (left == 0)
                return false;
            poll(NULL, 0, left < 10 ? left : 10);
        }
    }
}

void hookd_isolate_call(hookd_isolate_t *iso, size_t idx, hookd_phase_t phase,
                        const hookd_event_t *ev, hookd_invocation_t *out)
{
    unsigned char rsp[4 + ISO_RSP_MAX];
    size_t rsp_got = 0, rsp_want = 4, req_len = 0, req_sent = 0;
    unsigned char *req = NULL;
    uint64_t deadline;
    uint32_t seq;
    char err[256];
    int status = 0;

    memset(out, 0, sizeof(*out));

    if (iso->pid > 0 && iso->max_uses > 0 && iso->uses >= iso->max_uses) {
        reap_child(iso, true, NULL);
        iso->stats.recycled++;
    }
    if (iso->pid > 0)
        (void)child_gone(iso);
    if (iso->pid <= 0 && spawn_child(iso, err, sizeof(err)) != 0) {
        /* fork failing is a shortage (EAGAIN, ENOMEM): worth a retry later */
        fill(out, HOOKD_RETRY, HOOKD_ERRCLASS_NONE, "cannot start an isolated process: %s", err);
        return;
    }

    seq = ++iso->seq;
    req = encode_request(seq, idx, phase, ev, &req_len);
    if (req == NULL) {
        fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, "event too large for isolation");
        return;
    }
    iso->stats.calls++;
    iso->uses++;
    deadline = hookd_now_ms() + (uint64_t)iso->timeout_ms;

    for (;;) {
        struct pollfd p[2];
        int n = 0, r, left;

        p[n].fd = iso->sock;
        p[n].events = req_sent < req_len ? POLLOUT : POLLIN;
        p[n].revents = 0;
        n++;
        if (iso->pidfd >= 0) {
            p[n].fd = iso->pidfd;
            p[n].events = POLLIN;
            p[n].revents = 0;
            n++;
        }
        left = remaining_ms(deadline);
        if (left == 0)
            goto timeout;
        /* without a pidfd a death is seen as EOF on the socket */
        r = poll(p, (nfds_t)n, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED, "poll: %s", strerror(errno));
            goto kill_child;
        }
        if (r == 0)
            goto timeout;

        if (req_sent < req_len && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(iso->sock, req + req_sent, req_len - req_sent, MSG_NOSIGNAL);
            if (w > 0)
                req_sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                goto died; /* EPIPE/ECONNRESET: the child is gone */
        } else if (req_sent == req_len && (p[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t rd = recv(iso->sock, rsp + rsp_got, rsp_want - rsp_got, 0);
            if (rd == 0 || (rd < 0 && errno != EAGAIN && errno != EINTR))
                goto died;
            if (rd > 0) {
                rsp_got += (size_t)rd;
                if (rsp_got == 4 && rsp_want == 4) {
                    uint32_t len = get_u32(rsp);
                    if (len < ISO_RSP_FIXED || len > ISO_RSP_MAX) {
                        fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED,
                             "isolated process broke the protocol (length %u)", (unsigned)len);
                        goto kill_child;
                    }
                    rsp_want = 4 + len;
                }
                if (rsp_got == rsp_want && rsp_want > 4)
                    break;
            }
        } else if (n > 1 && (p[1].revents & POLLIN)) {
            goto died;
        }
    }
    free(req);
    req = NULL;

    /* A complete response: check everything, the child is not trusted. */
    {
        uint32_t magic = get_u32(rsp + 4), rseq = get_u32(rsp + 8);
        uint32_t outcome = get_u32(rsp + 12), cls = get_u32(rsp + 16);
        uint32_t err_len = get_u32(rsp + 28);
        uint64_t cpu_us;
        memcpy(&cpu_us, rsp + 20, 8);
        if (magic != ISO_RSP_MAGIC || rseq != seq || err_len != rsp_want - 4 - ISO_RSP_FIXED ||
            err_len >= HOOKD_ERROR_MAX ||
            (outcome != HOOKD_OK && outcome != HOOKD_FAIL && outcome != HOOKD_RETRY) ||
            (cls != HOOKD_ERRCLASS_NONE && cls != HOOKD_ERRCLASS_HOOK_FAILED)) {
            fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_CRASHED,
                 "isolated process broke the protocol");
            goto kill_child;
        }
        out->outcome = (hookd_outcome_t)outcome;
        out->error_class = outcome == HOOKD_FAIL ? HOOKD_ERRCLASS_HOOK_FAILED : HOOKD_ERRCLASS_NONE;
        memcpy(out->error, rsp + 32, err_len);
        out->error[err_len] = '\0';
        /*
         * RLIMIT_CPU counts the child's whole life: replace it once half the
         * budget is spent, so each invocation keeps at least half for itself.
         */
        if (iso->rlimit_cpu_s > 0 && cpu_us >= (uint64_t)iso->rlimit_cpu_s * 500000u) {
            reap_child(iso, true, NULL);
            iso->stats.recycled++;
        }
    }
    return;

died:
    /* EOF or pidfd: the child is (about to be) gone; give it until the deadline to finish */
    free(req);
    req = NULL;
    if (!wait_exit(iso, deadline))
        goto timeout;
    reap_child(iso, false, &status);
    iso->stats.crashed++;
    classify_death(iso, status, out);
    if (out->error_class == HOOKD_ERRCLASS_HOOK_TIMEOUT) {
        iso->stats.crashed--;
        iso->stats.timed_out++;
    }
    return;

timeout:
    free(req);
    req = NULL;
    reap_child(iso, true, NULL);
    iso->stats.timed_out++;
    fill(out, HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_TIMEOUT,
         "handler overran its deadline of %d ms: killed", iso->timeout_ms);
    return;

kill_child:
    free(req);
    reap_child(iso, true, NULL);
    iso->stats.crashed++;
}
