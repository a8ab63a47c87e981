"""Side-by-side benchmarks of schedalg against peer libraries (run: ``python -m benchmarks.run``)."""
