"""The producer side of stepmail: a Python client and the `stepmail` command line."""
