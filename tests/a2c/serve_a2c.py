# SPDX-License-Identifier: MIT
"""Serves acme2certifier's WSGI application (share/acme2certifier_wsgi.py of
the installed package) on loopback with a threaded wsgiref server.

    serve_a2c.py ACME_SRV_CFG PORT_FILE

Binds 127.0.0.1 on a free port and writes it to PORT_FILE (atomically) once
the socket listens, which is what the tests wait for. SIGTERM ends it."""
import os
import signal
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server


def main():
    cfg, port_file = sys.argv[1], sys.argv[2]
    os.environ["ACME_SRV_CONFIGFILE"] = os.path.abspath(cfg)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    from acme2certifier.share import acme2certifier_wsgi as wsgi  # reads the config at import

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 64

    class Handler(wsgi.get_handler_cls()):
        def log_message(self, fmt, *args):  # one line per request on stderr
            sys.stderr.write("http %s\n" % (fmt % args))

    srv = make_server("127.0.0.1", 0, wsgi.application, server_class=Server, handler_class=Handler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_port)
    os.rename(tmp, port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
