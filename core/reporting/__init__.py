"""Statistics, run identity, day snapshots, the results store and the HTML report."""
