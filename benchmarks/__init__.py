"""Speed benchmarks of the simulator (run ``python -m benchmarks``; not timed tests)."""
