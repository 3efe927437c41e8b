//! swarm: identity, DHT discovery, dialing, hole punching and Noise streams.
