"""Developer tools: the demo, the benchmark, the load generator, commands as child processes."""
