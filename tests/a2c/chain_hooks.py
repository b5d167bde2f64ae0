# SPDX-License-Identifier: MIT
"""acme2certifier's own test hooks, chained in-process: for each phase,
cn_dump_hooks first, then exception_test_hooks (the order of
`hookd_handlers = cn_dump, exception_test` on the worker). The reference
side of the differential tests; loaded with `[Hooks] hooks_module: chain_hooks`
(tests/a2c on PYTHONPATH)."""
from acme2certifier.hookhandlers import cn_dump_hooks, exception_test_hooks


class Hooks:
    """Runs the hooks of a phase in order; the first exception stops the chain."""

    def __init__(self, logger) -> None:
        self.logger = logger
        self.chain = [cn_dump_hooks.Hooks(logger), exception_test_hooks.Hooks(logger)]

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def pre_hook(self, certificate_name, order_name, csr) -> None:
        for h in self.chain:
            h.pre_hook(certificate_name, order_name, csr)

    def success_hook(self, certificate_name, order_name, csr, certificate, certificate_raw,
                     poll_identifier) -> None:
        for h in self.chain:
            h.success_hook(certificate_name, order_name, csr, certificate, certificate_raw,
                           poll_identifier)

    def post_hook(self, certificate_name, order_name, csr, error) -> None:
        for h in self.chain:
            h.post_hook(certificate_name, order_name, csr, error)
