"""``herald stats``: folds delivery events into per-task funnels, traces and daily totals."""
