"""The benchmark suite behind `ssmkit bench`, shipped in the ssmkit distribution so it runs from any install:
`suite` (every backend of each op side by side, then `scaling` and `generation`), `scoreboard` (`--tasks`: the
mixer x synthetic-task board, configured by the package data `scoreboard.yaml`), `measure` (timing, peak memory,
machine floors) and `ssd_minimal` (the paper's minimal SSD, a peer). What each figure means: apps/bench/README.md.
"""
