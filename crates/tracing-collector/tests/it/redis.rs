//! Collectors writing to a real Redis and a real Redis Cluster.
