"""The `effdl` command line: argument parsing and printing only."""
