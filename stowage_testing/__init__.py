"""Harnesses that start real servers (PostgreSQL, Redis, kube-apiserver, a worker, a gateway,
an issuer, the operator), shared by the tests and the benchmarks.

Nothing here fakes a server: each harness starts the real program on a free
loopback port, waits for it with a bound, and stops it afterwards. A missing
program fails the tier with what to install; ``make test`` installs them first
(``hack/test-deps.sh``), so a fresh machine runs every test and skips none.

Not part of the product: the wheel does not ship it, and an import-linter
contract keeps every component from importing it.
"""
