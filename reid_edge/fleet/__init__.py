"""Camera fleets: edge boxes publish tracklets, one associator assigns global identities.

- :mod:`.transport`: the broker-neutral protocols (and the Redis -> Kafka mapping);
  :mod:`.redis_transport` implements them on Redis Streams.
- :mod:`.edge`: ``run --publish`` (the pipeline's associator replaced by a link with an on-disk
  :mod:`.outbox`).
- :mod:`.central`: ``reid-edge associate`` (consumer group, deterministic clock batches from
  :mod:`.batcher`, durable decisions, replay on restart).
- :mod:`.messages` / :mod:`.codec`: what travels, bit-exact.
"""
