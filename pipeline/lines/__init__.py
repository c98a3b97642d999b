"""The line formats, each written and read in one module.

- ``fields``: what both formats share: ``Field`` and how names are written and read back.
- ``clock``: the ``Time:`` stamp both ways (``LineClock``) and the time zone.
- ``task``: the task-time line, one per task execution.
- ``queue``: the queue-health line, one per broker and per queue per sample.

Writers (the RQ job and worker, the monitor) and readers (the report) import from here;
``logstash/pipeline/*.conf`` reads the same lines, and the tests bind the two.
"""
