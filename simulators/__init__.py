"""Virtual meters, M-Bus slaves and radio gateways for the demo, the tests and the benchmarks."""
