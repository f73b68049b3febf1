"""The training engine: the one loop, its callbacks, schedules, clipping, freezing, data, checkpoints,
data parallelism and timing.  Imports nothing from the rest of course_lib, so a project can take it alone."""
