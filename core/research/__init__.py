"""Research at scale: sweeps, random and TPE searches, walk-forward, on a process pool or Dask.

- ``space``: the grid file (parameters, objective, constraints) and a point as config settings;
- ``searches``: grid, and Optuna's random and TPE samplers through ask-and-tell;
- ``task``: one run as a worker lives it, and the summary it sends back;
- ``engines``: the local process pool and the Dask distributed cluster;
- ``table``: ``SWEEP_DIR/sweep.duckdb``, one row per run;
- ``walkforward``: the folds, and their test runs stitched into one curve;
- ``sweep``: the driver (:func:`run_sweep`);
- ``report``: `sweep-report` (top runs, heatmap, stability, folds).
"""
