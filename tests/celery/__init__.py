"""Celery workers as real processes, on the test Redis and a RabbitMQ node of their own."""
