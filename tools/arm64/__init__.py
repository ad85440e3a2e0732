"""arm64 under qemu-user: the node's code in an emulated Debian 12 arm64 root (``make
test-arm64``), and the cross-architecture agreement of each profile's embeddings."""
