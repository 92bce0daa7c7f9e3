"""Test harnesses that start real servers (PostgreSQL, Redis, kube-apiserver).

Nothing here fakes a server: each harness starts the real program on a free
loopback port, waits for it with a bound, and stops it afterwards. A missing
program skips the tier locally and fails it under ``CI=true``.
"""
