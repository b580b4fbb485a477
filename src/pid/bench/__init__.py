"""Benchmarks whose figures `make bench` prints (measured side by side, never asserted by tests).

Tools above the runtime: nothing in the service imports them. `pid.bench.suite` lists them for
`pid bench`; the service benchmark's worker processes import only `pid.bench.service`.
"""
