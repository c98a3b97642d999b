"""The queue monitor: samples one Redis read-only and writes queue-health lines.

``python -m pipeline.monitor`` (or ``rq-task-time-monitor``) reads RQ's keys with raw,
pipelined read commands every ``--interval`` seconds and writes one line for Redis and one
per queue to its own log, in the task-time line style, each with a status (``ok``,
``warn``, ``critical``) and the reason. ``--check`` samples once and exits 0, 1 or 2.
"""
