# SPDX-License-Identifier: Apache-2.0
"""Test harness for the pytest suites: real kuma-cp processes (process.py),
free ports (ports.py), HTTP helpers (http.py), golden normalisers
(normalize.py) and the upstream api-server table-case runner (cases.py)."""
