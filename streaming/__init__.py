"""The ledger on Kafka: the outbox relay (global log → topic keyed by conversation id) and
the consumer runner that keeps a read model up to date from the topic. kafka-python is
imported only by `producer.py` and `consumer.py`."""
