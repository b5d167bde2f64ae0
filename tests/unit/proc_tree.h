/* SPDX-License-Identifier: MIT */
/*
 * Process-tree bookkeeping for tests that check that nothing outlives a
 * hook or a worker: read /proc, record processes as (pid, start time) so
 * that a reused pid is never mistaken for a survivor, and wait with a
 * bounded deadline (polling /proc, never a fixed sleep) until they are
 * gone. Header-only; Linux /proc only.
 */
#ifndef HOOKD_TEST_PROC_TREE_H
#define HOOKD_TEST_PROC_TREE_H

#include <dirent.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define PT_MAX 256

typedef struct pt_proc {
    pid_t pid;
    unsigned long long start; /* field 22 of /proc/PID/stat: clock ticks after boot */
    pid_t ppid, pgid, sid;
    char state;
    char comm[32];
} pt_proc_t;

typedef struct pt_set {
    pt_proc_t p[PT_MAX];
    size_t n;
} pt_set_t;

static inline long long pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read /proc/PID/stat; false when the process does not exist. */
static inline bool pt_read(pid_t pid, pt_proc_t *out)
{
    char path[64], buf[1024], *open_paren, *close_paren;
    FILE *f;
    size_t n;
    int ppid, pgrp, sid;
    unsigned long long start;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    open_paren = strchr(buf, '(');
    close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return false;
    memset(out, 0, sizeof(*out));
    out->pid = pid;
    snprintf(out->comm, sizeof(out->comm), "%.*s", (int)(close_paren - open_paren - 1),
             open_paren + 1);
    /* after the comm: state ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads itrealvalue starttime */
    if (sscanf(close_paren + 2,
               "%c %d %d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &out->state, &ppid, &pgrp, &sid, &start) != 5)
        return false;
    out->ppid = (pid_t)ppid;
    out->pgid = (pid_t)pgrp;
    out->sid = (pid_t)sid;
    out->start = start;
    return true;
}

/* Is this very process (same pid, same start time) still there and not a zombie? */
static inline bool pt_alive(const pt_proc_t *p)
{
    pt_proc_t now;
    return pt_read(p->pid, &now) && now.start == p->start && now.state != 'Z' && now.state != 'X';
}

static inline bool pt_has(const pt_set_t *s, pid_t pid)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        if (s->p[i].pid == pid)
            return true;
    return false;
}

static inline void pt_add(pt_set_t *s, const pt_proc_t *p)
{
    if (s->n < PT_MAX && !pt_has(s, p->pid))
        s->p[s->n++] = *p;
}

/* Every process now in /proc, into all[] (at most PT_MAX * 8). */
static inline size_t pt_snapshot(pt_proc_t *all, size_t cap)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < cap) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (pt_read((pid_t)atoi(e->d_name), &all[n]))
            n++;
    }
    closedir(d);
    return n;
}

/*
 * Add the living descendants of `root` (not root itself) to `s`; also any
 * process whose process group or session is that of a descendant that
 * leads its own (a command's group, an isolation child's session), when
 * `groups` is set. Returns how many of them are named `comm` (NULL: 0).
 */
static inline size_t pt_descendants(pid_t root, pt_set_t *s, bool groups, const char *comm)
{
    static pt_proc_t all[PT_MAX * 8];
    size_t n = pt_snapshot(all, PT_MAX * 8), i, named = 0;
    pt_set_t tree;
    bool grew = true;

    tree.n = 0;
    while (grew) {
        grew = false;
        for (i = 0; i < n; i++) {
            if (all[i].state == 'Z' || pt_has(&tree, all[i].pid) || all[i].pid == root)
                continue;
            if (all[i].ppid == root || pt_has(&tree, all[i].ppid)) {
                pt_add(&tree, &all[i]);
                grew = true;
            }
        }
    }
    if (groups) {
        size_t leaders = tree.n;
        for (i = 0; i < n; i++) {
            size_t k;
            if (all[i].state == 'Z' || all[i].pid == root)
                continue;
            for (k = 0; k < leaders; k++)
                if ((tree.p[k].pgid == tree.p[k].pid && all[i].pgid == tree.p[k].pid) ||
                    (tree.p[k].sid == tree.p[k].pid && all[i].sid == tree.p[k].pid))
                    pt_add(&tree, &all[i]);
        }
    }
    for (i = 0; i < tree.n; i++) {
        pt_add(s, &tree.p[i]);
        if (comm != NULL && strcmp(tree.p[i].comm, comm) == 0)
            named++;
    }
    return named;
}

/*
 * Wait until no process of `s` is alive and, for every process of `s`
 * that led its own process group or session, no process is left in that
 * group or session. Returns the milliseconds it took, or -1 after
 * timeout_ms with the survivors printed to stderr.
 */
static inline long long pt_wait_gone(const pt_set_t *s, int timeout_ms)
{
    static pt_proc_t all[PT_MAX * 8];
    long long t0 = pt_now_ms(), end = t0 + timeout_ms;
    for (;;) {
        size_t i, k, n, left = 0;
        for (i = 0; i < s->n; i++)
            if (pt_alive(&s->p[i]))
                left++;
        n = pt_snapshot(all, PT_MAX * 8);
        for (i = 0; i < n; i++) {
            if (all[i].state == 'Z')
                continue;
            for (k = 0; k < s->n; k++)
                if ((s->p[k].pgid == s->p[k].pid && all[i].pgid == s->p[k].pid) ||
                    (s->p[k].sid == s->p[k].pid && all[i].sid == s->p[k].pid)) {
                    /* a member of a recorded group, started after the record */
                    if (!pt_has(s, all[i].pid))
                        left++;
                    break;
                }
        }
        if (left == 0)
            return pt_now_ms() - t0;
        if (pt_now_ms() >= end) {
            for (i = 0; i < s->n; i++)
                if (pt_alive(&s->p[i]))
                    fprintf(stderr, "survivor: pid %d (%s), pgid %d, sid %d\n", (int)s->p[i].pid,
                            s->p[i].comm, (int)s->p[i].pgid, (int)s->p[i].sid);
            return -1;
        }
        poll(NULL, 0, 5);
    }
}

/*
 * Poll until at least `want` descendants of `root` named `comm` run,
 * recording the whole tree into `s` (the last snapshot). False after
 * timeout_ms.
 */
static inline bool pt_wait_descendants(pid_t root, const char *comm, size_t want, pt_set_t *s,
                                       int timeout_ms)
{
    long long end = pt_now_ms() + timeout_ms;
    for (;;) {
        s->n = 0;
        if (pt_descendants(root, s, true, comm) >= want)
            return true;
        if (pt_now_ms() >= end)
            return false;
        poll(NULL, 0, 5);
    }
}

#endif /* HOOKD_TEST_PROC_TREE_H */
