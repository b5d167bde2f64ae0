/* SPDX-License-Identifier: MIT */
/*
 * python: runs an acme2certifier hook module (a `Hooks(logger)` class with
 * pre_hook, success_hook and post_hook) unchanged, in CPython embedded in
 * the worker.
 *
 * Keys ([Hooks]):
 *   python_hooks_module      dotted module name or path of a .py file, as
 *                            acme2certifier's hooks_module / hooks_file (required)
 *   python_path              extra sys.path entries, ':'-separated (a venv's
 *                            site-packages: its .pth files are honoured)
 *   python_hooks_per_event   true: a new Hooks(logger) for every event, as
 *                            acme2certifier makes one per request; default
 *                            false: one per handler instance
 *   python_log_level         level of the logger handed to Hooks (debug, info,
 *                            warning, error; default info, acme2certifier's
 *                            `debug: False`)
 *   python_init_timeout_ms   how long the start-up check may take (default 60000)
 * and every other [Hooks] key, which the module reads through
 * acme2certifier's load_config(): the handler writes the [Hooks] section the
 * worker holds (its handler keys) to a private file (mode 0600, removed at
 * fini) and points ACME_SRV_CONFIGFILE at it before Hooks(logger) runs.
 *
 * Where the interpreter lives. init never starts Python in the worker: with
 * `isolation = process` the worker forks its per-thread child after init,
 * and a process holding an initialised interpreter (its GIL, its threads'
 * states) must not be forked. init checks the module in a short-lived
 * forked process instead (import + Hooks(logger), the traceback's last line
 * on failure, so --check-config refuses a module that does not load), and
 * the interpreter is started at the first phase call in the process that
 * makes it: the isolated child (one interpreter per handler thread, so the
 * threads run Python in parallel) or, with `isolation = none`, the worker
 * itself (one interpreter for all threads: one phase call at a time, the
 * GIL). It is never finalised: extension modules (cryptography's among
 * them) cannot be initialised twice in one process.
 *
 * A phase call maps any exception, SystemExit and KeyboardInterrupt
 * included, to HOOKD_FAIL with "<ExceptionType>: <message>"; a hang is the
 * isolation's hook_timeout. Python's own signal handlers are not installed.
 */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <acme_hookd/hook.h>

#ifndef HOOKD_PYTHON_HOME
#define HOOKD_PYTHON_HOME "/usr"
#endif

#define PYH_ERR 1024
#define PYH_DEFAULT_INIT_TIMEOUT_MS 60000

static const char *const python_config_keys[] = {"*", NULL};

typedef struct pyh {
    char *module;
    char *path;
    char *cfgfile; /* the effective [Hooks], ACME_SRV_CONFIGFILE */
    pid_t cfg_owner;
    int per_event;
    int log_level; /* Python's numbers: 10 debug ... 40 error */
    long init_timeout_ms;
    pid_t owner;    /* the process in which obj/cm live */
    PyObject *obj;  /* what phase methods are called on (__enter__'s result) */
    PyObject *cm;   /* the instance when it is a context manager, else NULL */
    char *event_id; /* per_event: the event obj was made for */
} pyh_t;

static void pyh_free(pyh_t *st);

/* The interpreter of this process. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t g_py_pid;              /* process that started it, 0: none */
static PyObject *g_boot;            /* the bootstrap module's namespace */
static __thread hookd_ctx_t *t_ctx; /* the call being served on this thread */

/* ---- the bootstrap, run once per interpreter ----------------------------- */

static const char boot_src[] =
    "import importlib, importlib.util, logging, os, sys, traceback\n"
    "import _hookd\n"
    "\n"
    "def setup(paths):\n"
    "    import site\n"
    "    for p in reversed(paths):\n"
    "        before = list(sys.path)\n"
    "        site.addsitedir(p)\n"
    "        added = [x for x in sys.path if x not in before] or [p]\n"
    "        for x in added:\n"
    "            if x in sys.path: sys.path.remove(x)\n"
    "        sys.path[0:0] = added\n"
    "\n"
    "class _Handler(logging.Handler):\n"
    "    def emit(self, record):\n"
    "        try:\n"
    "            msg = self.format(record)\n"
    "        except Exception as e:\n"
    "            msg = '%s (message not formatted: %s)' % (record.msg, e)\n"
    "        _hookd.log(record.levelno, msg)\n"
    "\n"
    "def logger(level):\n"
    "    lg = logging.getLogger('acme_hookd.python')\n"
    "    if not any(isinstance(h, _Handler) for h in lg.handlers):\n"
    "        lg.addHandler(_Handler())\n"
    "        lg.propagate = False\n"
    "    lg.setLevel(level)\n"
    "    return lg\n"
    "\n"
    "_files = {}\n"
    "def load(ref):\n"
    "    if ref.endswith('.py') or '/' in ref:\n"
    "        path = os.path.abspath(ref)\n"
    "        if path not in _files:\n"
    "            name = os.path.splitext(os.path.basename(path))[0]\n"
    "            spec = importlib.util.spec_from_file_location(name, path)\n"
    "            if spec is None:\n"
    "                raise ImportError('cannot load %s' % ref)\n"
    "            mod = importlib.util.module_from_spec(spec)\n"
    "            spec.loader.exec_module(mod)\n"
    "            _files[path] = mod\n"
    "        return _files[path]\n"
    "    return importlib.import_module(ref)\n"
    "\n"
    "def instance(ref, cfgfile, level):\n"
    "    mod = load(ref)\n"
    "    cls = getattr(mod, 'Hooks', None)\n"
    "    if cls is None:\n"
    "        raise AttributeError('module %s has no class Hooks' % ref)\n"
    "    os.environ['ACME_SRV_CONFIGFILE'] = cfgfile\n"
    "    h = cls(logger(level))\n"
    "    if hasattr(h, '__enter__') and hasattr(h, '__exit__'):\n"
    "        return (h, h.__enter__())\n"
    "    return (None, h)\n"
    "\n"
    "def probe(ref, cfgfile, level):\n"
    "    stage = 'import'\n"
    "    try:\n"
    "        load(ref)\n"
    "        stage = 'Hooks(logger)'\n"
    "        cm, h = instance(ref, cfgfile, level)\n"
    "        if cm is not None:\n"
    "            stage = '__exit__'\n"
    "            cm.__exit__(None, None, None)\n"
    "    except BaseException as e:\n"
    "        return '%s failed: %s' % (stage, traceback.format_exception_only(type(e), "
    "e)[-1].strip())\n"
    "    return None\n"
    "\n"
    "def error_text(e):\n"
    "    msg = str(e)\n"
    "    return '%s: %s' % (type(e).__name__, msg) if msg else type(e).__name__\n";

/* _hookd.log(levelno, message): a line through hookd_log of the current call. */
static PyObject *hookd_py_log(PyObject *self, PyObject *args)
{
    int levelno;
    const char *msg;
    hookd_log_level_t lv;
    (void)self;
    if (!PyArg_ParseTuple(args, "is", &levelno, &msg))
        return NULL;
    lv = levelno >= 40   ? HOOKD_LOG_ERROR
         : levelno >= 30 ? HOOKD_LOG_WARNING
         : levelno >= 20 ? HOOKD_LOG_INFO
                         : HOOKD_LOG_DEBUG;
    if (t_ctx != NULL)
        hookd_log(t_ctx, lv, "%s", msg);
    else /* a thread of the module's own, outside any call */
        fprintf(stderr, "acme-hookd python (no call): %s\n", msg);
    Py_RETURN_NONE;
}

static PyMethodDef hookd_py_methods[] = {
    {"log", hookd_py_log, METH_VARARGS, "log one line through the worker"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hookd_py_module = {
    PyModuleDef_HEAD_INIT, "_hookd", NULL, -1, hookd_py_methods, NULL, NULL, NULL, NULL,
};

static PyObject *hookd_py_init(void)
{
    return PyModule_Create(&hookd_py_module);
}

/* The pending exception as "<Type>: <message>", cleared. Needs the GIL. */
static void exc_text(char *buf, size_t size)
{
    PyObject *type, *value, *tb, *s = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && g_boot != NULL) {
        PyObject *fn = PyDict_GetItemString(g_boot, "error_text");
        if (fn != NULL)
            s = PyObject_CallOneArg(fn, value);
    }
    if (s != NULL && PyUnicode_Check(s)) {
        const char *u = PyUnicode_AsUTF8(s);
        snprintf(buf, size, "%s", u ? u : "exception");
    } else {
        snprintf(buf, size, "%s", type ? ((PyTypeObject *)type)->tp_name : "exception");
    }
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Split python_path (':' or newlines) into a list. New reference or NULL. */
static PyObject *path_list(const char *path)
{
    PyObject *list = PyList_New(0);
    const char *p = path;
    if (list == NULL)
        return NULL;
    while (p != NULL && *p) {
        size_t n = strcspn(p, ":\n");
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            n--;
        if (n > 0) {
            PyObject *s = PyUnicode_DecodeFSDefaultAndSize(p, (Py_ssize_t)n);
            if (s == NULL || PyList_Append(list, s) != 0) {
                Py_XDECREF(s);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(s);
        }
        p += strcspn(p, ":\n");
        if (*p)
            p++;
    }
    return list;
}

/*
 * Start the interpreter in this process and run the bootstrap; returns with
 * the GIL released. 0, or -1 with the reason in err.
 */
static int py_start(const pyh_t *st, char *err, size_t errsz)
{
    PyConfig config;
    PyStatus status;
    PyObject *mod, *code, *res, *paths, *fn;

    if (PyImport_AppendInittab("_hookd", hookd_py_init) != 0) {
        snprintf(err, errsz, "cannot register the _hookd module");
        return -1;
    }
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* the worker owns SIGINT, SIGTERM, ... */
    config.parse_argv = 0;
    config.site_import = 0; /* like a venv: only the stdlib and python_path */
    config.user_site_directory = 0;
    config.safe_path = 1;
    if (getenv("PYTHONHOME") == NULL) {
        status = PyConfig_SetBytesString(&config, &config.home, HOOKD_PYTHON_HOME);
        if (PyStatus_Exception(status))
            goto status_error;
    }
    status = PyConfig_SetBytesString(&config, &config.program_name, "acme-hookd");
    if (PyStatus_Exception(status))
        goto status_error;
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        goto status_error;
    PyConfig_Clear(&config);

    mod = PyImport_AddModule("_acme_hookd"); /* borrowed */
    code = mod ? Py_CompileString(boot_src, "<acme-hookd python handler>", Py_file_input) : NULL;
    if (code == NULL)
        goto py_error;
    g_boot = PyModule_GetDict(mod);
    Py_INCREF(g_boot);
    res = PyEval_EvalCode(code, g_boot, g_boot);
    Py_DECREF(code);
    if (res == NULL)
        goto py_error;
    Py_DECREF(res);
    paths = path_list(st->path);
    fn = PyDict_GetItemString(g_boot, "setup");
    res = paths && fn ? PyObject_CallOneArg(fn, paths) : NULL;
    Py_XDECREF(paths);
    if (res == NULL)
        goto py_error;
    Py_DECREF(res);
    (void)PyEval_SaveThread();
    return 0;

status_error:
    snprintf(err, errsz, "cannot start Python: %s%s%s", status.func ? status.func : "",
             status.func ? ": " : "", status.err_msg ? status.err_msg : "error");
    PyConfig_Clear(&config);
    return -1;

py_error : {
    char why[PYH_ERR];
    exc_text(why, sizeof(why));
    snprintf(err, errsz, "cannot set up Python (python_path '%.100s'): %.800s",
             st->path ? st->path : "", why);
}
    (void)PyEval_SaveThread();
    return -1;
}

/* ---- the effective [Hooks] for load_config() ---------------------------- */

/* One value as configparser reads it back: continuation lines indented. */
static void write_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        fputc(*v, f);
        if (*v == '\n')
            fputc('\t', f);
    }
}

static char *write_hooks_file(hookd_ctx_t *ctx, char *err, size_t errsz)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    const char *key, *value;
    size_t i;
    FILE *f;
    int fd;

    if (dir == NULL || !*dir)
        dir = "/tmp";
    if (asprintf(&path, "%s/acme-hookd-python-XXXXXX", dir) < 0) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    fd = mkostemp(path, O_CLOEXEC); /* mode 0600: the section may hold secrets */
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        free(path);
        return NULL;
    }
    fputs("# the [Hooks] section of the acme-hookd worker, for acme2certifier's load_config()\n"
          "[Hooks]\n",
          f);
    for (i = 0; (key = hookd_config_key_at(ctx, i, &value)) != NULL; i++) {
        fprintf(f, "%s = ", key);
        write_value(f, value ? value : "");
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

/* ---- the start-up check, in a forked process ------------------------------ */

static void probe_child(pyh_t *st, hookd_ctx_t *ctx, int fd)
{
    char msg[PYH_ERR] = "";
    t_ctx = ctx;
    if (py_start(st, msg, sizeof(msg)) == 0) {
        PyGILState_STATE g = PyGILState_Ensure();
        PyObject *fn = PyDict_GetItemString(g_boot, "probe");
        PyObject *r =
            fn ? PyObject_CallFunction(fn, "ssi", st->module, st->cfgfile, st->log_level) : NULL;
        if (r == NULL)
            exc_text(msg, sizeof(msg));
        else if (PyUnicode_Check(r))
            snprintf(msg, sizeof(msg), "%s", PyUnicode_AsUTF8(r));
        Py_XDECREF(r);
        PyGILState_Release(g);
    }
    /* The child ends here with _exit(), so nothing up the stack frees its
     * copy of the instance state: free it (the [Hooks] file stays, it
     * belongs to the parent's pid), or memcheck counts it lost. */
    pyh_free(st);
    if (msg[0] && write(fd, msg, strlen(msg)) < 0)
        _exit(3);
    _exit(msg[0] ? 1 : 0);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Import the module and make one Hooks(logger) in a process of its own.
 * 0, or -1 with the reason in err.
 */
static int probe(pyh_t *st, hookd_ctx_t *ctx, char *err, size_t errsz)
{
    char msg[PYH_ERR];
    size_t got = 0;
    int pfd[2], status = 0;
    int64_t deadline = mono_ms() + st->init_timeout_ms;
    pid_t pid, parent = getpid();
    int timed_out = 0;

    if (g_py_pid == parent) {
        /* the interpreter already runs here (isolation = none, a later
         * instance): check in it; a fork of this process could not use it */
        PyGILState_STATE g = PyGILState_Ensure();
        hookd_ctx_t *saved = t_ctx;
        PyObject *fn, *r;
        int rc = 0;
        t_ctx = ctx;
        fn = PyDict_GetItemString(g_boot, "probe");
        r = fn ? PyObject_CallFunction(fn, "ssi", st->module, st->cfgfile, st->log_level) : NULL;
        if (r == NULL) {
            exc_text(msg, sizeof(msg));
            rc = -1;
        } else if (PyUnicode_Check(r)) {
            snprintf(msg, sizeof(msg), "%s", PyUnicode_AsUTF8(r));
            rc = -1;
        }
        Py_XDECREF(r);
        t_ctx = saved;
        PyGILState_Release(g);
        if (rc != 0)
            snprintf(err, errsz, "python_hooks_module '%.100s': %.880s", st->module, msg);
        return rc;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errsz, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errsz, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        (void)setpgid(0, 0); /* a timeout kills what the module started too */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(2);
        probe_child(st, ctx, pfd[1]);
    }
    close(pfd[1]);
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int64_t left = deadline - mono_ms();
        ssize_t r;
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            timed_out = 1;
            break;
        }
        r = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(msg) - 1)
            break;
    }
    msg[got] = '\0';
    close(pfd[0]);
    if (timed_out) {
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        snprintf(err, errsz,
                 "python_hooks_module '%s': loading it did not finish within %ld ms "
                 "(python_init_timeout_ms)",
                 st->module, st->init_timeout_ms);
        return -1;
    }
    if (got > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (got == 0) {
            if (WIFSIGNALED(status))
                snprintf(msg, sizeof(msg), "the check process was killed by signal %d",
                         WTERMSIG(status));
            else
                snprintf(msg, sizeof(msg), "the check process exited with status %d",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        snprintf(err, errsz, "python_hooks_module '%.100s': %.880s", st->module, msg);
        return -1;
    }
    return 0;
}

/* ---- instances ---------------------------------------------------------- */

static int parse_level(const char *v)
{
    if (v == NULL)
        return 20;
    if (!strcasecmp(v, "debug"))
        return 10;
    if (!strcasecmp(v, "info"))
        return 20;
    if (!strcasecmp(v, "warning") || !strcasecmp(v, "warn"))
        return 30;
    if (!strcasecmp(v, "error"))
        return 40;
    return -1;
}

static void pyh_free(pyh_t *st)
{
    if (st == NULL)
        return;
    if (st->cfgfile != NULL && st->cfg_owner == getpid())
        unlink(st->cfgfile);
    free(st->cfgfile);
    free(st->module);
    free(st->path);
    free(st->event_id);
    free(st);
}

static hookd_outcome_t python_init(hookd_ctx_t *ctx, void **state)
{
    const char *module = hookd_config_get(ctx, "python_hooks_module");
    const char *path = hookd_config_get(ctx, "python_path");
    const char *level = hookd_config_get(ctx, "python_log_level");
    const char *timeout = hookd_config_get(ctx, "python_init_timeout_ms");
    const char *per_event = hookd_config_get(ctx, "python_hooks_per_event");
    char err[PYH_ERR];
    pyh_t *st;

    if (module == NULL || !*module) {
        hookd_set_error(ctx, "python: python_hooks_module is not set ([Hooks] "
                             "python_hooks_module = a module name or a .py file)");
        return HOOKD_FAIL;
    }
    if (hookd_config_key_at(ctx, 0, NULL) == NULL && hookd_config_get(ctx, "python_hooks_module")) {
        /* a worker before ABI 1.1 cannot list the section */
        hookd_set_error(ctx, "python: this worker cannot list the [Hooks] keys (ABI 1.1 needed)");
        return HOOKD_FAIL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->module = strdup(module)) == NULL ||
        (path != NULL && (st->path = strdup(path)) == NULL)) {
        pyh_free(st);
        hookd_set_error(ctx, "python: out of memory");
        return HOOKD_FAIL;
    }
    st->log_level = parse_level(level);
    if (st->log_level < 0) {
        hookd_set_error(ctx, "python: python_log_level '%s' is not debug, info, warning or error",
                        level);
        pyh_free(st);
        return HOOKD_FAIL;
    }
    st->per_event = hookd_config_get_bool(ctx, "python_hooks_per_event", -1);
    if (st->per_event < 0) {
        if (per_event != NULL) {
            hookd_set_error(ctx, "python: python_hooks_per_event: '%s' is not a boolean",
                            per_event);
            pyh_free(st);
            return HOOKD_FAIL;
        }
        st->per_event = 0;
    }
    st->init_timeout_ms = PYH_DEFAULT_INIT_TIMEOUT_MS;
    if (timeout != NULL) {
        char *end;
        long v = strtol(timeout, &end, 10);
        if (end == timeout || *end || v <= 0) {
            hookd_set_error(ctx, "python: python_init_timeout_ms '%s' is not a positive integer",
                            timeout);
            pyh_free(st);
            return HOOKD_FAIL;
        }
        st->init_timeout_ms = v;
    }
    st->cfgfile = write_hooks_file(ctx, err, sizeof(err));
    if (st->cfgfile == NULL) {
        hookd_set_error(ctx, "python: the [Hooks] file for load_config(): %s", err);
        pyh_free(st);
        return HOOKD_FAIL;
    }
    st->cfg_owner = getpid();
    if (probe(st, ctx, err, sizeof(err)) != 0) {
        hookd_set_error(ctx, "python: %s", err);
        pyh_free(st);
        return HOOKD_FAIL;
    }
    *state = st;
    return HOOKD_OK;
}

/* Drop the instance (its __exit__ first). Needs the GIL. */
static void drop_instance(pyh_t *st)
{
    if (st->cm != NULL) {
        PyObject *r = PyObject_CallMethod(st->cm, "__exit__", "OOO", Py_None, Py_None, Py_None);
        if (r == NULL) {
            char why[PYH_ERR];
            exc_text(why, sizeof(why));
            if (t_ctx)
                hookd_log(t_ctx, HOOKD_LOG_WARNING, "python: Hooks.__exit__ raised %s", why);
        }
        Py_XDECREF(r);
    }
    Py_CLEAR(st->cm);
    Py_CLEAR(st->obj);
    free(st->event_id);
    st->event_id = NULL;
}

static void python_fini(hookd_ctx_t *ctx, void *state)
{
    pyh_t *st = state;
    if (st == NULL)
        return;
    if (st->owner == getpid() && g_py_pid == getpid() && st->obj != NULL) {
        PyGILState_STATE g = PyGILState_Ensure();
        hookd_ctx_t *saved = t_ctx;
        t_ctx = ctx;
        drop_instance(st);
        t_ctx = saved;
        PyGILState_Release(g);
    }
    pyh_free(st);
}

/* The interpreter of this process, started on first use. 0 or -1 (error set). */
static int ensure_python(hookd_ctx_t *ctx, pyh_t *st)
{
    char err[PYH_ERR];
    pid_t me = getpid();
    int rc = 0;

    pthread_mutex_lock(&g_lock);
    if (g_py_pid == 0 && !Py_IsInitialized()) {
        if (py_start(st, err, sizeof(err)) == 0) {
            g_py_pid = me;
            hookd_log(ctx, HOOKD_LOG_INFO, "python: interpreter %s started in process %d",
                      Py_GetVersion(), (int)me);
        } else {
            hookd_set_error(ctx, "python: %s", err);
            rc = -1;
        }
    } else if (g_py_pid != me) {
        /* a fork of a process that held an interpreter: unusable */
        hookd_set_error(ctx,
                        "python: the interpreter was started in process %d before this "
                        "process was forked from it",
                        (int)g_py_pid);
        rc = -1;
    }
    pthread_mutex_unlock(&g_lock);
    if (rc == 0 && st->owner != me) {
        /* nothing of an instance crosses a fork: none was ever made before one */
        st->owner = me;
        st->obj = st->cm = NULL;
    }
    return rc;
}

/* Make the Hooks instance if there is none (or, per event, for a new event). Needs the GIL. */
static int ensure_instance(hookd_ctx_t *ctx, pyh_t *st)
{
    const char *id = hookd_event_id(ctx);
    PyObject *fn, *r;

    if (st->obj != NULL && st->per_event &&
        (id == NULL || st->event_id == NULL || strcmp(id, st->event_id) != 0))
        drop_instance(st);
    if (st->obj != NULL)
        return 0;
    fn = PyDict_GetItemString(g_boot, "instance");
    r = fn ? PyObject_CallFunction(fn, "ssi", st->module, st->cfgfile, st->log_level) : NULL;
    if (r == NULL || !PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        char why[PYH_ERR];
        if (r == NULL)
            exc_text(why, sizeof(why));
        else
            snprintf(why, sizeof(why), "unexpected result");
        Py_XDECREF(r);
        hookd_set_error(ctx, "python: Hooks(logger) of '%s' failed: %s", st->module, why);
        return -1;
    }
    st->cm = PyTuple_GET_ITEM(r, 0);
    st->obj = PyTuple_GET_ITEM(r, 1);
    if (st->cm == Py_None)
        st->cm = NULL;
    Py_XINCREF(st->cm);
    Py_INCREF(st->obj);
    Py_DECREF(r);
    if (st->per_event && id != NULL)
        st->event_id = strdup(id);
    return 0;
}

static hookd_outcome_t call(hookd_ctx_t *ctx, pyh_t *st, const char *method, const char *fmt, ...)
{
    hookd_outcome_t rc = HOOKD_OK;
    PyGILState_STATE g;
    hookd_ctx_t *saved;
    va_list ap;

    if (ensure_python(ctx, st) != 0)
        return HOOKD_FAIL;
    g = PyGILState_Ensure();
    saved = t_ctx;
    t_ctx = ctx;
    if (ensure_instance(ctx, st) != 0) {
        rc = HOOKD_FAIL;
    } else {
        PyObject *args, *m, *r = NULL;
        va_start(ap, fmt);
        args = Py_VaBuildValue(fmt, ap);
        va_end(ap);
        m = args ? PyObject_GetAttrString(st->obj, method) : NULL;
        if (m != NULL)
            r = PyObject_Call(m, args, NULL);
        Py_XDECREF(m);
        Py_XDECREF(args);
        if (r == NULL) {
            char why[PYH_ERR];
            exc_text(why, sizeof(why));
            hookd_set_error(ctx, "%s", why);
            rc = HOOKD_FAIL;
        }
        Py_XDECREF(r);
    }
    t_ctx = saved;
    PyGILState_Release(g);
    return rc;
}

static hookd_outcome_t python_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                  const char *order_name, const char *csr)
{
    return call(ctx, state, "pre_hook", "(zzz)", certificate_name, order_name, csr);
}

static hookd_outcome_t python_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                      const char *order_name, const char *csr,
                                      const char *certificate, const char *certificate_raw,
                                      const char *poll_identifier)
{
    return call(ctx, state, "success_hook", "(zzzzzz)", certificate_name, order_name, csr,
                certificate, certificate_raw, poll_identifier);
}

static hookd_outcome_t python_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                   const char *order_name, const char *csr, const char *error)
{
    return call(ctx, state, "post_hook", "(zzzz)", certificate_name, order_name, csr, error);
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "python",
    .description = "runs an acme2certifier Python hook module (Hooks class) in embedded CPython",
    .config_keys = python_config_keys,
    .init = python_init,
    .fini = python_fini,
    .pre_hook = python_pre,
    .success_hook = python_success,
    .post_hook = python_post,
};
