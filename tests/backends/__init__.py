"""The backends the contract suite runs on: one module per backend, found by conftest.py.

A module defines `NAME` (also its pytest marker, `-m NAME` selects it) and
`make(request, table_name, mode, **options) -> Storage`, which builds a storage of that backend
on the table (collection, key prefix, directory...) called `table_name`, requesting the server
fixtures it needs through `request.getfixturevalue` so a server starts only when selected.
"""
