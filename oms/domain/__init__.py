"""The pure domain model: orders, their transition table, commands, events, money and errors.

Nothing here does I/O or imports the rest of the project.
"""
