"""Bootstrap: install the task-time index templates, service users and Kibana saved objects.

Run ``python -m pipeline.bootstrap --help``. Everything installed is read from the
repository's ``elasticsearch/`` and ``kibana/`` folders, or from the copy of them the
package carries (``bundled/``); ``python -m pipeline.bootstrap export`` writes Kibana's
objects back into ``kibana/``.
"""
