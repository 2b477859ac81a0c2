"""The ``hcp`` command line: runs the platform and talks to a running one (Ray-side, like actors/)."""
