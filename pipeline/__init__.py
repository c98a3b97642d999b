"""rq-task-time: time every RQ task execution and rank the slow ones in Elasticsearch and Kibana.

- ``pipeline.job.TimedJob``: the job class that writes one line per execution.
- ``pipeline.worker.TimedWorker``: the worker that also logs killed work horses.
- ``pipeline.lines``: the line formats, each written and read in one module.
- ``pipeline.settings``: every environment variable and its default.
- ``python -m pipeline.bootstrap``: installs the index templates and Kibana objects.
- ``python -m pipeline.monitor``: samples the queues read-only and writes queue-health lines.
- ``python -m pipeline.report``: ranks the tasks straight from the log files.
"""

__version__ = "0.1.0"
