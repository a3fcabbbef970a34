"""The payments ledger's domain: aggregates, events, value objects and rules.

Pure Python: nothing here performs I/O or reads a clock or a random source;
times, ids and outside facts come in as arguments.
"""
