"""Test harnesses that start real servers (PostgreSQL, Redis, kube-apiserver).

Nothing here fakes a server: each harness starts the real program on a free
loopback port, waits for it with a bound, and stops it afterwards. A missing
program fails the tier with what to install; ``make test`` installs them first
(``hack/test-deps.sh``), so a fresh machine runs every test and skips none.
"""
