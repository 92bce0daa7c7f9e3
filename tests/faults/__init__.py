"""The fault tier: real parts failing under load, and what the clients saw.

Each test runs a burst of concurrent clients on loopback against real
processes (PostgreSQL, a tenant worker, gateways, Redis), injects one fault
after a fixed number of acknowledged writes (never after a time, so a slow
machine only makes a run slower), repairs it, and checks the outcome in the
database itself: every acknowledged write is there with the data of the
request that wrote it. Each test adds a row to the table printed at the end of
the session (fault, load, writes acknowledged, lost, errors by kind, outage and
recovery time).
"""
