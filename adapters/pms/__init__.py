"""Practice management systems: readers (patients, balances) and, later, writers."""
