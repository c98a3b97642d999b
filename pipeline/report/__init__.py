"""The slowest tasks straight from task-time logs, with no Elasticsearch: ``python -m pipeline.report``.

Modules: ``parse`` (the line regex built from ``pipeline.line`` and the date filter's
rules), ``reader`` (the per-chunk scan and tallies), ``stats`` (exact percentiles in 8 bytes
per sample), ``sources`` (files, rotated and compressed names, folders, stdin), ``render``
(table, JSON, CSV), ``cli`` (options and exit codes).

Other kinds of lines in the same files (the queue monitor's) plug in as a
``reader.LineReader``: it is offered every line the task regex refuses, before that line
is counted unparsed.
"""
