//! ZGP (ZeroMQ Gossip Protocol) message codec.
