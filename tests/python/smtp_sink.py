# SPDX-License-Identifier: MIT
"""A local SMTP server for the email_hooks test (aiosmtpd).

Prints "port N" once it accepts connections, then "mail K" after storing
message K as <dir>/mail-K.eml. Stops when stdin closes.
"""
import socket
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        with open("%s/mail-%d.eml" % (self.dir, self.n), "wb") as f:
            f.write(envelope.original_content)
        print("mail %d" % self.n, flush=True)
        return "250 OK"


def main():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctl = Controller(Store(sys.argv[1]), hostname="127.0.0.1", port=port)
    ctl.start()  # returns once the server answers
    print("port %d" % port, flush=True)
    sys.stdin.read()
    ctl.stop()


main()
