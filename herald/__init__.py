"""Infrastructure shared by every role: settings, logs, metrics, backoff, and the store and bus
interfaces with their Redis and Kafka implementations."""
