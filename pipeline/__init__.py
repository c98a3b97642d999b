"""rq-task-time: time every RQ task execution and rank the slow ones in Elasticsearch and Kibana.

- ``pipeline.job.TimedJob``: the job class that writes one line per execution.
- ``pipeline.worker.TimedWorker``: the worker that also logs killed work horses.
- ``pipeline.line``: the line format, defined once.
- ``python -m pipeline.bootstrap``: installs the index templates and Kibana objects.
"""

__version__ = "0.1.0"
