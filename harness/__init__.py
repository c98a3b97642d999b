"""The service harness shared by the tests and the benchmarks (real services on free ports)."""
