"""The command line: parses arguments, calls `assay.api`, renders, exits 0/1/2."""
