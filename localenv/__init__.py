"""Local test environment: a patched MiniStack AWS emulator and a PostgreSQL
stand-in for an Aurora DSQL endpoint, both on 127.0.0.1."""
