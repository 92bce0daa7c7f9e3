"""Tests of what the components share: the wire contract and the Tenant spec."""
