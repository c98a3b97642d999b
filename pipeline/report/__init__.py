"""The slowest tasks straight from task-time logs, with no Elasticsearch: ``python -m pipeline.report``.

Modules: ``reader`` (the per-chunk scan with ``pipeline.lines.task``'s regex, and the
tallies), ``stats`` (exact percentiles in 8 bytes per sample), ``sources`` (files, rotated
and compressed names, folders, stdin), ``queues`` (queue-health lines: the queue and Redis tables),
``render`` (table, JSON, CSV), ``cli`` (options and exit codes).

Other kinds of lines in the same files (the queue monitor's) plug in as a
``reader.LineReader``: it is offered every line the task regex refuses, before that line
is counted unparsed.
"""
