# SPDX-License-Identifier: MIT
"""A fork server for the matrix: imports certbot and acme2certifier once, then
forks a child per certbot run or acme2certifier server, which saves the ~1 s
of imports each of the matrix's 384 Python processes would otherwise spend
on two cores. A child runs the real program: certbot's own main() with the
command line certbot would get, or serve_a2c.py's main() (which imports
acme2certifier's WSGI module, and so reads its configuration, in the child).

    zygote.py SOCKET

Protocol, one request per connection on the Unix socket: the client sends a
JSON line {"kind": "certbot"|"server", "argv": [...], "env": {...},
"log": PATH}; the zygote answers {"pid": N} once forked, then {"rc": N} when
the child has exited. Single-threaded (select loop), so that forking is
safe. SIGTERM ends it and every child it started."""
import json
import os
import select
import signal
import socket
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def preload():
    import certbot.main  # noqa: F401
    import certbot._internal.main  # noqa: F401
    import acme.client  # noqa: F401
    import acme2certifier.acme_srv.account  # noqa: F401
    import acme2certifier.acme_srv.certificate  # noqa: F401
    import acme2certifier.acme_srv.order  # noqa: F401
    import acme2certifier.acme_srv.challenge  # noqa: F401
    import acme2certifier.acme_srv.authorization  # noqa: F401
    import acme2certifier.acme_srv.directory  # noqa: F401
    import acme2certifier.acme_srv.nonce  # noqa: F401
    import acme2certifier.cahandlers.openssl_ca_handler  # noqa: F401
    import acme2certifier.hookhandlers.cn_dump_hooks  # noqa: F401
    import acme2certifier.hookhandlers.exception_test_hooks  # noqa: F401
    import confluent_kafka  # noqa: F401
    import wsgiref.simple_server  # noqa: F401


def child(req):
    """In the forked child: become the program; never returns."""
    rc = 1
    try:
        os.setsid()
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        os.environ.clear()
        os.environ.update(req["env"])
        for p in reversed(req["env"].get("PYTHONPATH", "").split(os.pathsep)):
            if p and p not in sys.path:
                sys.path.insert(0, p)
        from acme2certifier.acme_srv.helpers.config import load_config_cache_clear
        load_config_cache_clear()
        if req["kind"] == "certbot":
            from certbot.main import main
            sys.argv = ["certbot"] + req["argv"]
            try:
                r = main(req["argv"])
                rc = 0 if not r else (r if isinstance(r, int) else 1)
                if r and not isinstance(r, int):
                    sys.stderr.write("%s\n" % r)
            except SystemExit as e:
                if isinstance(e.code, int) or e.code is None:
                    rc = e.code or 0
                else:
                    sys.stderr.write("%s\n" % e.code)
                    rc = 1
        elif req["kind"] == "server":
            sys.path.insert(0, HERE)
            import serve_a2c
            sys.argv = ["serve_a2c.py"] + req["argv"]
            serve_a2c.main()
            rc = 0
    except BaseException:  # noqa: BLE001 - the child's report of its own failure
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(rc)


def main():
    path = sys.argv[1]
    preload()
    children = {}  # pid -> connection
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    srv.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears once it can be connected to
    srv.listen(64)

    def stop(*_):
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pending = {}  # connection -> bytes read so far
    while True:
        r, _, _ = select.select([srv] + list(pending), [], [], 0.05)
        for s in r:
            if s is srv:
                c, _ = srv.accept()
                pending[c] = b""
                continue
            data = s.recv(65536)
            if not data:
                pending.pop(s)
                s.close()
                continue
            pending[s] += data
            if b"\n" not in pending[s]:
                continue
            req = json.loads(pending.pop(s).split(b"\n", 1)[0])
            pid = os.fork()
            if pid == 0:
                srv.close()
                s.close()
                child(req)
            children[pid] = s
            s.sendall(b'{"pid": %d}\n' % pid)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            c = children.pop(pid, None)
            if c is not None:
                rc = os.waitstatus_to_exitcode(status)
                try:
                    c.sendall(b'{"rc": %d}\n' % rc)
                except OSError:
                    pass
                c.close()


if __name__ == "__main__":
    main()
