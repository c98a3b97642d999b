"""The service harness the tests and the benchmarks share.

``redis_server`` (a real ``redis-server`` on a free port), ``es_cluster`` (a single-node
Elasticsearch from the integ-test zip), ``engines`` (Logstash's regex engine and date
library in a JVM helper compiled from ``oracle/``), ``kibana_objects`` (the saved objects'
requests as Kibana sends them) and ``monitor`` (the queue monitor's ACL user, a client that
counts round trips), ``rabbitmq`` (a RabbitMQ node of the tests' own). Not part of the
wheel.
"""
