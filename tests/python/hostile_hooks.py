# SPDX-License-Identifier: MIT
"""A hook module that misbehaves on request, for the python handler's tests.

The certificate name of the event says what to do:
  ok        return normally            raise     raise ValueError("asked to")
  exit      raise SystemExit(3)        interrupt raise KeyboardInterrupt
  sleep     sleep forever              leak      keep 64 MB more on every call
  pid       append os.getpid() to <save_path>/pids
  die       os._exit(7)
[Hooks] hostile_init = raise makes __init__ fail.

It reads its keys as acme2certifier's load_config() does (configparser on
the file named by ACME_SRV_CONFIGFILE) but with the standard library only:
an interpreter that imports nothing else starts in a fraction of the time,
which is what lets these tests run under valgrind. acme2certifier's own
load_config() is exercised by its modules (test_python.c: cn_dump_hooks,
exception_test_hooks).
"""
import configparser
import os
import time


def load_config(logger, section):
    """What acme2certifier's load_config() reads: $ACME_SRV_CONFIGFILE."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str
    cfg.read(os.environ["ACME_SRV_CONFIGFILE"], encoding="utf8")
    logger.debug("hostile: read %s", os.environ["ACME_SRV_CONFIGFILE"])
    return cfg

_kept = []


class Hooks:
    def __init__(self, logger):
        self.logger = logger
        cfg = load_config(logger, "Hooks")
        self.save_path = cfg["Hooks"].get("save_path", "/nonexistent")
        if cfg["Hooks"].get("hostile_init") == "raise":
            raise ValueError("refusing to start")

    def _act(self, what):
        self.logger.info("hostile: %s", what)
        if what == "raise":
            raise ValueError("asked to")
        if what == "exit":
            raise SystemExit(3)
        if what == "interrupt":
            raise KeyboardInterrupt
        if what == "sleep":
            while True:
                time.sleep(3600)
        if what == "leak":
            _kept.append(bytearray(64 * 1024 * 1024))
        if what == "pid":
            with open(os.path.join(self.save_path, "pids"), "a", encoding="utf-8") as f:
                f.write("%d\n" % os.getpid())
        if what == "die":
            os._exit(7)

    def pre_hook(self, certificate_name, order_name, csr):
        self._act(certificate_name)

    def success_hook(self, certificate_name, order_name, csr, certificate, certificate_raw,
                     poll_identifier):
        self._act(certificate_name)

    def post_hook(self, certificate_name, order_name, csr, error):
        self._act(certificate_name)
