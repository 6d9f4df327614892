//! ZMTP 3.1 connection codec.
