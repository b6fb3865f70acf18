"""Everything lupa: sandboxed runtimes, config loading, the `mcp` API for both VMs."""
